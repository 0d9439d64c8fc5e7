/**
 * The run search language, MLflow's with OR and parentheses added:
 *   metrics.holdout_rmse < 10 and (params.lr = 0.01 or params.lr = 0.001) and tags.team = 'ml' and status = 'finished'
 * Fields: metrics.<key>, params.<key> (nested with dots: params.model.type), tags.<key>, and attributes (optionally
 * prefixed `attributes.`): id, status, backend, experiment, pipeline, model, dataset, started, ended, sweep, trial.
 * Operators: = != < <= > >= like ilike in (…). Values: numbers or quoted strings. Errors name the position.
 */

export type FieldRef = {
  kind: 'metrics' | 'params' | 'tags' | 'attributes';
  path: string[];
  /** Flywheel's pipeline name for a short param name (lr → learningRate): read when the run has no param at `path`. */
  alias?: string[];
};
type Literal = number | string;
export type FilterNode =
  | { type: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { type: 'not'; node: FilterNode }
  | { type: 'cmp'; field: FieldRef; op: string; value: Literal | Literal[] };

export class FilterError extends Error {
  constructor(
    message: string,
    readonly filter: string,
    readonly position: number,
  ) {
    super(`filter: ${message} at position ${position + 1}\n  ${filter}\n  ${' '.repeat(position)}^`);
    this.name = 'FilterError';
  }
}

export const ATTRIBUTES = [
  'id',
  'status',
  'backend',
  'experiment',
  'pipeline',
  'model',
  'dataset',
  'started',
  'ended',
  'sweep',
  'trial',
  'queue',
  'name',
  // MLflow's attribute names
  'run_id',
  'run_name',
  'start_time',
  'end_time',
  'user_id',
];
/** Short names people type, as in MLflow examples, for Flywheel's parameter names. */
const PARAM_ALIASES: Record<string, string> = {
  lr: 'learningRate',
  learning_rate: 'learningRate',
  batch_size: 'batchSize',
  hidden_units: 'model.hiddenUnits',
  activation: 'model.activation',
};

interface Token {
  kind: 'ident' | 'number' | 'string' | 'op' | 'punct' | 'end';
  text: string;
  pos: number;
}

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < filter.length) {
    const c = filter[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (c === "'" || c === '"') {
      let text = '';
      i++;
      for (;;) {
        if (i >= filter.length) throw new FilterError(`unterminated string`, filter, start);
        if (filter[i] === c) {
          if (filter[i + 1] === c) {
            text += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += filter[i++];
      }
      tokens.push({ kind: 'string', text, pos: start });
    } else if (c === '`') {
      const end = filter.indexOf('`', i + 1);
      if (end < 0) throw new FilterError('unterminated `quoted name`', filter, start);
      tokens.push({ kind: 'ident', text: filter.slice(i + 1, end), pos: start });
      i = end + 1;
    } else if (/[0-9]/.test(c) || ((c === '-' || c === '.') && /[0-9.]/.test(filter[i + 1] ?? ''))) {
      const match = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(filter.slice(i))!;
      tokens.push({ kind: 'number', text: match[0], pos: start });
      i += match[0].length;
    } else if (/[<>!=]/.test(c)) {
      const two = filter.slice(i, i + 2);
      const op = ['<=', '>=', '!=', '<>', '=='].includes(two) ? two : c;
      if (op === '!') throw new FilterError(`unknown operator "!"`, filter, start);
      tokens.push({ kind: 'op', text: op === '<>' ? '!=' : op === '==' ? '=' : op, pos: start });
      i += op.length;
    } else if (c === '(' || c === ')' || c === ',' || c === '.') {
      tokens.push({ kind: 'punct', text: c, pos: start });
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const match = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(filter.slice(i))!;
      tokens.push({ kind: 'ident', text: match[0], pos: start });
      i += match[0].length;
    } else throw new FilterError(`unexpected character "${c}"`, filter, start);
  }
  tokens.push({ kind: 'end', text: '', pos: filter.length });
  return tokens;
}

export function parseFilter(filter: string): FilterNode | null {
  if (!filter.trim()) return null;
  const tokens = tokenize(filter);
  let at = 0;
  const peek = () => tokens[at]!;
  const keyword = (word: string) => peek().kind === 'ident' && peek().text.toLowerCase() === word;
  const describe = (t: Token) => (t.kind === 'end' ? 'the end of the filter' : `"${t.text}"`);

  const parseOr = (): FilterNode => {
    let left = parseAnd();
    while (keyword('or')) {
      at++;
      left = { type: 'or', left, right: parseAnd() };
    }
    return left;
  };
  const parseAnd = (): FilterNode => {
    let left = parseUnary();
    while (keyword('and')) {
      at++;
      left = { type: 'and', left, right: parseUnary() };
    }
    return left;
  };
  const parseUnary = (): FilterNode => {
    if (keyword('not')) {
      at++;
      return { type: 'not', node: parseUnary() };
    }
    if (peek().text === '(' && peek().kind === 'punct') {
      at++;
      const node = parseOr();
      if (peek().text !== ')') throw new FilterError(`expected ")" but found ${describe(peek())}`, filter, peek().pos);
      at++;
      return node;
    }
    return parseComparison();
  };
  const parseField = (): FieldRef => {
    const first = peek();
    if (first.kind !== 'ident')
      throw new FilterError(
        `expected a field such as metrics.rmse, params.lr, tags.team or status, found ${describe(first)}`,
        filter,
        first.pos,
      );
    at++;
    const parts = [first.text];
    while (peek().text === '.' && peek().kind === 'punct') {
      at++;
      const next = peek();
      if (next.kind !== 'ident' && next.kind !== 'number')
        throw new FilterError(`expected a name after "."`, filter, next.pos);
      parts.push(next.text);
      at++;
    }
    const head = parts[0]!.toLowerCase();
    const prefixes: Record<string, FieldRef['kind']> = {
      metrics: 'metrics',
      metric: 'metrics',
      params: 'params',
      param: 'params',
      tags: 'tags',
      tag: 'tags',
      attributes: 'attributes',
      attribute: 'attributes',
      attr: 'attributes',
    };
    let kind = prefixes[head];
    let path = parts.slice(1);
    if (!kind) {
      kind = 'attributes';
      path = parts;
    }
    if (path.length === 0)
      throw new FilterError(`"${parts[0]}" needs a name, e.g. ${parts[0]}.rmse`, filter, first.pos);
    if (kind === 'attributes' && (path.length !== 1 || !ATTRIBUTES.includes(path[0]!))) {
      throw new FilterError(
        `unknown field "${parts.join('.')}"; use metrics.<key>, params.<key>, tags.<key> or one of ${ATTRIBUTES.join(', ')}`,
        filter,
        first.pos,
      );
    }
    if (kind === 'params' && path.length === 1 && PARAM_ALIASES[path[0]!])
      return { kind, path, alias: PARAM_ALIASES[path[0]!]!.split('.') };
    return { kind, path };
  };
  const parseValue = (): Literal => {
    const t = peek();
    if (t.kind === 'number') {
      at++;
      return Number(t.text);
    }
    if (t.kind === 'string') {
      at++;
      return t.text;
    }
    throw new FilterError(`expected a number or a quoted string, found ${describe(t)}`, filter, t.pos);
  };
  const parseComparison = (): FilterNode => {
    const field = parseField();
    const t = peek();
    let op: string;
    if (t.kind === 'op') op = t.text;
    else if (t.kind === 'ident' && ['like', 'ilike', 'in'].includes(t.text.toLowerCase())) op = t.text.toLowerCase();
    else
      throw new FilterError(
        `expected an operator (= != < <= > >= like ilike in) after the field, found ${describe(t)}`,
        filter,
        t.pos,
      );
    at++;
    if (op === 'in') {
      if (peek().text !== '(') throw new FilterError(`"in" needs a list such as ('a', 'b')`, filter, peek().pos);
      at++;
      const values: Literal[] = [parseValue()];
      while (peek().text === ',') {
        at++;
        values.push(parseValue());
      }
      if (peek().text !== ')')
        throw new FilterError(`expected "," or ")" in the list, found ${describe(peek())}`, filter, peek().pos);
      at++;
      return { type: 'cmp', field, op, value: values };
    }
    return { type: 'cmp', field, op, value: parseValue() };
  };

  const node = parseOr();
  if (peek().kind !== 'end')
    throw new FilterError(`expected "and", "or" or the end, found ${describe(peek())}`, filter, peek().pos);
  return node;
}

/** What a filter sees of a run. */
export interface RunView {
  metrics: Record<string, number>;
  params: Record<string, unknown>;
  tags: Record<string, string>;
  attributes: Record<string, string | number | null>;
}

export function fieldValue(run: RunView, field: FieldRef): unknown {
  const at = (path: string[]) =>
    path.reduce<unknown>(
      (value, part) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined),
      run[field.kind],
    );
  const value = at(field.path);
  return value === undefined && field.alias ? at(field.alias) : value;
}

function compare(actual: unknown, op: string, expected: Literal): boolean {
  if (actual === undefined || actual === null) return false;
  if (op === 'like' || op === 'ilike') {
    const pattern = new RegExp(
      `^${String(expected)
        .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        .replace(/%/g, '.*')
        .replace(/_/g, '.')}$`,
      op === 'ilike' ? 'i' : '',
    );
    return pattern.test(typeof actual === 'object' ? JSON.stringify(actual) : String(actual));
  }
  let a: number | string =
    typeof actual === 'object' ? JSON.stringify(actual) : typeof actual === 'number' ? actual : String(actual);
  let b: number | string = expected;
  if (typeof b === 'number' && typeof a === 'string' && a.trim() !== '' && Number.isFinite(Number(a))) a = Number(a);
  if (typeof a === 'number' && typeof b === 'string' && b.trim() !== '' && Number.isFinite(Number(b))) b = Number(b);
  if (typeof a !== typeof b) return op === '!=';
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    default:
      return false;
  }
}

export function matches(run: RunView, node: FilterNode | null): boolean {
  if (!node) return true;
  switch (node.type) {
    case 'and':
      return matches(run, node.left) && matches(run, node.right);
    case 'or':
      return matches(run, node.left) || matches(run, node.right);
    case 'not':
      return !matches(run, node.node);
    case 'cmp': {
      const actual = fieldValue(run, node.field);
      return Array.isArray(node.value)
        ? node.value.some((v) => compare(actual, '=', v))
        : compare(actual, node.op, node.value);
    }
  }
}

/** `metrics.rmse ASC, started DESC` → comparators; missing values sort last, as in MLflow. */
export function parseOrderBy(orderBy: string): { field: FieldRef; descending: boolean }[] {
  return orderBy
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const match = /^(.+?)(\s+(asc|desc))?$/i.exec(part)!;
      const node = parseFilter(`${match[1]} = 0`);
      if (!node || node.type !== 'cmp') throw new FilterError(`cannot order by "${part}"`, orderBy, 0);
      return { field: node.field, descending: match[3]?.toLowerCase() === 'desc' };
    });
}

export function sortRuns<T extends RunView>(runs: T[], order: { field: FieldRef; descending: boolean }[]): T[] {
  return runs.slice().sort((x, y) => {
    for (const { field, descending } of order) {
      const a = fieldValue(x, field),
        b = fieldValue(y, field);
      if (a === b) continue;
      if (a === undefined || a === null) return 1;
      if (b === undefined || b === null) return -1;
      const sign = descending ? -1 : 1;
      return (typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : 1) * sign;
    }
    return 0;
  });
}
