/** Text that may reach a log or a response with secrets taken out: URL passwords, Flywheel tokens, bearer headers. */
export function redactSecrets(text: string): string {
  return text
    .replace(/\/\/([^:/@\s]+):[^@/\s]+@/g, '//$1:***@')
    .replace(/\bfw_(admin|write|read|infer)_[A-Za-z0-9_-]+/g, 'fw_$1_***')
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 ***');
}
