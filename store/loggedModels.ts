/**
 * The logged-models store: MLflow 3's logged models (`mlflow.<flavor>.log_model` creates one, uploads its files under
 * its artifact URI, then finalises it). Params are immutable once logged; tags are mutable; deletion is soft.
 */
import { randomBytes } from 'node:crypto';
import { and, asc, desc, eq, inArray, isNull, sql, type SQL } from 'drizzle-orm';
import { ApiError, invalid, notFound } from '../config/errors';
import { loggedModels, type LoggedModelRow } from '../schema/runs';
import type { Db } from '../storage/db';
import { decodePageToken, encodePageToken, getExperiment } from './experiments';
import { getRun } from './runs';

export const LOGGED_MODEL_STATUSES = ['PENDING', 'READY', 'FAILED'] as const;
export type LoggedModelStatus = (typeof LOGGED_MODEL_STATUSES)[number];

export interface LoggedModel {
  id: string;
  experimentId: number;
  name: string;
  /**
   * Where the model's files live, through the artifact proxy: `mlflow-artifacts:/<experiment
   * id>/models/<id>/artifacts`.
   */
  artifactUri: string;
  status: LoggedModelStatus;
  modelType: string | null;
  sourceRunId: string | null;
  params: Record<string, string>;
  tags: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  deleted: boolean;
}

const toLoggedModel = (row: LoggedModelRow): LoggedModel => ({
  id: row.id,
  experimentId: row.experimentId,
  name: row.name,
  artifactUri: `mlflow-artifacts:/${row.experimentId}/models/${row.id}/artifacts`,
  status: row.status as LoggedModelStatus,
  modelType: row.modelType,
  sourceRunId: row.sourceRunId,
  params: row.params,
  tags: row.tags,
  createdAt: row.createdAt,
  updatedAt: row.updatedAt,
  deleted: row.deletedAt !== null,
});

/** MLflow's ids for logged models: `m-` and 32 hex digits. */
export const newLoggedModelId = () => `m-${randomBytes(16).toString('hex')}`;

const ADJECTIVES = [
  'amber',
  'brisk',
  'calm',
  'deft',
  'eager',
  'fleet',
  'grand',
  'hardy',
  'keen',
  'lucid',
  'merry',
  'noble',
];
const NOUNS = [
  'badger',
  'crane',
  'dolphin',
  'falcon',
  'heron',
  'ibex',
  'lynx',
  'otter',
  'panda',
  'raven',
  'stork',
  'wren',
];
/** MLflow names an unnamed model the way it names runs: two words and a number. */
const randomName = () =>
  `${ADJECTIVES[randomBytes(1)[0]! % ADJECTIVES.length]}-${NOUNS[randomBytes(1)[0]! % NOUNS.length]}-${randomBytes(2).readUInt16BE() % 1000}`;

export async function createLoggedModel(
  db: Db,
  input: {
    experimentId: number;
    name?: string;
    modelType?: string;
    sourceRunId?: string;
    params?: Record<string, string>;
    tags?: Record<string, string>;
  },
): Promise<LoggedModel> {
  const experiment = await getExperiment(db, input.experimentId);
  if (experiment.lifecycleStage === 'deleted')
    throw new ApiError('INVALID_STATE', `experiment ${input.experimentId} is deleted`);
  if (input.sourceRunId) await getRun(db, input.sourceRunId);
  const name = input.name?.trim() ? input.name : randomName();
  if (name.length > 500 || /[\u0000-\u001f]/.test(name))
    throw invalid('name', 'must be 1–500 characters without control characters');
  const [row] = await db
    .insert(loggedModels)
    .values({
      id: newLoggedModelId(),
      experimentId: experiment.id,
      name,
      modelType: input.modelType || null,
      sourceRunId: input.sourceRunId || null,
      params: input.params ?? {},
      tags: input.tags ?? {},
    })
    .returning();
  return toLoggedModel(row!);
}

export async function getLoggedModel(
  db: Db,
  id: string,
  options: { allowDeleted?: boolean } = {},
): Promise<LoggedModel> {
  const [row] = await db.select().from(loggedModels).where(eq(loggedModels.id, id));
  if (!row || (row.deletedAt && !options.allowDeleted)) throw notFound(`logged model ${id}`);
  return toLoggedModel(row);
}

/** Sets the status the client reports once the files are uploaded (READY) or the upload failed (FAILED). */
export async function finalizeLoggedModel(db: Db, id: string, status: LoggedModelStatus): Promise<LoggedModel> {
  const [row] = await db
    .update(loggedModels)
    .set({ status, updatedAt: new Date() })
    .where(and(eq(loggedModels.id, id), isNull(loggedModels.deletedAt)))
    .returning({ id: loggedModels.id });
  if (!row) throw notFound(`logged model ${id}`);
  return getLoggedModel(db, id);
}

export async function deleteLoggedModel(db: Db, id: string): Promise<void> {
  const [row] = await db
    .update(loggedModels)
    .set({ deletedAt: new Date(), updatedAt: new Date() })
    .where(and(eq(loggedModels.id, id), isNull(loggedModels.deletedAt)))
    .returning({ id: loggedModels.id });
  if (!row) throw notFound(`logged model ${id}`);
}

export async function setLoggedModelTags(db: Db, id: string, tags: Record<string, string>): Promise<void> {
  const [row] = await db
    .update(loggedModels)
    .set({ tags: sql`${loggedModels.tags} || ${JSON.stringify(tags)}::jsonb`, updatedAt: new Date() })
    .where(and(eq(loggedModels.id, id), isNull(loggedModels.deletedAt)))
    .returning({ id: loggedModels.id });
  if (!row) throw notFound(`logged model ${id}`);
}

export async function deleteLoggedModelTag(db: Db, id: string, key: string): Promise<void> {
  await db.transaction(async (tx) => {
    const [row] = await tx
      .select({ tags: loggedModels.tags })
      .from(loggedModels)
      .where(and(eq(loggedModels.id, id), isNull(loggedModels.deletedAt)))
      .for('update');
    if (!row) throw notFound(`logged model ${id}`);
    if (!(key in row.tags)) throw notFound(`tag "${key}" of logged model ${id}`);
    await tx
      .update(loggedModels)
      .set({ tags: sql`${loggedModels.tags} - ${key}`, updatedAt: new Date() })
      .where(eq(loggedModels.id, id));
  });
}

/** Adds params; re-logging a key with the same value is a no-op, with another value an error (params are immutable). */
export async function logLoggedModelParams(db: Db, id: string, params: Record<string, string>): Promise<void> {
  await db.transaction(async (tx) => {
    const [row] = await tx
      .select({ params: loggedModels.params })
      .from(loggedModels)
      .where(and(eq(loggedModels.id, id), isNull(loggedModels.deletedAt)))
      .for('update');
    if (!row) throw notFound(`logged model ${id}`);
    for (const [key, value] of Object.entries(params)) {
      if (key in row.params && row.params[key] !== value) {
        throw invalid(
          `params.${key}`,
          `is already "${row.params[key]}" on logged model ${id}; params cannot be changed`,
        );
      }
    }
    await tx
      .update(loggedModels)
      .set({ params: { ...row.params, ...params }, updatedAt: new Date() })
      .where(eq(loggedModels.id, id));
  });
}

/** Records a run's model outputs: a model logged outside a run gets the run as its source. */
export async function linkRunOutputs(db: Db, runId: string, modelIds: string[]): Promise<void> {
  await getRun(db, runId);
  if (!modelIds.length) return;
  const found = await db.select({ id: loggedModels.id }).from(loggedModels).where(inArray(loggedModels.id, modelIds));
  const missing = modelIds.find((id) => !found.some((row) => row.id === id));
  if (missing) throw notFound(`logged model ${missing}`);
  await db
    .update(loggedModels)
    .set({ sourceRunId: runId, updatedAt: new Date() })
    .where(and(inArray(loggedModels.id, modelIds), isNull(loggedModels.sourceRunId)));
}

const ATTRIBUTES = {
  name: loggedModels.name,
  model_id: loggedModels.id,
  model_type: loggedModels.modelType,
  status: loggedModels.status,
  source_run_id: loggedModels.sourceRunId,
  creation_timestamp: loggedModels.createdAt,
  creation_time: loggedModels.createdAt,
  last_updated_timestamp: loggedModels.updatedAt,
} as const;
const TIMESTAMPS = new Set(['creation_timestamp', 'creation_time', 'last_updated_timestamp']);
const OPERATORS = {
  '=': '=',
  '!=': '<>',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
  LIKE: 'LIKE',
  ILIKE: 'ILIKE',
} as const;

/** One `field op value` clause of MLflow's logged-model filter, as SQL. */
function clauseSql(clause: string): SQL {
  const match =
    /^(?:(attributes?|tags|params)\.)?(`[^`]+`|"[^"]+"|[\w.]+)\s*(=|!=|<=|>=|<|>|LIKE|ILIKE)\s*('(?:[^']|'')*'|"[^"]*"|-?\d+(?:\.\d+)?)$/i.exec(
      clause.trim(),
    );
  if (!match)
    throw invalid(
      'filter',
      `cannot parse "${clause}": use name = 'x', status = 'READY', tags.key = 'value' or params.key = 'value'`,
    );
  const [, prefix, rawKey, rawOp, rawValue] = match;
  const key = rawKey!.replace(/^[`"]|[`"]$/g, '');
  const op = OPERATORS[rawOp!.toUpperCase() as keyof typeof OPERATORS];
  const quoted = /^['"]/.test(rawValue!);
  const value = quoted ? rawValue!.slice(1, -1).replace(/''/g, "'") : rawValue!;
  const kind = prefix?.toLowerCase();
  if (kind === 'tags' || kind === 'params') {
    if (!quoted) throw invalid('filter', `${kind}.${key} compares with a quoted string`);
    return sql`(${kind === 'tags' ? loggedModels.tags : loggedModels.params} ->> ${key}) ${sql.raw(op)} ${value}`;
  }
  if (key.startsWith('metrics.'))
    throw invalid('filter', `metric filters ("${clause}") are not supported for logged models`);
  const column = ATTRIBUTES[key as keyof typeof ATTRIBUTES];
  if (!column) throw invalid('filter', `unknown attribute "${key}": use one of ${Object.keys(ATTRIBUTES).join(', ')}`);
  if (TIMESTAMPS.has(key)) {
    if (quoted || !['=', '<>', '<', '<=', '>', '>='].includes(op))
      throw invalid('filter', `${key} compares with a number of milliseconds`);
    return sql`${column} ${sql.raw(op)} to_timestamp(${Number(value) / 1000})`;
  }
  if (!quoted) throw invalid('filter', `${key} compares with a quoted string`);
  const compared = key === 'status' ? parseLoggedModelStatus(value) : value;
  if (compared === undefined) throw invalid('filter', `status "${value}" is not one of PENDING, READY, FAILED`);
  return sql`${column} ${sql.raw(op)} ${compared}`;
}

/**
 * MLflow writes statuses as `READY` or `LOGGED_MODEL_READY` (and `LOGGED_MODEL_UPLOAD_FAILED`); the table keeps the
 * short form.
 */
export function parseLoggedModelStatus(status: string): LoggedModelStatus | undefined {
  const short = status
    .toUpperCase()
    .replace(/^LOGGED_MODEL_/, '')
    .replace(/^UPLOAD_FAILED$/, 'FAILED');
  return (LOGGED_MODEL_STATUSES as readonly string[]).includes(short) ? (short as LoggedModelStatus) : undefined;
}

export interface LoggedModelSearch {
  experimentIds: number[];
  filter?: string;
  maxResults?: number;
  orderBy?: { field: string; ascending: boolean }[];
  pageToken?: string;
}

/** MLflow's logged-model search: clauses joined with AND, newest first unless ordered; offset page tokens. */
export async function searchLoggedModels(
  db: Db,
  input: LoggedModelSearch,
): Promise<{ models: LoggedModel[]; nextPageToken?: string }> {
  if (!input.experimentIds.length) throw invalid('experiment_ids', 'name at least one experiment');
  const where: SQL[] = [inArray(loggedModels.experimentId, input.experimentIds), isNull(loggedModels.deletedAt)];
  for (const clause of (input.filter ?? '')
    .split(/\s+and\s+/i)
    .map((c) => c.trim())
    .filter(Boolean))
    where.push(clauseSql(clause));
  const order = (input.orderBy ?? []).map(({ field, ascending }) => {
    const column = ATTRIBUTES[field.replace(/^attributes?\./, '') as keyof typeof ATTRIBUTES];
    if (!column) throw invalid('order_by', `cannot order logged models by "${field}"`);
    return ascending ? asc(column) : desc(column);
  });
  const limit = Math.min(input.maxResults ?? 100, 1000);
  const offset = decodePageToken(input.pageToken);
  const rows = await db
    .select()
    .from(loggedModels)
    .where(and(...where))
    .orderBy(...(order.length ? order : [desc(loggedModels.createdAt)]), asc(loggedModels.id))
    .limit(limit + 1)
    .offset(offset);
  return {
    models: rows.slice(0, limit).map(toLoggedModel),
    nextPageToken: rows.length > limit ? encodePageToken(offset + limit) : undefined,
  };
}
