/**
 * The run search language (runFilter.ts: MLflow's grammar plus OR and parentheses) compiled to SQL over the `runs`
 * table, so a search reads only the rows it returns. Tag equality uses the GIN index (`tags @> …`); a search within an
 * experiment ordered by start time walks `runs_experiment_started`. Metric predicates and metric order read
 * `run_latest_metrics` (its (experiment_id, key, value) index), not every row's jsonb; a search ordered by a metric
 * first is two queries: the runs that have it, by value from the index, then those without (last, as in MLflow).
 */
import { sql, type SQL } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { invalid } from '../config/errors';
import { FilterError, parseFilter, parseOrderBy, type FieldRef, type FilterNode } from './runFilter';
import { runLatestMetrics, runs } from '../schema/runs';

/**
 * What a compiled filter may assume. `experimentIds`: the experiments searched, when every one has an id (metric
 * lookups then stay in their index range). `ordered`: the metric the query joins as `ordered` (runs that have it) or
 * knows absent (runs without it). `metrics: 'json'`: read `runs.metrics` instead of the table (the reference the table
 * must agree with; tests).
 */
export interface SearchContext {
  experimentIds?: number[];
  ordered?: { key: string; present: boolean };
  metrics?: 'table' | 'json';
}

/** The latest-metric row joined by a search ordered by a metric first. */
export const orderedMetric = alias(runLatestMetrics, 'ordered');

type Literal = number | string;

const NUMERIC = String.raw`^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$`;

/** A text expression as float8, or NULL when it is not a number (a param "adam" never breaks `params.lr < 0.1`). */
const asNumber = (text: SQL) =>
  sql`(CASE WHEN ${text} ~ ${NUMERIC} OR ${text} IN ('NaN', 'Infinity', '-Infinity') THEN (${text})::float8 END)`;

const ATTRIBUTE_COLUMNS: Record<string, { column: SQL; type: 'text' | 'time' | 'int' | 'status' }> = {
  id: { column: sql`${runs.id}`, type: 'text' },
  run_id: { column: sql`${runs.id}`, type: 'text' },
  name: { column: sql`${runs.name}`, type: 'text' },
  run_name: { column: sql`${runs.name}`, type: 'text' },
  status: { column: sql`${runs.status}`, type: 'status' },
  backend: { column: sql`${runs.backend}`, type: 'text' },
  experiment: { column: sql`${runs.experiment}`, type: 'text' },
  pipeline: { column: sql`${runs.pipelineName}`, type: 'text' },
  model: { column: sql`${runs.modelName}`, type: 'text' },
  dataset: { column: sql`${runs.datasetVersionId}`, type: 'text' },
  sweep: { column: sql`${runs.sweepId}`, type: 'text' },
  trial: { column: sql`${runs.trial}`, type: 'int' },
  queue: { column: sql`${runs.taskQueue}`, type: 'text' },
  user_id: { column: sql`${runs.userId}`, type: 'text' },
  started: { column: sql`${runs.startedAt}`, type: 'time' },
  start_time: { column: sql`${runs.startedAt}`, type: 'time' },
  ended: { column: sql`${runs.endedAt}`, type: 'time' },
  end_time: { column: sql`${runs.endedAt}`, type: 'time' },
};

function fieldExpression(field: FieldRef): {
  text: SQL;
  numeric?: SQL;
  kind: 'metric' | 'text' | 'time' | 'int' | 'status';
} {
  switch (field.kind) {
    case 'metrics': {
      const key = field.path.join('.');
      return {
        text: sql`(${runs.metrics} ->> ${key})`,
        numeric: asNumber(sql`(${runs.metrics} ->> ${key})`),
        kind: 'metric',
      };
    }
    case 'params': {
      // A client's flat key ("model.type") or a pipeline's nested params (params.model.type); a short name (lr) falls
      // back to the pipeline's (learningRate) only when the run has no param of its own by that name.
      const nested = (path: string[]) =>
        sql`${runs.params} #>> ${`{${path.map((p) => `"${p.replace(/["\\]/g, '\\$&')}"`).join(',')}}`}`;
      const own =
        field.path.length > 1
          ? sql`coalesce(${runs.params} ->> ${field.path.join('.')}, ${nested(field.path)})`
          : sql`(${runs.params} ->> ${field.path[0]!})`;
      const text = field.alias ? sql`coalesce(${own}, ${nested(field.alias)})` : own;
      return { text, numeric: asNumber(text), kind: 'text' };
    }
    case 'tags': {
      const text = sql`(${runs.tags} ->> ${field.path.join('.')})`;
      return { text, numeric: asNumber(text), kind: 'text' };
    }
    case 'attributes': {
      const attribute = ATTRIBUTE_COLUMNS[field.path[0]!];
      if (!attribute) throw invalid('filter', `cannot search by attribute "${field.path[0]}"`);
      return { text: attribute.column, kind: attribute.type };
    }
  }
}

const OPS: Record<string, SQL> = { '=': sql`=`, '!=': sql`<>`, '<': sql`<`, '<=': sql`<=`, '>': sql`>`, '>=': sql`>=` };
/**
 * NOT (x op v) for a present value: Postgres orders float8 totally (NaN above every number), so the inverse is exact.
 */
const INVERSE: Record<string, string> = { '=': '!=', '!=': '=', '<': '>=', '<=': '>', '>': '<=', '>=': '<' };

const metricKey = (field: FieldRef) => field.path.join('.');

function experimentScope(column: SQL, context: SearchContext): SQL | undefined {
  const ids = context.experimentIds;
  if (!ids?.length) return undefined;
  // One experiment as plain equality: the index range then comes out in value order.
  return ids.length === 1 ? sql`${column} = ${ids[0]!}` : sql`${column} = ANY(${sql.param(ids)}::int[])`;
}

/**
 * `metrics.key <op> values` on the latest-metrics table; a run without the key never matches (nor does its negation).
 */
function metricExists(key: string, op: string, values: number[], context: SearchContext): SQL {
  const scope = experimentScope(sql`m.experiment_id`, context);
  const test =
    values.length === 1
      ? sql`m.value ${OPS[op]!} ${values[0]!}`
      : op === '='
        ? sql`m.value = ANY(${sql.param(values)}::float8[])`
        : sql`m.value <> ALL(${sql.param(values)}::float8[])`;
  return sql`EXISTS (SELECT 1 FROM run_latest_metrics m WHERE m.run_id = ${runs.id} AND m.key = ${key}${scope ? sql` AND ${scope}` : sql``} AND ${test})`;
}

const numbersOnly = (field: FieldRef, values: Literal[]): number[] =>
  values.map((value) => {
    if (typeof value !== 'number')
      throw invalid('filter', `metrics.${metricKey(field)} is compared with a number, not '${value}'`);
    return value;
  });

function comparison(field: FieldRef, op: string, value: Literal, context: SearchContext = {}): SQL {
  const expression = fieldExpression(field);
  if (field.kind === 'tags' && op === '=' && typeof value === 'string')
    return sql`${runs.tags} @> ${JSON.stringify({ [field.path.join('.')]: value })}::jsonb`;
  if (op === 'like' || op === 'ilike') {
    if (typeof value !== 'string') throw invalid('filter', `${op.toUpperCase()} needs a quoted pattern`);
    return op === 'like' ? sql`${expression.text}::text LIKE ${value}` : sql`${expression.text}::text ILIKE ${value}`;
  }
  const operator = OPS[op];
  if (!operator) throw invalid('filter', `unknown operator ${op}`);
  switch (expression.kind) {
    case 'metric': {
      const [number] = numbersOnly(field, [value]);
      const ordered = context.ordered?.key === metricKey(field) ? context.ordered : undefined;
      // Joined by the search: the run has the metric (its value), or is known not to (unknown, as a missing value).
      if (ordered) return ordered.present ? sql`${orderedMetric.value} ${operator} ${number!}` : sql`NULL::boolean`;
      return context.metrics === 'json'
        ? sql`${expression.numeric!} ${operator} ${number!}`
        : metricExists(metricKey(field), op, [number!], context);
    }
    case 'time': {
      const at = typeof value === 'number' ? new Date(value) : new Date(value);
      if (Number.isNaN(at.getTime()))
        throw invalid('filter', `"${value}" is not a time (milliseconds since the epoch or an ISO date)`);
      return sql`${expression.text} ${operator} ${at.toISOString()}::timestamptz`;
    }
    case 'int':
      if (typeof value !== 'number') throw invalid('filter', `${field.path[0]} is compared with a number`);
      return sql`${expression.text} ${operator} ${value}`;
    case 'status':
      return sql`${expression.text} ${operator} ${String(value).toLowerCase()}`;
    case 'text':
      return typeof value === 'number'
        ? sql`${expression.numeric!} ${operator} ${value}`
        : sql`${expression.text} ${operator} ${value}`;
  }
}

/** A leaf, negated or not. Each is TRUE, FALSE or NULL exactly as `(NOT) field op value` over the run's own values. */
function leaf(node: Extract<FilterNode, { type: 'cmp' }>, negated: boolean, context: SearchContext): SQL {
  const { field } = node;
  const values = Array.isArray(node.value) ? node.value : [node.value];
  const op = Array.isArray(node.value) ? '=' : node.op;
  const onTable =
    field.kind === 'metrics' &&
    context.metrics !== 'json' &&
    op !== 'like' &&
    op !== 'ilike' &&
    context.ordered?.key !== metricKey(field);
  if (onTable && OPS[op]) {
    // EXISTS is never NULL, so a negation is pushed into the comparison: a run without the metric matches neither.
    const numbers = numbersOnly(field, values);
    return metricExists(metricKey(field), negated ? INVERSE[op]! : op, numbers, context);
  }
  const expression = Array.isArray(node.value)
    ? sql`(${sql.join(
        values.map((v) => comparison(field, '=', v, context)),
        sql` OR `,
      )})`
    : comparison(field, op, node.value, context);
  return negated ? sql`(NOT ${expression})` : expression;
}

/**
 * The filter as a WHERE condition. NOT is pushed down to the leaves (De Morgan holds in SQL's three-valued logic), so a
 * metric leaf can be an EXISTS on the latest-metrics table and still leave out runs without the metric under NOT.
 */
export function filterSql(node: FilterNode | null, context: SearchContext = {}, negated = false): SQL | undefined {
  if (!node) return undefined;
  switch (node.type) {
    case 'and':
    case 'or': {
      const joiner = (node.type === 'and') !== negated ? sql` AND ` : sql` OR `;
      return sql`(${filterSql(node.left, context, negated)}${joiner}${filterSql(node.right, context, negated)})`;
    }
    case 'not':
      return filterSql(node.node, context, !negated);
    case 'cmp':
      return leaf(node, negated, context);
  }
}

/** A metric's latest value for ORDER BY (null when the run lacks it). */
const metricValue = (key: string, context: SearchContext) =>
  context.metrics === 'json'
    ? fieldExpression({ kind: 'metrics', path: [key] }).numeric!
    : sql`(SELECT m.value FROM run_latest_metrics m WHERE m.run_id = ${runs.id} AND m.key = ${key})`;

/** `metrics.rmse ASC, start_time DESC` → ORDER BY terms, missing values last (as MLflow). */
export function orderSql(orderBy: string | string[] | undefined, context: SearchContext = {}): SQL[] {
  return orderTerms(orderBy)
    .flatMap(({ field, descending }) => {
      const direction = descending ? sql`DESC NULLS LAST` : sql`ASC NULLS LAST`;
      if (field.kind === 'metrics') {
        const key = metricKey(field);
        // Runs known to lack the joined metric all tie on it: the term drops out.
        if (context.ordered?.key === key)
          return context.ordered.present ? [sql`${orderedMetric.value} ${direction}`] : [];
        return [sql`${metricValue(key, context)} ${direction}`];
      }
      return [sql`${fieldExpression(field).text} ${direction}`];
    })
    .concat([sql`${runs.startedAt} DESC`, sql`${runs.id} ASC`]);
}

function orderTerms(orderBy: string | string[] | undefined): { field: FieldRef; descending: boolean }[] {
  const text = Array.isArray(orderBy) ? orderBy.join(', ') : (orderBy ?? '');
  return text.trim() ? parseOrderBy(text) : [];
}

/** A search's SQL: over `runs` alone, or, ordered by a metric first, the runs that have it (joined) then the others. */
export interface CompiledSearch {
  where?: SQL;
  order: SQL[];
  byMetric?: {
    key: string;
    /** Which `run_latest_metrics AS ordered` rows to walk, in value order (the key, the searched experiments). */
    scan: SQL;
    present: { where?: SQL; order: SQL[] };
    /** Runs without the metric (WHERE includes their absence). */
    missing: { where: SQL; order: SQL[] };
  };
}

/**
 * The filter's top-level `metrics.<key> <op> number` conjuncts as bounds on the walked index range (redundant, not
 * skipped).
 */
function bounds(node: FilterNode | null, key: string): SQL[] {
  if (!node) return [];
  if (node.type === 'and') return [...bounds(node.left, key), ...bounds(node.right, key)];
  if (node.type !== 'cmp' || node.field.kind !== 'metrics' || metricKey(node.field) !== key) return [];
  if (typeof node.value !== 'number' || !['=', '<', '<=', '>', '>='].includes(node.op)) return [];
  return [sql`${orderedMetric.value} ${OPS[node.op]!} ${node.value}`];
}

const parsing = <T>(field: 'filter' | 'order_by', compile: () => T): T => {
  try {
    return compile();
  } catch (error) {
    if (error instanceof FilterError) throw invalid(field, error.message.replace(/^filter: /, ''));
    throw error;
  }
};

/** Parses a filter, turning the parser's positioned message into a 400 naming the field. */
export function compileFilter(filter: string | undefined, context: SearchContext = {}): SQL | undefined {
  return parsing('filter', () => filterSql(parseFilter(filter ?? ''), context));
}

export function compileOrder(orderBy: string | string[] | undefined, context: SearchContext = {}): SQL[] {
  return parsing('order_by', () => orderSql(orderBy, context));
}

/** Filter and order of one search; `experimentIds` scopes metric lookups (see SearchContext). */
export function compileSearch(input: {
  filter?: string;
  orderBy?: string | string[];
  experimentIds?: number[];
}): CompiledSearch {
  const context: SearchContext = { experimentIds: input.experimentIds };
  const node = parsing('filter', () => parseFilter(input.filter ?? ''));
  const first = parsing('order_by', () => orderTerms(input.orderBy))[0];
  const plain = { where: filterSql(node, context), order: compileOrder(input.orderBy, context) };
  if (first?.field.kind !== 'metrics') return plain;
  const key = metricKey(first.field);
  const present: SearchContext = { ...context, ordered: { key, present: true } };
  const missing: SearchContext = { ...context, ordered: { key, present: false } };
  const scope = experimentScope(sql`${orderedMetric.experimentId}`, context);
  // Absent as the join sees it (same scope), so every run is in exactly one of the two parts.
  const absentScope = experimentScope(sql`m.experiment_id`, context);
  const absent = sql`NOT EXISTS (SELECT 1 FROM run_latest_metrics m WHERE m.run_id = ${runs.id} AND m.key = ${key}${absentScope ? sql` AND ${absentScope}` : sql``})`;
  const missingWhere = filterSql(node, missing);
  return {
    ...plain,
    byMetric: {
      key,
      scan: sql.join([sql`${orderedMetric.key} = ${key}`, ...(scope ? [scope] : []), ...bounds(node, key)], sql` AND `),
      present: { where: filterSql(node, present), order: orderSql(input.orderBy, present) },
      missing: {
        where: missingWhere ? sql`${absent} AND ${missingWhere}` : absent,
        order: orderSql(input.orderBy, missing),
      },
    },
  };
}
