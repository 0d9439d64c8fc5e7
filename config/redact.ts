/** Text that may reach a log or a response with secrets taken out: URL passwords, Flywheel tokens, bearer headers. */
export function redactSecrets(text: string): string {
  return text
    .replace(/\/\/([^:/@\s]+):[^@/\s]+@/g, '//$1:***@')
    .replace(/\bfw_(admin|write|read|infer)_[A-Za-z0-9_-]+/g, 'fw_$1_***')
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 ***');
}

const USERINFO_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:([^@/]*)@/i;

/**
 * Why a source URL may not go into a workflow as written, or undefined: a password inside it would be kept in
 * workflow history and the pipelines table. A `${VAR}` in its place is a reference the worker resolves.
 */
export function inlineSecretProblem(source: string): string | undefined {
  const password = USERINFO_PASSWORD.exec(source)?.[1];
  if (!password || /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(password)) return undefined;
  return (
    'holds a password, which would be kept in workflow history: write ${SOME_VARIABLE} in its place ' +
    '(e.g. postgres://reader:${WAREHOUSE_PASSWORD}@host/db) and set that variable where the workers run'
  );
}
