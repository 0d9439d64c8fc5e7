/**
 * The model registry store: registered models, their immutable versions, aliases and the audit trail of alias moves,
 * approvals. The only code that reads or writes those tables; rows become domain objects here, and every
 * multi-statement write is one transaction. Errors are `ApiError`s (MLflow's codes); activities translate them.
 */
import { and, asc, desc, eq, ilike, inArray, like, max, or, sql, type SQL } from 'drizzle-orm';
import { ApiError, invalid, notFound } from '../config/errors';
import type { ReleaseEvaluation } from '../ml/evaluation/gates';
import { deployments, trafficRoutes } from '../schema/deployments';
import {
  aliasEvents,
  modelAliases,
  modelApprovals,
  modelVersions,
  registeredModels,
  type ModelVersionRow,
} from '../schema/models';
import type { Db } from '../storage/db';
import { decodePageToken, encodePageToken, type Executor } from './experiments';
import { getRun } from './runs';
import { enqueueWebhookEvent } from './webhooks';

export {
  addWebhook,
  listWebhooks,
  removeWebhook,
  WEBHOOK_EVENTS,
  type Webhook,
  type WebhookEventName,
} from './webhooks';

/** Serving listens on this channel and reloads routes and aliases at once (it also polls). */
export const SERVING_CHANNEL = 'flywheel_serving';

/** `active`, or `archived`: kept for lineage, no alias may point at it (MLflow's stage "Archived"). */
export type VersionStatus = 'active' | 'archived';

export interface ModelAlias {
  alias: string;
  version: number;
}

export interface ModelVersion {
  modelName: string;
  version: number;
  status: VersionStatus;
  /**
   * Lineage: the run, its dataset version and the pipeline workflow; null for what a client registered without them.
   */
  runId: string | null;
  datasetVersionId: string | null;
  workflowId: string | null;
  /** Where the client said the model lives (MLflow's `source`). */
  source: string | null;
  description: string | null;
  userId: string | null;
  codeVersion: string | null;
  params: Record<string, unknown>;
  metrics: Record<string, number>;
  /** The Flywheel model artifact serving loads; null for a version registered from an outside `source`. */
  artifactKey: string | null;
  predictionReferenceKey: string | null;
  /** `gate` is set by the release (passed / failed). */
  tags: Record<string, string>;
  evaluation: ReleaseEvaluation | null;
  /** The aliases pointing at this version. */
  aliases: string[];
  createdAt: Date;
  updatedAt: Date;
}

export interface RegisteredModel {
  name: string;
  /** regression | classification; null until a Flywheel pipeline trains it. */
  task: string | null;
  description: string | null;
  tags: Record<string, string>;
  aliases: ModelAlias[];
  /** The newest version per status (MLflow's `latest_versions`, one per stage). */
  latestVersions: ModelVersion[];
  versionCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface AliasEvent {
  id: number;
  modelName: string;
  alias: string;
  fromVersion: number | null;
  /** Null when the alias was deleted. */
  toVersion: number | null;
  actor: string;
  reason: string;
  workflowId: string | null;
  at: Date;
}

/**
 * alias_events.to_version is NOT NULL; a deletion is stored as version 0 (versions start at 1) and read back as null.
 */

const toVersion = (row: ModelVersionRow, aliases: string[]): ModelVersion => ({
  modelName: row.modelName,
  version: row.version,
  status: row.status as VersionStatus,
  runId: row.runId,
  datasetVersionId: row.datasetVersionId,
  workflowId: row.workflowId,
  source: row.source,
  description: row.description,
  userId: row.userId,
  codeVersion: row.codeVersion,
  params: row.params,
  metrics: row.metrics,
  artifactKey: row.artifactKey,
  predictionReferenceKey: row.predictionReferenceKey,
  tags: row.tags,
  evaluation: row.evaluation ?? null,
  aliases,
  createdAt: row.createdAt,
  updatedAt: row.updatedAt,
});

const toAliasEvent = (row: typeof aliasEvents.$inferSelect): AliasEvent => ({
  ...row,
});

const versionKey = (modelName: string, version: number) =>
  and(eq(modelVersions.modelName, modelName), eq(modelVersions.version, version));

// ---------------------------------------------------------------- names and filters

const CONTROL = /[\u0000-\u001f\u007f]/;

/** Names that travel in URLs, `model@alias` references and deployment ids (`<model>/<alias>`). */
function checkModelName(name: string): void {
  if (!name.trim()) throw invalid('name', 'must not be empty');
  if (name.length > 256 || CONTROL.test(name) || /[/@]/.test(name))
    throw invalid('name', 'must be 1–256 characters without "/", "@" or control characters');
}

/** MLflow reserves `latest` and `v<N>` (they read as versions in `models:/name@…` URIs). */
function checkAliasName(alias: string): void {
  if (!alias.trim() || alias.length > 256 || CONTROL.test(alias) || /[/@]/.test(alias))
    throw invalid('alias', 'must be 1–256 characters without "/", "@" or control characters');
  if (/^(latest|v\d+)$/i.test(alias)) throw invalid('alias', `"${alias}" is reserved (it reads as a version)`);
}

interface Clause {
  field: string;
  op: string;
  value: string | number | string[];
}

const CLAUSE =
  /^\s*(tags?\.(?:`[^`]+`|"[^"]+"|[\w.-]+)|[\w.]+)\s*(!=|<>|<=|>=|=|<|>|NOT\s+IN\b|IN\b|NOT\s+LIKE\b|LIKE\b|ILIKE\b)\s*('(?:[^']|'')*'|"(?:[^"]|"")*"|-?\d+|\(\s*(?:'(?:[^']|'')*'|"(?:[^"]|"")*")(?:\s*,\s*(?:'(?:[^']|'')*'|"(?:[^"]|"")*"))*\s*\))\s*(AND\b|$)/i;
const unquote = (text: string) => text.slice(1, -1).replace(text[0] === "'" ? /''/g : /""/g, text[0]!);

/**
 * MLflow's registry filter: clauses `field op value` joined with AND; strings quoted, IN takes a list; `tag.k` =
 * `tags.k`.
 */
export function parseRegistryFilter(filter: string | undefined): Clause[] {
  const clauses: Clause[] = [];
  let rest = (filter ?? '').trim();
  while (rest) {
    const match = CLAUSE.exec(rest);
    if (!match)
      throw invalid(
        'filter',
        `cannot parse "${rest}": expected clauses like name = 'x', name LIKE '%x%' or tags.key = 'value', joined with AND`,
      );
    const [whole, rawField, rawOp, rawValue, joiner] = match as unknown as [string, string, string, string, string];
    // MLflow 3's client adds `tag.\`mlflow.prompt.is_prompt\` != 'true'` (singular) to every model search.
    const field = rawField.replace(/^tags?\.[`"]?(.*?)[`"]?$/, 'tags.$1');
    const op = rawOp.toUpperCase().replace(/\s+/g, ' ').replace('<>', '!=');
    const value = rawValue.startsWith('(')
      ? [...rawValue.matchAll(/'(?:[^']|'')*'|"(?:[^"]|"")*"/g)].map((m) => unquote(m[0]))
      : /^-?\d+$/.test(rawValue)
        ? Number(rawValue)
        : unquote(rawValue);
    clauses.push({ field, op, value });
    rest = rest.slice(whole.length).trim();
    if (!joiner && rest) throw invalid('filter', `expected AND before "${rest}"`);
  }
  return clauses;
}

/** One clause as SQL over a text column (`=`, `!=`, LIKE, ILIKE, IN) or, for numbers, a comparison. */
function compare(column: SQL, clause: Clause, numeric = false): SQL {
  const { op, value } = clause;
  if (Array.isArray(value)) {
    if (op !== 'IN' && op !== 'NOT IN') throw invalid('filter', `${clause.field}: a list needs IN`);
    const list = sql.join(
      value.map((v) => sql`${numeric ? Number(v) : v}`),
      sql`, `,
    );
    return op === 'IN' ? sql`${column} in (${list})` : sql`${column} not in (${list})`;
  }
  if (numeric !== (typeof value === 'number'))
    throw invalid('filter', `${clause.field} compares with ${numeric ? 'a number' : 'a quoted string'}`);
  switch (op) {
    case '=':
      return sql`${column} = ${value}`;
    case '!=':
      return sql`${column} is distinct from ${value}`;
    case 'LIKE':
      return like(column as never, String(value));
    case 'NOT LIKE':
      return sql`${column} not like ${String(value)}`;
    case 'ILIKE':
      return ilike(column as never, String(value));
    case '<':
    case '<=':
    case '>':
    case '>=':
      if (numeric) return sql`${column} ${sql.raw(op)} ${value}`;
  }
  throw invalid('filter', `${clause.field} does not take ${op}`);
}

function orderBy(entries: string[] | undefined, columns: Record<string, SQL>): SQL[] {
  return (entries ?? []).map((entry) => {
    const match = /^\s*([\w.]+)(?:\s+(ASC|DESC))?\s*$/i.exec(entry);
    const column = match ? columns[match[1]!.replace(/^attributes?\./, '')] : undefined;
    if (!column)
      throw invalid('order_by', `cannot order by "${entry}": use ${Object.keys(columns).join(', ')}, with ASC or DESC`);
    return match![2]?.toUpperCase() === 'DESC' ? sql`${column} desc` : sql`${column} asc`;
  });
}

function limitOf(maxResults: number | undefined, fallback: number, most: number): number {
  const limit = maxResults ?? fallback;
  if (!Number.isInteger(limit) || limit < 1 || limit > most)
    throw invalid('max_results', `must be between 1 and ${most}, got ${maxResults}`);
  return limit;
}

// ---------------------------------------------------------------- reads

async function aliasesOf(db: Executor, names: string[]): Promise<Map<string, ModelAlias[]>> {
  const rows = names.length
    ? await db
        .select()
        .from(modelAliases)
        .where(inArray(modelAliases.modelName, names))
        .orderBy(asc(modelAliases.alias))
    : [];
  const byModel = new Map<string, ModelAlias[]>();
  for (const row of rows)
    byModel.set(row.modelName, [...(byModel.get(row.modelName) ?? []), { alias: row.alias, version: row.version }]);
  return byModel;
}

async function withAliases(db: Executor, rows: ModelVersionRow[]): Promise<ModelVersion[]> {
  const aliases = await aliasesOf(db, [...new Set(rows.map((r) => r.modelName))]);
  return rows.map((row) =>
    toVersion(
      row,
      (aliases.get(row.modelName) ?? []).filter((a) => a.version === row.version).map((a) => a.alias),
    ),
  );
}

async function hydrate(db: Executor, rows: (typeof registeredModels.$inferSelect)[]): Promise<RegisteredModel[]> {
  if (!rows.length) return [];
  const names = rows.map((r) => r.name);
  const aliases = await aliasesOf(db, names);
  const latest = await db
    .selectDistinctOn([modelVersions.modelName, modelVersions.status])
    .from(modelVersions)
    .where(inArray(modelVersions.modelName, names))
    .orderBy(modelVersions.modelName, modelVersions.status, desc(modelVersions.version));
  const counts = await db
    .select({ name: modelVersions.modelName, n: sql<number>`count(*)::int` })
    .from(modelVersions)
    .where(inArray(modelVersions.modelName, names))
    .groupBy(modelVersions.modelName);
  return rows.map((row) => {
    const held = aliases.get(row.name) ?? [];
    return {
      name: row.name,
      task: row.task,
      description: row.description,
      tags: row.tags,
      aliases: held,
      latestVersions: latest
        .filter((v) => v.modelName === row.name)
        .sort((a, b) => b.version - a.version)
        .map((v) =>
          toVersion(
            v,
            held.filter((a) => a.version === v.version).map((a) => a.alias),
          ),
        ),
      versionCount: counts.find((c) => c.name === row.name)?.n ?? 0,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    };
  });
}

export async function findRegisteredModel(db: Executor, name: string): Promise<RegisteredModel | undefined> {
  const [model] = await hydrate(db, await db.select().from(registeredModels).where(eq(registeredModels.name, name)));
  return model;
}

export async function getRegisteredModel(db: Executor, name: string): Promise<RegisteredModel> {
  const model = await findRegisteredModel(db, name);
  if (!model) throw notFound(`registered model "${name}"`);
  return model;
}

/**
 * MLflow's search: `name = 'x'`, `name LIKE '%x%'`, `tags.k = 'v'` with AND; order by name or timestamps; offset page
 * tokens.
 */
export async function searchRegisteredModels(
  db: Executor,
  input: { filter?: string; maxResults?: number; orderBy?: string[]; pageToken?: string } = {},
): Promise<{ models: RegisteredModel[]; nextPageToken?: string }> {
  const where = parseRegistryFilter(input.filter).map((clause) => {
    if (clause.field === 'name') return compare(sql`${registeredModels.name}`, clause);
    if (clause.field.startsWith('tags.'))
      return compare(sql`${registeredModels.tags} ->> ${clause.field.slice(5)}`, clause);
    throw invalid('filter', `cannot filter registered models by "${clause.field}": use name or tags.<key>`);
  });
  const order = orderBy(input.orderBy, {
    name: sql`${registeredModels.name}`,
    creation_timestamp: sql`${registeredModels.createdAt}`,
    last_updated_timestamp: sql`${registeredModels.updatedAt}`,
    timestamp: sql`${registeredModels.updatedAt}`,
  });
  const limit = limitOf(input.maxResults, 100, 1000);
  const offset = decodePageToken(input.pageToken);
  const rows = await db
    .select()
    .from(registeredModels)
    .where(and(...where))
    .orderBy(...order, asc(registeredModels.name))
    .limit(limit + 1)
    .offset(offset);
  return {
    models: await hydrate(db, rows.slice(0, limit)),
    nextPageToken: rows.length > limit ? encodePageToken(offset + limit) : undefined,
  };
}

/** Every registered model, by name. */
export async function listRegisteredModels(db: Executor): Promise<RegisteredModel[]> {
  const models: RegisteredModel[] = [];
  let pageToken: string | undefined;
  do {
    const page = await searchRegisteredModels(db, { maxResults: 1000, pageToken });
    models.push(...page.models);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return models;
}

export async function findModelVersion(
  db: Executor,
  modelName: string,
  version: number,
): Promise<ModelVersion | undefined> {
  const rows = Number.isSafeInteger(version)
    ? await db.select().from(modelVersions).where(versionKey(modelName, version))
    : [];
  const [found] = await withAliases(db, rows);
  return found;
}

export async function getModelVersion(db: Executor, modelName: string, version: number): Promise<ModelVersion> {
  const found = await findModelVersion(db, modelName, version);
  if (!found) throw notFound(`model version ${modelName} v${version}`);
  return found;
}

/** Several versions at once (serving's reload); missing ones are left out. */
export async function findModelVersions(
  db: Executor,
  keys: { modelName: string; version: number }[],
): Promise<ModelVersion[]> {
  if (!keys.length) return [];
  const rows = await db
    .select()
    .from(modelVersions)
    .where(or(...keys.map((k) => versionKey(k.modelName, k.version))));
  return withAliases(db, rows);
}

export async function listModelVersions(db: Executor, modelName: string): Promise<ModelVersion[]> {
  return withAliases(
    db,
    await db
      .select()
      .from(modelVersions)
      .where(eq(modelVersions.modelName, modelName))
      .orderBy(asc(modelVersions.version)),
  );
}

/** The versions trained by a run or on a dataset version (lineage, the other way round). */
export async function versionsFrom(
  db: Executor,
  source: { runId: string } | { datasetVersionId: string },
): Promise<ModelVersion[]> {
  const where =
    'runId' in source
      ? eq(modelVersions.runId, source.runId)
      : eq(modelVersions.datasetVersionId, source.datasetVersionId);
  return withAliases(
    db,
    await db
      .select()
      .from(modelVersions)
      .where(where)
      .orderBy(asc(modelVersions.modelName), asc(modelVersions.version)),
  );
}

export async function latestModelVersion(db: Executor, modelName: string): Promise<ModelVersion | undefined> {
  const [found] = await withAliases(
    db,
    await db
      .select()
      .from(modelVersions)
      .where(eq(modelVersions.modelName, modelName))
      .orderBy(desc(modelVersions.version))
      .limit(1),
  );
  return found;
}

/** MLflow's version search: `name`, `run_id` (= or IN), `source_path`, `version_number`, `tags.k`, joined with AND. */
export async function searchModelVersions(
  db: Executor,
  input: { filter?: string; maxResults?: number; orderBy?: string[]; pageToken?: string } = {},
): Promise<{ versions: ModelVersion[]; nextPageToken?: string }> {
  const where = parseRegistryFilter(input.filter).map((clause) => {
    switch (clause.field) {
      case 'name':
        return compare(sql`${modelVersions.modelName}`, clause);
      case 'run_id':
        return compare(sql`${modelVersions.runId}`, clause);
      case 'source_path':
      case 'source':
        return compare(sql`${modelVersions.source}`, clause);
      case 'version_number':
      case 'version':
        return compare(sql`${modelVersions.version}`, clause, true);
    }
    if (clause.field.startsWith('tags.'))
      return compare(sql`${modelVersions.tags} ->> ${clause.field.slice(5)}`, clause);
    throw invalid(
      'filter',
      `cannot filter model versions by "${clause.field}": use name, run_id, source_path, version_number or tags.<key>`,
    );
  });
  const order = orderBy(input.orderBy, {
    name: sql`${modelVersions.modelName}`,
    version_number: sql`${modelVersions.version}`,
    version: sql`${modelVersions.version}`,
    creation_timestamp: sql`${modelVersions.createdAt}`,
    last_updated_timestamp: sql`${modelVersions.updatedAt}`,
    timestamp: sql`${modelVersions.updatedAt}`,
  });
  const limit = limitOf(input.maxResults, 10_000, 200_000);
  const offset = decodePageToken(input.pageToken);
  const rows = await db
    .select()
    .from(modelVersions)
    .where(and(...where))
    .orderBy(...order, asc(modelVersions.modelName), desc(modelVersions.version))
    .limit(limit + 1)
    .offset(offset);
  return {
    versions: await withAliases(db, rows.slice(0, limit)),
    nextPageToken: rows.length > limit ? encodePageToken(offset + limit) : undefined,
  };
}

export async function getVersionByAlias(db: Executor, modelName: string, alias: string): Promise<ModelVersion> {
  const found = await findVersionByAlias(db, modelName, alias);
  if (!found) throw notFound(`alias @${alias} of registered model "${modelName}"`);
  return found;
}

export async function findVersionByAlias(
  db: Executor,
  modelName: string,
  alias: string,
): Promise<ModelVersion | undefined> {
  const [row] = await db
    .select({ version: modelAliases.version })
    .from(modelAliases)
    .where(and(eq(modelAliases.modelName, modelName), eq(modelAliases.alias, alias)));
  return row ? findModelVersion(db, modelName, row.version) : undefined;
}

/** Alias moves of a model (or those to or from one version), newest first unless `oldestFirst`. */
export async function listAliasEvents(
  db: Executor,
  input: { modelName: string; alias?: string; version?: number; limit?: number; oldestFirst?: boolean },
): Promise<AliasEvent[]> {
  const query = db
    .select()
    .from(aliasEvents)
    .where(
      and(
        eq(aliasEvents.modelName, input.modelName),
        input.alias === undefined ? undefined : eq(aliasEvents.alias, input.alias),
        input.version === undefined
          ? undefined
          : or(eq(aliasEvents.toVersion, input.version), eq(aliasEvents.fromVersion, input.version)),
      ),
    )
    .orderBy(input.oldestFirst ? asc(aliasEvents.id) : desc(aliasEvents.id))
    .$dynamic();
  return (await (input.limit === undefined ? query : query.limit(input.limit))).map(toAliasEvent);
}

/** Where a rollback of `model@alias` goes: the version that held it before the current one moved there. */
export async function rollbackTarget(
  db: Executor,
  modelName: string,
  alias: string,
): Promise<{ current: number | null; previous: number | null }> {
  const [current] = await db
    .select()
    .from(modelAliases)
    .where(and(eq(modelAliases.modelName, modelName), eq(modelAliases.alias, alias)));
  if (!current) return { current: null, previous: null };
  const [last] = await db
    .select()
    .from(aliasEvents)
    .where(
      and(
        eq(aliasEvents.modelName, modelName),
        eq(aliasEvents.alias, alias),
        eq(aliasEvents.toVersion, current.version),
      ),
    )
    .orderBy(desc(aliasEvents.id))
    .limit(1);
  return { current: current.version, previous: last?.fromVersion ?? null };
}

// ---------------------------------------------------------------- registered models

export async function createRegisteredModel(
  db: Executor,
  input: { name: string; description?: string; tags?: Record<string, string> },
): Promise<RegisteredModel> {
  checkModelName(input.name);
  const [row] = await db
    .insert(registeredModels)
    .values({ name: input.name, description: input.description ?? null, tags: input.tags ?? {} })
    .onConflictDoNothing()
    .returning();
  if (!row) throw new ApiError('RESOURCE_ALREADY_EXISTS', `registered model "${input.name}" already exists`);
  return (await hydrate(db, [row]))[0]!;
}

/** `description`: undefined leaves it, null clears it. */
export async function updateRegisteredModel(
  db: Executor,
  name: string,
  input: { description?: string | null },
): Promise<RegisteredModel> {
  const [row] = await db
    .update(registeredModels)
    .set({ ...(input.description !== undefined ? { description: input.description } : {}), updatedAt: new Date() })
    .where(eq(registeredModels.name, name))
    .returning();
  if (!row) throw notFound(`registered model "${name}"`);
  return (await hydrate(db, [row]))[0]!;
}

/** Sets (string) or removes (null) tags in one statement. */
export async function setRegisteredModelTags(
  db: Executor,
  name: string,
  tags: Record<string, string | null>,
): Promise<void> {
  const [row] = await db
    .update(registeredModels)
    .set({
      tags: sql`jsonb_strip_nulls(${registeredModels.tags} || ${JSON.stringify(tags)}::jsonb)`,
      updatedAt: new Date(),
    })
    .where(eq(registeredModels.name, name))
    .returning({ name: registeredModels.name });
  if (!row) throw notFound(`registered model "${name}"`);
}

/** Deletes a model and its versions; refused while an alias points at one of them (move or delete it first). */
export async function deleteRegisteredModel(db: Db, name: string): Promise<void> {
  await db.transaction(async (tx) => {
    const [model] = await tx
      .select({ name: registeredModels.name })
      .from(registeredModels)
      .where(eq(registeredModels.name, name))
      .for('update');
    if (!model) throw notFound(`registered model "${name}"`);
    const held = await tx.select().from(modelAliases).where(eq(modelAliases.modelName, name));
    if (held.length)
      throw new ApiError(
        'INVALID_STATE',
        `registered model "${name}" has aliases ${held.map((a) => `@${a.alias} (v${a.version})`).join(', ')}; delete them first`,
      );
    await tx.delete(modelVersions).where(eq(modelVersions.modelName, name));
    await tx.delete(registeredModels).where(eq(registeredModels.name, name));
  });
}

// ---------------------------------------------------------------- model versions

/** Locks the model row (serialising version numbers and alias moves per model) and answers the next version number. */
async function lockModel(tx: Executor, name: string): Promise<number> {
  const [model] = await tx
    .select({ name: registeredModels.name })
    .from(registeredModels)
    .where(eq(registeredModels.name, name))
    .for('update');
  if (!model) throw notFound(`registered model "${name}"`);
  const [{ latest } = { latest: 0 }] = await tx
    .select({ latest: max(modelVersions.version) })
    .from(modelVersions)
    .where(eq(modelVersions.modelName, name));
  return (latest ?? 0) + 1;
}

export interface CreateVersionInput {
  modelName: string;
  /**
   * The run that produced it: its dataset version, params, metrics, code version and artifact become the version's
   * lineage.
   */
  runId?: string;
  /** Where the model lives (MLflow's `source`: runs:/…, models:/…, mlflow-artifacts:/…, s3://…). */
  source?: string;
  description?: string;
  tags?: Record<string, string>;
  userId?: string;
  /** Create the registered model when it does not exist (Flywheel's API); MLflow's refuses instead. */
  createModel?: boolean;
}

/** A version registered over the API, from a run id and/or a source URI; numbered under the model's row lock. */
export async function createModelVersion(db: Db, input: CreateVersionInput): Promise<ModelVersion> {
  if (!input.runId && !input.source) throw invalid('source', 'a version needs a source URI or a run id');
  if (input.createModel) checkModelName(input.modelName);
  return db.transaction(async (tx) => {
    if (input.createModel) await tx.insert(registeredModels).values({ name: input.modelName }).onConflictDoNothing();
    const version = await lockModel(tx, input.modelName);
    const run = input.runId ? await getRun(tx, input.runId) : undefined;
    const [row] = await tx
      .insert(modelVersions)
      .values({
        modelName: input.modelName,
        version,
        runId: input.runId ?? null,
        source: input.source ?? null,
        datasetVersionId: run?.datasetVersionId ?? null,
        codeVersion: run?.codeVersion ?? null,
        params: run?.params ?? {},
        // jsonb has no NaN or Infinity: a diverged metric is left out of the version's copy.
        metrics: Object.fromEntries(Object.entries(run?.metrics ?? {}).filter(([, v]) => Number.isFinite(v))),
        // artifact_key is NOT NULL: '' marks a version serving cannot load (read back as null).
        artifactKey: run?.artifactKey ?? null,
        description: input.description ?? null,
        userId: input.userId ?? null,
        tags: input.tags ?? {},
      })
      .returning();
    await tx.update(registeredModels).set({ updatedAt: new Date() }).where(eq(registeredModels.name, input.modelName));
    await enqueueWebhookEvent(tx, 'model_version.created', input.modelName, {
      version,
      run_id: row!.runId,
      dataset_version: row!.datasetVersionId,
      gate: row!.tags.gate ?? null,
      metrics: row!.metrics,
      source: row!.source,
      workflow_id: null,
    });
    return toVersion(row!, []);
  });
}

export interface PipelineVersionInput {
  workflowId: string;
  modelName: string;
  task: string;
  runId: string;
  datasetVersionId: string;
  params: Record<string, unknown>;
  metrics: Record<string, number>;
  codeVersion?: string;
  artifactKey: string;
  predictionReferenceKey: string;
  tags?: Record<string, string>;
  evaluation?: ReleaseEvaluation;
}

/**
 * A pipeline's version, with its release evaluation; idempotent per workflow (a retried activity gets the same
 * version).
 */
export async function registerPipelineVersion(
  db: Db,
  input: PipelineVersionInput,
): Promise<{ modelName: string; version: number }> {
  return db.transaction(async (tx) => {
    // A model a client registered first has no task yet: the pipeline's fills it in.
    await tx
      .insert(registeredModels)
      .values({ name: input.modelName, task: input.task })
      .onConflictDoUpdate({
        target: registeredModels.name,
        set: { task: sql`coalesce(${registeredModels.task}, excluded.task)` },
      });
    const next = await lockModel(tx, input.modelName);
    const [mine] = await tx
      .select({ version: modelVersions.version })
      .from(modelVersions)
      .where(and(eq(modelVersions.modelName, input.modelName), eq(modelVersions.workflowId, input.workflowId)));
    if (mine) return { modelName: input.modelName, version: mine.version };
    await tx.insert(modelVersions).values({
      modelName: input.modelName,
      version: next,
      runId: input.runId,
      datasetVersionId: input.datasetVersionId,
      workflowId: input.workflowId,
      codeVersion: input.codeVersion,
      params: input.params,
      metrics: input.metrics,
      artifactKey: input.artifactKey,
      predictionReferenceKey: input.predictionReferenceKey,
      tags: input.tags ?? {},
      evaluation: input.evaluation,
    });
    await enqueueWebhookEvent(tx, 'model_version.created', input.modelName, {
      version: next,
      run_id: input.runId,
      dataset_version: input.datasetVersionId,
      gate: input.tags?.gate ?? null,
      metrics: input.metrics,
      workflow_id: input.workflowId,
    });
    return { modelName: input.modelName, version: next };
  });
}

/** `description`: undefined leaves it, null clears it. */
export async function updateModelVersion(
  db: Executor,
  modelName: string,
  version: number,
  input: { description?: string | null },
): Promise<ModelVersion> {
  const [row] = await db
    .update(modelVersions)
    .set({ ...(input.description !== undefined ? { description: input.description } : {}), updatedAt: new Date() })
    .where(versionKey(modelName, version))
    .returning();
  if (!row) throw notFound(`model version ${modelName} v${version}`);
  return (await withAliases(db, [row]))[0]!;
}

/** Sets (string) or removes (null) tags in one statement. */
export async function setModelVersionTags(
  db: Executor,
  modelName: string,
  version: number,
  tags: Record<string, string | null>,
): Promise<void> {
  const [row] = await db
    .update(modelVersions)
    .set({
      tags: sql`jsonb_strip_nulls(${modelVersions.tags} || ${JSON.stringify(tags)}::jsonb)`,
      updatedAt: new Date(),
    })
    .where(versionKey(modelName, version))
    .returning({ version: modelVersions.version });
  if (!row) throw notFound(`model version ${modelName} v${version}`);
}

/** Refuses a version an alias or a rollout still uses. */
async function assertUnused(tx: Executor, modelName: string, version: number, action: string): Promise<void> {
  const held = await tx
    .select()
    .from(modelAliases)
    .where(and(eq(modelAliases.modelName, modelName), eq(modelAliases.version, version)));
  if (held.length)
    throw new ApiError(
      'INVALID_STATE',
      `${modelName} v${version} holds ${held.map((a) => `@${a.alias}`).join(', ')}; move the alias before you ${action} it`,
    );
  const [route] = await tx
    .select()
    .from(trafficRoutes)
    .where(
      and(
        eq(trafficRoutes.modelName, modelName),
        or(eq(trafficRoutes.baseVersion, version), eq(trafficRoutes.candidateVersion, version)),
      ),
    );
  if (route)
    throw new ApiError(
      'INVALID_STATE',
      `${modelName} v${version} is in a ${route.mode} rollout (${route.workflowId}); wait for it to end before you ${action} it`,
    );
}

export async function deleteModelVersion(db: Db, modelName: string, version: number): Promise<void> {
  await db.transaction(async (tx) => {
    await lockModel(tx, modelName);
    const [row] = await tx
      .select({ version: modelVersions.version })
      .from(modelVersions)
      .where(versionKey(modelName, version))
      .for('update');
    if (!row) throw notFound(`model version ${modelName} v${version}`);
    await assertUnused(tx, modelName, version, 'delete');
    await tx.delete(modelVersions).where(versionKey(modelName, version));
    await tx.update(registeredModels).set({ updatedAt: new Date() }).where(eq(registeredModels.name, modelName));
  });
}

/** Archives a version: kept for lineage, no alias may point at it. */
export async function archiveModelVersion(db: Db, modelName: string, version: number): Promise<void> {
  await db.transaction(async (tx) => {
    await lockModel(tx, modelName);
    const [row] = await tx
      .select({ version: modelVersions.version })
      .from(modelVersions)
      .where(versionKey(modelName, version))
      .for('update');
    if (!row) throw notFound(`model version ${modelName} v${version}`);
    await assertUnused(tx, modelName, version, 'archive');
    await tx
      .update(modelVersions)
      .set({ status: 'archived', updatedAt: new Date() })
      .where(versionKey(modelName, version));
  });
}

// ---------------------------------------------------------------- aliases

export interface AliasMoveInput {
  modelName: string;
  alias: string;
  version: number;
  /** Who moved it (`token:<name>` for workflows, the token's name over the API). */
  actor: string;
  reason: string;
  /** Idempotency for workflows: one move per (workflow, alias); a retry returns the recorded move. */
  workflowId?: string;
}

export interface AliasMoveResult {
  fromVersion: number | null;
  toVersion: number;
  /** False when nothing changed: this workflow had already moved it, or the alias already pointed there. */
  moved: boolean;
}

/**
 * The one alias move: in one transaction, under the model's row lock, the alias, its audit event (who, why, from → to)
 * and the deployment serving that alias; then serving is notified. Archived versions are refused, and so is a version
 * serving could not load while the alias is deployed.
 */
export async function setAlias(db: Db, input: AliasMoveInput): Promise<AliasMoveResult> {
  checkAliasName(input.alias);
  const result = await db.transaction(async (tx): Promise<AliasMoveResult> => {
    if (input.workflowId) {
      const [done] = await tx
        .select()
        .from(aliasEvents)
        .where(
          and(
            eq(aliasEvents.workflowId, input.workflowId),
            eq(aliasEvents.modelName, input.modelName),
            eq(aliasEvents.alias, input.alias),
          ),
        );
      if (done) return { fromVersion: done.fromVersion, toVersion: done.toVersion ?? input.version, moved: false };
    }
    await lockModel(tx, input.modelName);
    const [target] = await tx
      .select({ status: modelVersions.status, artifactKey: modelVersions.artifactKey })
      .from(modelVersions)
      .where(versionKey(input.modelName, input.version));
    if (!target)
      throw new ApiError('RESOURCE_DOES_NOT_EXIST', `model ${input.modelName} has no version ${input.version}`);
    if (target.status === 'archived')
      throw new ApiError('INVALID_STATE', `${input.modelName} v${input.version} is archived; no alias may point at it`);
    const [current] = await tx
      .select()
      .from(modelAliases)
      .where(and(eq(modelAliases.modelName, input.modelName), eq(modelAliases.alias, input.alias)));
    if (current?.version === input.version)
      return { fromVersion: current.version, toVersion: input.version, moved: false };
    const deploymentId = `${input.modelName}/${input.alias}`;
    const [deployment] = await tx
      .select({ id: deployments.id })
      .from(deployments)
      .where(eq(deployments.id, deploymentId));
    if (deployment && !target.artifactKey) {
      throw new ApiError(
        'INVALID_STATE',
        `@${input.alias} of ${input.modelName} is served, and v${input.version} was registered from an outside source serving cannot load`,
      );
    }
    await tx
      .insert(modelAliases)
      .values({ modelName: input.modelName, alias: input.alias, version: input.version })
      .onConflictDoUpdate({
        target: [modelAliases.modelName, modelAliases.alias],
        set: { version: input.version, updatedAt: new Date() },
      });
    await tx.insert(aliasEvents).values({
      modelName: input.modelName,
      alias: input.alias,
      fromVersion: current?.version ?? null,
      toVersion: input.version,
      actor: input.actor,
      reason: input.reason,
      workflowId: input.workflowId ?? null,
    });
    if (deployment)
      await tx
        .update(deployments)
        .set({ version: input.version, updatedAt: new Date() })
        .where(eq(deployments.id, deploymentId));
    await enqueueWebhookEvent(tx, 'model_version_alias.moved', input.modelName, {
      alias: input.alias,
      from_version: current?.version ?? null,
      to_version: input.version,
      actor: input.actor,
      reason: input.reason,
      workflow_id: input.workflowId ?? null,
    });
    return { fromVersion: current?.version ?? null, toVersion: input.version, moved: true };
  });
  if (result.moved) await notifyServing(db, input.modelName);
  return result;
}

/** Removes an alias, audited; refused while a deployment serves it (serving would go on answering with its version). */
export async function deleteAlias(
  db: Db,
  input: { modelName: string; alias: string; actor: string; reason: string },
): Promise<{ fromVersion: number }> {
  return db.transaction(async (tx) => {
    await lockModel(tx, input.modelName);
    const [current] = await tx
      .select()
      .from(modelAliases)
      .where(and(eq(modelAliases.modelName, input.modelName), eq(modelAliases.alias, input.alias)));
    if (!current) throw notFound(`alias @${input.alias} of registered model "${input.modelName}"`);
    const [deployment] = await tx
      .select({ id: deployments.id })
      .from(deployments)
      .where(eq(deployments.id, `${input.modelName}/${input.alias}`));
    if (deployment)
      throw new ApiError(
        'INVALID_STATE',
        `@${input.alias} of ${input.modelName} is served (deployment ${deployment.id}); move it to another version instead`,
      );
    await tx
      .delete(modelAliases)
      .where(and(eq(modelAliases.modelName, input.modelName), eq(modelAliases.alias, input.alias)));
    await tx.insert(aliasEvents).values({
      modelName: input.modelName,
      alias: input.alias,
      fromVersion: current.version,
      toVersion: null,
      actor: input.actor,
      reason: input.reason,
    });
    await enqueueWebhookEvent(tx, 'model_version_alias.deleted', input.modelName, {
      alias: input.alias,
      from_version: current.version,
      to_version: null,
      actor: input.actor,
      reason: input.reason,
      workflow_id: null,
    });
    return { fromVersion: current.version };
  });
}

export async function notifyServing(db: Executor, modelName: string): Promise<void> {
  await db.execute(sql`select pg_notify(${SERVING_CHANNEL}, ${modelName})`);
}

// ---------------------------------------------------------------- approvals

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired';
export type Approval = Omit<typeof modelApprovals.$inferSelect, 'status'> & { status: ApprovalStatus };

export async function openApproval(
  db: Executor,
  input: { workflowId: string; modelName: string; version: number },
): Promise<void> {
  await db.insert(modelApprovals).values(input).onConflictDoNothing();
}

/** Decides a pending approval; a decided one stays as it was. */
export async function closeApproval(
  db: Executor,
  input: { workflowId: string; status: Exclude<ApprovalStatus, 'pending'>; actor: string; comment?: string },
): Promise<void> {
  await db
    .update(modelApprovals)
    .set({ status: input.status, actor: input.actor, comment: input.comment ?? null, decidedAt: new Date() })
    .where(and(eq(modelApprovals.workflowId, input.workflowId), eq(modelApprovals.status, 'pending')));
}

export async function listApprovals(
  db: Executor,
  modelName: string,
  version: number,
  status?: ApprovalStatus,
): Promise<Approval[]> {
  const rows = await db
    .select()
    .from(modelApprovals)
    .where(
      and(
        eq(modelApprovals.modelName, modelName),
        eq(modelApprovals.version, version),
        status ? eq(modelApprovals.status, status) : undefined,
      ),
    );
  return rows as Approval[];
}
