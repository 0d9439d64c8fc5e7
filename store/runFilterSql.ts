/**
 * The run search language (ml/runFilter.ts: MLflow's grammar plus OR and parentheses) compiled to SQL over the `runs`
 * table, so a search reads only the rows it returns. Tag equality uses the GIN index (`tags @> …`); a search within an
 * experiment ordered by start time walks `runs_experiment_started`.
 */
import { sql, type SQL } from 'drizzle-orm';
import { invalid } from '../config/errors';
import { FilterError, parseFilter, parseOrderBy, type FieldRef, type FilterNode } from '../ml/runFilter';
import { runs } from '../schema/runs';

type Literal = number | string;

const NUMERIC = String.raw`^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$`;

/** A text expression as float8, or NULL when it is not a number (a param "adam" never breaks `params.lr < 0.1`). */
const asNumber = (text: SQL) => sql`(CASE WHEN ${text} ~ ${NUMERIC} OR ${text} IN ('NaN', 'Infinity', '-Infinity') THEN (${text})::float8 END)`;

const ATTRIBUTE_COLUMNS: Record<string, { column: SQL; type: 'text' | 'time' | 'int' | 'status' }> = {
  id: { column: sql`${runs.id}`, type: 'text' }, run_id: { column: sql`${runs.id}`, type: 'text' },
  name: { column: sql`${runs.name}`, type: 'text' }, run_name: { column: sql`${runs.name}`, type: 'text' },
  status: { column: sql`${runs.status}`, type: 'status' },
  backend: { column: sql`${runs.backend}`, type: 'text' }, experiment: { column: sql`${runs.experiment}`, type: 'text' },
  pipeline: { column: sql`${runs.pipelineName}`, type: 'text' }, model: { column: sql`${runs.modelName}`, type: 'text' },
  dataset: { column: sql`${runs.datasetVersionId}`, type: 'text' }, sweep: { column: sql`${runs.sweepId}`, type: 'text' },
  trial: { column: sql`${runs.trial}`, type: 'int' }, queue: { column: sql`${runs.taskQueue}`, type: 'text' },
  user_id: { column: sql`${runs.userId}`, type: 'text' },
  started: { column: sql`${runs.startedAt}`, type: 'time' }, start_time: { column: sql`${runs.startedAt}`, type: 'time' },
  ended: { column: sql`${runs.endedAt}`, type: 'time' }, end_time: { column: sql`${runs.endedAt}`, type: 'time' },
};

function fieldExpression(field: FieldRef): { text: SQL; numeric?: SQL; kind: 'metric' | 'text' | 'time' | 'int' | 'status' } {
  switch (field.kind) {
    case 'metrics': {
      const key = field.path.join('.');
      return { text: sql`(${runs.metrics} ->> ${key})`, numeric: asNumber(sql`(${runs.metrics} ->> ${key})`), kind: 'metric' };
    }
    case 'params': {
      // A client's flat key ("model.type") or a pipeline's nested params (params.model.type); a short name (lr) falls
      // back to the pipeline's (learningRate) only when the run has no param of its own by that name.
      const nested = (path: string[]) => sql`${runs.params} #>> ${`{${path.map((p) => `"${p.replace(/["\\]/g, '\\$&')}"`).join(',')}}`}`;
      const own = field.path.length > 1 ? sql`coalesce(${runs.params} ->> ${field.path.join('.')}, ${nested(field.path)})` : sql`(${runs.params} ->> ${field.path[0]!})`;
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

function comparison(field: FieldRef, op: string, value: Literal): SQL {
  const expression = fieldExpression(field);
  if (field.kind === 'tags' && op === '=' && typeof value === 'string') return sql`${runs.tags} @> ${JSON.stringify({ [field.path.join('.')]: value })}::jsonb`;
  if (op === 'like' || op === 'ilike') {
    if (typeof value !== 'string') throw invalid('filter', `${op.toUpperCase()} needs a quoted pattern`);
    return op === 'like' ? sql`${expression.text}::text LIKE ${value}` : sql`${expression.text}::text ILIKE ${value}`;
  }
  const operator = OPS[op];
  if (!operator) throw invalid('filter', `unknown operator ${op}`);
  switch (expression.kind) {
    case 'metric':
      if (typeof value !== 'number') throw invalid('filter', `metrics.${field.path.join('.')} is compared with a number, not '${value}'`);
      return sql`${expression.numeric!} ${operator} ${value}`;
    case 'time': {
      const at = typeof value === 'number' ? new Date(value) : new Date(value);
      if (Number.isNaN(at.getTime())) throw invalid('filter', `"${value}" is not a time (milliseconds since the epoch or an ISO date)`);
      return sql`${expression.text} ${operator} ${at.toISOString()}::timestamptz`;
    }
    case 'int':
      if (typeof value !== 'number') throw invalid('filter', `${field.path[0]} is compared with a number`);
      return sql`${expression.text} ${operator} ${value}`;
    case 'status':
      return sql`${expression.text} ${operator} ${String(value).toLowerCase()}`;
    case 'text':
      return typeof value === 'number' ? sql`${expression.numeric!} ${operator} ${value}` : sql`${expression.text} ${operator} ${value}`;
  }
}

export function filterSql(node: FilterNode | null): SQL | undefined {
  if (!node) return undefined;
  switch (node.type) {
    case 'and': return sql`(${filterSql(node.left)} AND ${filterSql(node.right)})`;
    case 'or': return sql`(${filterSql(node.left)} OR ${filterSql(node.right)})`;
    case 'not': return sql`(NOT ${filterSql(node.node)})`;
    case 'cmp': {
      if (Array.isArray(node.value)) {
        const options = node.value.map((v) => comparison(node.field, '=', v));
        return sql`(${sql.join(options, sql` OR `)})`;
      }
      return comparison(node.field, node.op, node.value);
    }
  }
}

/** `metrics.rmse ASC, start_time DESC` → ORDER BY terms, missing values last (as MLflow). */
export function orderSql(orderBy: string | string[] | undefined): SQL[] {
  const text = Array.isArray(orderBy) ? orderBy.join(', ') : orderBy ?? '';
  const terms = text.trim() ? parseOrderBy(text) : [];
  const out = terms.map(({ field, descending }) => {
    const expression = fieldExpression(field);
    const value = expression.kind === 'metric' ? expression.numeric! : expression.text;
    return descending ? sql`${value} DESC NULLS LAST` : sql`${value} ASC NULLS LAST`;
  });
  return [...out, sql`${runs.startedAt} DESC`, sql`${runs.id} ASC`];
}

/** Parses a filter, turning the parser's positioned message into a 400 naming the field. */
export function compileFilter(filter: string | undefined): SQL | undefined {
  try {
    return filterSql(parseFilter(filter ?? ''));
  } catch (error) {
    if (error instanceof FilterError) throw invalid('filter', error.message.replace(/^filter: /, ''));
    throw error;
  }
}

export function compileOrder(orderBy: string | string[] | undefined): SQL[] {
  try {
    return orderSql(orderBy);
  } catch (error) {
    if (error instanceof FilterError) throw invalid('order_by', error.message.replace(/^filter: /, ''));
    throw error;
  }
}
