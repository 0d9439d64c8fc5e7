/**
 * Checks SQL a user wrote (feature-view sources and transforms, SQL ingest queries) before Flywheel runs it: one
 * statement, balanced so it cannot break out of the subquery it is wrapped in, and no function that reaches past the
 * database's tables (files, large objects, other servers, settings, other sessions). Pure: a scan of the text.
 */

export class UserSqlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserSqlError';
  }
}

/** Functions refused by name: they read or write server files, reach other servers, change settings or sessions. */
const FORBIDDEN_FUNCTIONS = [
  /^pg_read_(binary_)?file$/,
  /^pg_ls_\w+$/,
  /^pg_stat_file$/,
  /^pg_file_\w+$/,
  /^pg_logdir_ls$/,
  /^lo_\w+$/,
  /^dblink\w*$/,
  /^(query|cursor|table|schema|database)_to_xml\w*$/,
  /^set_config$/,
  /^pg_(terminate|cancel)_backend$/,
  /^pg_reload_conf$/,
  /^pg_rotate_logfile\w*$/,
  /^pg_promote$/,
  /^pg_switch_wal$/,
  /^pg_create_\w+$/,
  /^pg_drop_replication_slot$/,
  /^pg_logical_emit_message$/,
  /^pg_(try_)?advisory\w*$/,
  /^pg_import_system_collations$/,
] as const;

export function isForbiddenFunction(name: string): boolean {
  const lower = name.toLowerCase();
  return FORBIDDEN_FUNCTIONS.some((pattern) => pattern.test(lower));
}

interface Token {
  kind: 'word' | 'identifier' | 'string' | 'symbol';
  /** Lower-cased for words, unquoted for identifiers, the character for symbols. */
  text: string;
  at: number;
}

/** Tokens of the text, comments and blanks dropped; throws on an unterminated string, identifier or comment. */
function tokens(sql: string): Token[] {
  const out: Token[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? n : end + 1;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      let depth = 1,
        j = i + 2;
      while (j < n && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      if (depth > 0) throw new UserSqlError(`unterminated comment starting at character ${i + 1}`);
      i = j;
      continue;
    }
    if (c === "'" || ((c === 'e' || c === 'E') && sql[i + 1] === "'")) {
      const escapes = c !== "'";
      let j = escapes ? i + 2 : i + 1;
      for (;;) {
        if (j >= n) throw new UserSqlError(`unterminated string starting at character ${i + 1}`);
        if (escapes && sql[j] === '\\') {
          j += 2;
          continue;
        }
        if (sql[j] === "'") {
          if (sql[j + 1] === "'") {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      out.push({ kind: 'string', text: sql.slice(i, j + 1), at: i });
      i = j + 1;
      continue;
    }
    if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 66));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        if (close === -1) throw new UserSqlError(`unterminated dollar-quoted string starting at character ${i + 1}`);
        out.push({ kind: 'string', text: sql.slice(i, close + tag[0].length), at: i });
        i = close + tag[0].length;
        continue;
      }
    }
    if (c === '"') {
      let j = i + 1,
        text = '';
      for (;;) {
        if (j >= n) throw new UserSqlError(`unterminated quoted identifier starting at character ${i + 1}`);
        if (sql[j] === '"') {
          if (sql[j + 1] === '"') {
            text += '"';
            j += 2;
            continue;
          }
          break;
        }
        text += sql[j];
        j++;
      }
      out.push({ kind: 'identifier', text, at: i });
      i = j + 1;
      continue;
    }
    const word = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(sql.slice(i, i + 256));
    if (word) {
      // A word longer than the window is read on until it ends.
      let j = i + word[0].length;
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j]!)) j++;
      out.push({ kind: 'word', text: sql.slice(i, j).toLowerCase(), at: i });
      i = j;
      continue;
    }
    out.push({ kind: 'symbol', text: c, at: i });
    i++;
  }
  return out;
}

/**
 * The one statement of `sql`, without a trailing ";". Refuses more than one statement, parentheses that do not
 * balance (they would close the subquery Flywheel wraps the text in) and forbidden functions, naming what it found.
 */
export function singleStatement(sql: string): string {
  const list = tokens(sql);
  if (list.length === 0) throw new UserSqlError('the query is empty');
  let depth = 0,
    end = sql.length;
  for (let k = 0; k < list.length; k++) {
    const token = list[k]!;
    if (token.kind === 'symbol') {
      if (token.text === '(') depth++;
      else if (token.text === ')' && --depth < 0)
        throw new UserSqlError(`unbalanced parentheses: a ")" at character ${token.at + 1} closes nothing`);
      else if (token.text === ';') {
        const rest = list.slice(k + 1).filter((t) => !(t.kind === 'symbol' && t.text === ';'));
        if (rest.length)
          throw new UserSqlError(
            `more than one statement: a ";" at character ${token.at + 1} is followed by more SQL; give one SELECT`,
          );
        end = token.at;
        break;
      }
      continue;
    }
    if (
      (token.kind === 'word' || token.kind === 'identifier') &&
      list[k + 1]?.text === '(' &&
      list[k + 1]!.kind === 'symbol' &&
      isForbiddenFunction(token.text)
    ) {
      throw new UserSqlError(
        `calls ${token.text}(), which user SQL may not use (it reaches files, other servers or settings outside the tables)`,
      );
    }
  }
  if (depth > 0) throw new UserSqlError(`unbalanced parentheses: ${depth} "(" never closed`);
  const first = list[0]!;
  if (
    first.kind === 'word' &&
    [
      'copy',
      'do',
      'call',
      'set',
      'reset',
      'load',
      'listen',
      'notify',
      'vacuum',
      'grant',
      'revoke',
      'alter',
      'create',
      'drop',
    ].includes(first.text)
  ) {
    throw new UserSqlError(`${first.text.toUpperCase()} is not a query; give one SELECT`);
  }
  return sql.slice(0, end).trimEnd();
}

/** A SQL expression over a view's columns (a transform): one expression, no subquery, no forbidden function. */
export function checkSqlExpression(expression: string): void {
  singleStatement(expression);
  const list = tokens(expression);
  if (list.some((t) => t.kind === 'symbol' && t.text === ';')) throw new UserSqlError('an expression holds no ";"');
  if (list.some((t) => t.kind === 'word' && t.text === 'select'))
    throw new UserSqlError("an expression holds no subquery (SELECT); it computes from the view's own features");
}
