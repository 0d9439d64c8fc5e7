/**
 * The runs store: runs (a pipeline's, or a client's over the API), their params, tags and step metrics, and search.
 * Rows become `Run`s here; every multi-statement write is one transaction.
 */
import { randomBytes } from 'node:crypto';
import { and, asc, eq, gt, isNotNull, isNull, or, sql, type SQL } from 'drizzle-orm';
import { ApiError, invalid, notFound } from '../config/errors';
import { experiments, runMetrics, runs, type RunRow, type RunStatus } from '../schema/runs';
import type { Db } from '../storage/db';
import {
  decodePageToken,
  encodePageToken,
  ensureExperiment,
  experimentNames,
  getExperiment,
  type Executor,
  type ViewType,
} from './experiments';
import { latestPerKey, latestPerStep, setLatest, upsertLatest } from './metrics';
import { compileSearch, orderedMetric } from './runFilterSql';

export interface Run extends Omit<RunRow, 'metrics'> {
  experimentId: number;
  /** Latest value per metric key (NaN and ±Infinity included). */
  metrics: Record<string, number>;
  /** Where clients put this run's artifacts. */
  artifactUri: string;
  lifecycleStage: 'active' | 'deleted';
}

export interface MetricPoint {
  key: string;
  value: number;
  step: number;
  timestamp: number;
}

/** MLflow's limits per request and per value, so a client cannot write unbounded rows or text. */
export const LIMITS = {
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
} as const;

/** jsonb has no NaN or Infinity: they are stored as strings and read back as numbers. */
const toJsonNumber = (value: number): number | string => (Number.isFinite(value) ? value : String(value));
const fromJsonMetrics = (metrics: Record<string, unknown> | null): Record<string, number> =>
  Object.fromEntries(Object.entries(metrics ?? {}).map(([k, v]) => [k, typeof v === 'number' ? v : Number(v)]));

/** A metric that jsonb holds as text but search reads as a number (NaN and ±Infinity, or a numeric string). */
const NUMERIC_TEXT = /^(\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*|NaN|Infinity|-Infinity)$/;

const artifactUri = (experimentId: number, runId: string) => `mlflow-artifacts:/${experimentId}/${runId}/artifacts`;
/** Where a run's artifacts lie in the bucket (the MLflow artifact proxy's layout: `mlflow-artifacts/<path>`). */
export const runArtifactPrefix = (experimentId: number | string, runId: string) =>
  `mlflow-artifacts/${experimentId}/${runId}/artifacts/`;

function toRun(row: RunRow, experimentId: number): Run {
  return {
    ...row,
    metrics: fromJsonMetrics(row.metrics),
    experimentId,
    artifactUri: artifactUri(experimentId, row.id),
    lifecycleStage: row.deletedAt ? 'deleted' : 'active',
  };
}

const KEY = /^[A-Za-z0-9_\-. /:]+$/;
function checkKey(field: string, key: string): void {
  if (!key) throw invalid(field, 'must not be empty');
  if (key.length > LIMITS.keyLength)
    throw invalid(field, `"${key.slice(0, 40)}…" is longer than ${LIMITS.keyLength} characters`);
  if (!KEY.test(key) || key.split('/').includes('..'))
    throw invalid(field, `"${key}" may hold only letters, digits, _ - . space / and :`);
}

export function newRunId(): string {
  return randomBytes(16).toString('hex');
}

/** A run logged by a client. */
export async function createRun(
  db: Db,
  input: {
    experimentId?: number;
    experimentName?: string;
    userId?: string;
    name?: string;
    startTime?: number;
    tags?: Record<string, string>;
  },
): Promise<Run> {
  const tags = input.tags ?? {};
  for (const [key, value] of Object.entries(tags)) checkTag(key, value);
  return db.transaction(async (tx) => {
    const experiment =
      input.experimentName !== undefined
        ? await ensureExperiment(tx, input.experimentName)
        : await getExperiment(tx, input.experimentId ?? 0);
    if (experiment.lifecycleStage === 'deleted')
      throw new ApiError('INVALID_STATE', `experiment ${experiment.id} is deleted`);
    const id = newRunId();
    const name = input.name ?? tags['mlflow.runName'] ?? `run-${id.slice(0, 8)}`;
    const [row] = await tx
      .insert(runs)
      .values({
        id,
        experiment: experiment.name,
        name,
        userId: input.userId ?? tags['mlflow.user'] ?? null,
        status: 'running',
        tags: { ...tags, 'mlflow.runName': name },
        params: {},
        metrics: {},
        startedAt: input.startTime !== undefined ? new Date(input.startTime) : new Date(),
      })
      .returning();
    return toRun(row!, experiment.id);
  });
}

/** A pipeline's run (idempotent: a retried attempt finds the row it wrote). */
export async function createPipelineRun(db: Db, values: typeof runs.$inferInsert): Promise<void> {
  await db.transaction(async (tx) => {
    await ensureExperiment(tx, values.experiment ?? 'default');
    const inserted = await tx
      .insert(runs)
      .values({ name: values.id, ...values })
      .onConflictDoNothing()
      .returning({ id: runs.id });
    // Metrics given up front (an imported run) become its latest values too; what jsonb does not hold as a number (a JS
    // NaN is stored as null) is left out, as search leaves it out.
    const latest = Object.fromEntries(
      Object.entries(values.metrics ?? {})
        .filter(([, v]) => (typeof v === 'number' ? Number.isFinite(v) : typeof v === 'string' && NUMERIC_TEXT.test(v)))
        .map(([k, v]) => [k, Number(v)]),
    );
    if (inserted.length && Object.keys(latest).length) await tx.execute(setLatest(values.id, latest));
  });
}

export async function getRun(db: Executor, id: string): Promise<Run> {
  const [found] = await db
    .select({
      run: runs,
      experimentId: sql<number>`(select e.id from experiments e where e.name = ${runs.experiment})`,
    })
    .from(runs)
    .where(eq(runs.id, id));
  if (!found) throw notFound(`run ${id}`);
  return toRun(found.run, found.experimentId);
}

/** Runs by id or unique id prefix (what people type in the CLI). */
export async function findRun(db: Db, reference: string): Promise<Run> {
  const [exact] = await db
    .select({ id: runs.id })
    .from(runs)
    .where(or(eq(runs.id, reference), eq(runs.id, `run-${reference}`)));
  if (exact) return getRun(db, exact.id);
  const prefix = reference.replace(/[%_\\]/g, '\\$&');
  const found = await db
    .select({ id: runs.id })
    .from(runs)
    .where(sql`${runs.id} LIKE ${`${prefix}%`} OR ${runs.id} LIKE ${`run-${prefix}%`}`)
    .limit(6);
  if (found.length === 0) throw notFound(`run ${reference}`);
  if (found.length > 1)
    throw invalid(
      'run',
      `"${reference}" is ambiguous: ${found
        .slice(0, 5)
        .map((r) => r.id)
        .join(', ')}`,
    );
  return getRun(db, found[0]!.id);
}

export async function updateRun(
  db: Db,
  id: string,
  input: { status?: RunStatus; endTime?: number; name?: string },
): Promise<Run> {
  return db.transaction(async (tx) => {
    const run = await lockRun(tx, id);
    const set: Partial<typeof runs.$inferInsert> = {};
    if (input.status) set.status = input.status;
    if (input.endTime !== undefined) set.endedAt = new Date(input.endTime);
    else if (input.status && input.status !== 'running' && input.status !== 'scheduled' && !run.endedAt)
      set.endedAt = new Date();
    if (input.name !== undefined) {
      set.name = input.name;
      set.tags = { ...run.tags, 'mlflow.runName': input.name };
    }
    if (Object.keys(set).length) await tx.update(runs).set(set).where(eq(runs.id, id));
    return getRun(tx, id);
  });
}

export async function setRunDeleted(db: Db, id: string, deleted: boolean): Promise<void> {
  const [row] = await db
    .update(runs)
    .set({ deletedAt: deleted ? new Date() : null })
    .where(eq(runs.id, id))
    .returning({ id: runs.id });
  if (!row) throw notFound(`run ${id}`);
}

async function lockRun(tx: Executor, id: string): Promise<RunRow> {
  const [row] = await tx.select().from(runs).where(eq(runs.id, id)).for('update');
  if (!row) throw notFound(`run ${id}`);
  return row;
}

/** The run row to log to, locked for this transaction: a missing run is a 404, a deleted one is refused. */
export async function lockActiveRun(tx: Executor, id: string): Promise<RunRow> {
  const run = await lockRun(tx, id);
  if (run.deletedAt) throw new ApiError('INVALID_STATE', `run ${id} is deleted; restore it before logging to it`);
  return run;
}

function checkTag(key: string, value: string): void {
  checkKey('tags.key', key);
  if (value.length > LIMITS.tagValueLength)
    throw invalid(`tags.${key}`, `value is longer than ${LIMITS.tagValueLength} characters`);
}

/**
 * Params, tags and metric points in one transaction. Params are immutable once logged (a different value is refused,
 * the same value is a no-op), as in MLflow. A point re-logged at the same step replaces the earlier one unless it is
 * older (timestamp, then value): history keeps MLflow's latest point per step. The run's row lock orders concurrent
 * batches.
 */
export async function logBatch(
  db: Db,
  runId: string,
  batch: { metrics?: MetricPoint[]; params?: Record<string, string>; tags?: Record<string, string> },
): Promise<void> {
  const metrics = batch.metrics ?? [],
    params = batch.params ?? {},
    tags = batch.tags ?? {};
  if (metrics.length > LIMITS.metricsPerBatch)
    throw invalid('metrics', `at most ${LIMITS.metricsPerBatch} per batch, got ${metrics.length}`);
  if (Object.keys(params).length > LIMITS.paramsPerBatch)
    throw invalid('params', `at most ${LIMITS.paramsPerBatch} per batch`);
  if (Object.keys(tags).length > LIMITS.tagsPerBatch) throw invalid('tags', `at most ${LIMITS.tagsPerBatch} per batch`);
  metrics.forEach((m, i) => {
    checkKey(`metrics[${i}].key`, m.key);
    if (typeof m.value !== 'number') throw invalid(`metrics[${i}].value`, 'must be a number');
    if (!Number.isSafeInteger(m.step) || Math.abs(m.step) > 2 ** 31 - 1)
      throw invalid(`metrics[${i}].step`, 'must be a 32-bit integer');
    if (!Number.isSafeInteger(m.timestamp))
      throw invalid(`metrics[${i}].timestamp`, 'must be an integer (milliseconds)');
  });
  for (const [key, value] of Object.entries(params)) {
    checkKey('params.key', key);
    if (value.length > LIMITS.paramValueLength)
      throw invalid(`params.${key}`, `value is longer than ${LIMITS.paramValueLength} characters`);
  }
  for (const [key, value] of Object.entries(tags)) checkTag(key, value);

  await db.transaction(async (tx) => {
    const run = await lockActiveRun(tx, runId);
    const set: Partial<typeof runs.$inferInsert> = {};
    if (Object.keys(params).length) {
      for (const [key, value] of Object.entries(params)) {
        const existing = run.params[key];
        if (existing !== undefined && String(existing) !== value) {
          throw invalid(
            `params.${key}`,
            `changing a logged param is not allowed (run ${runId} has "${String(existing)}", new value "${value}")`,
          );
        }
      }
      set.params = sql`${runs.params} || ${JSON.stringify(params)}::jsonb` as never;
    }
    if (Object.keys(tags).length) {
      set.tags = sql`${runs.tags} || ${JSON.stringify(tags)}::jsonb` as never;
      if (tags['mlflow.runName'] !== undefined) set.name = tags['mlflow.runName'];
    }
    if (metrics.length) {
      // History keeps one point per step: MLflow's latest at that step (a re-log with an older timestamp loses).
      const points = latestPerStep(metrics);
      await tx.execute(sql`INSERT INTO run_metrics AS m (run_id, key, step, value, logged_at)
        SELECT ${runId}, k, s, v, to_timestamp(t / 1000.0) FROM unnest(${sql.param(points.map((m) => m.key))}::text[], ${sql.param(points.map((m) => m.step))}::int[], ${sql.param(points.map((m) => m.value))}::float8[], ${sql.param(points.map((m) => m.timestamp))}::float8[]) AS u(k, s, v, t)
        ON CONFLICT (run_id, key, step) DO UPDATE SET value = excluded.value, logged_at = excluded.logged_at
        WHERE (excluded.logged_at, excluded.value) >= (m.logged_at, m.value)`);
      // The latest value per key moves only forward in (step, timestamp, value); the jsonb takes the keys that moved.
      const moved = await tx.execute<{ key: string; value: number }>(upsertLatest(runId, latestPerKey(points)));
      if (moved.rows.length)
        set.metrics =
          sql`coalesce(${runs.metrics}, '{}'::jsonb) || ${JSON.stringify(Object.fromEntries(moved.rows.map((r) => [r.key, toJsonNumber(r.value)])))}::jsonb` as never;
    }
    if (Object.keys(set).length) await tx.update(runs).set(set).where(eq(runs.id, runId));
  });
}

/** MLflow's tag listing the models logged from a run (`runs/log-model`, sent by MLflow 2 clients' `log_model`). */
export const LOGGED_MODELS_TAG = 'mlflow.log-model.history';

/**
 * Appends one model's metadata (MLflow's MLmodel as a dict) to the run's `mlflow.log-model.history` tag, as MLflow's
 * server does; a history past the tag's size limit is refused like any tag, naming it.
 */
export async function recordLoggedModel(db: Db, runId: string, model: Record<string, unknown>): Promise<void> {
  await db.transaction(async (tx) => {
    const run = await lockActiveRun(tx, runId);
    let history: unknown[] = [];
    try {
      const previous: unknown = JSON.parse(run.tags[LOGGED_MODELS_TAG] ?? '[]');
      if (Array.isArray(previous)) history = previous;
    } catch {
      // A client set the tag to something else: the history starts again, as the model's record matters more.
    }
    const value = JSON.stringify([...history, model]);
    checkTag(LOGGED_MODELS_TAG, value);
    await tx
      .update(runs)
      .set({ tags: sql`${runs.tags} || ${JSON.stringify({ [LOGGED_MODELS_TAG]: value })}::jsonb` as never })
      .where(eq(runs.id, runId));
  });
}

export async function deleteTag(db: Db, runId: string, key: string): Promise<void> {
  await db.transaction(async (tx) => {
    const run = await lockRun(tx, runId);
    if (!(key in run.tags)) throw notFound(`tag "${key}" on run ${runId}`);
    await tx
      .update(runs)
      .set({ tags: sql`${runs.tags} - ${key}` as never })
      .where(eq(runs.id, runId));
  });
}

export async function metricHistory(
  db: Db,
  runId: string,
  key: string,
  page: { maxResults?: number; pageToken?: string } = {},
): Promise<{ points: MetricPoint[]; nextPageToken?: string }> {
  await getRun(db, runId);
  const limit = Math.min(page.maxResults ?? 25_000, 25_000);
  const after = page.pageToken ? decodePageToken(page.pageToken) : undefined;
  const rows = await db
    .select()
    .from(runMetrics)
    .where(
      and(
        eq(runMetrics.runId, runId),
        eq(runMetrics.key, key),
        after !== undefined ? gt(runMetrics.step, after - 1) : undefined,
      ),
    )
    .orderBy(asc(runMetrics.step))
    .limit(limit + 1);
  const points = rows
    .slice(0, limit)
    .map((r) => ({ key: r.key, value: r.value, step: r.step, timestamp: r.loggedAt.getTime() }));
  return { points, nextPageToken: rows.length > limit ? encodePageToken(rows[limit]!.step) : undefined };
}

/** Every step of several runs' metrics (for curves). */
export async function metricSeries(db: Db, runIds: string[]): Promise<(MetricPoint & { runId: string })[]> {
  if (!runIds.length) return [];
  const rows = await db
    .select()
    .from(runMetrics)
    .where(sql`${runMetrics.runId} = ANY(${sql.param(runIds)}::text[])`)
    .orderBy(asc(runMetrics.step));
  return rows.map((r) => ({
    runId: r.runId,
    key: r.key,
    value: r.value,
    step: r.step,
    timestamp: r.loggedAt.getTime(),
  }));
}

export interface RunSearch {
  experimentIds?: number[];
  experimentNames?: string[];
  filter?: string;
  orderBy?: string | string[];
  maxResults?: number;
  pageToken?: string;
  viewType?: ViewType;
}

/**
 * The filter and order compiled to SQL; offset page tokens. Ordered by a metric first, the page is read from the runs
 * that have it (walking the latest-metrics index in value order) and, only when those run out, from the runs without
 * it.
 */
export async function searchRuns(db: Db, search: RunSearch): Promise<{ runs: Run[]; nextPageToken?: string }> {
  const where: SQL[] = [];
  const names = [...(search.experimentNames ?? [])];
  if (search.experimentIds?.length) names.push(...(await experimentNames(db, search.experimentIds)).values());
  const scoped = Boolean(search.experimentIds?.length || search.experimentNames?.length);
  if (scoped)
    where.push(
      names.length === 1 ? eq(runs.experiment, names[0]!) : sql`${runs.experiment} = ANY(${sql.param(names)}::text[])`,
    );
  const view = search.viewType ?? 'ACTIVE_ONLY';
  if (view === 'ACTIVE_ONLY') where.push(isNull(runs.deletedAt));
  if (view === 'DELETED_ONLY') where.push(isNotNull(runs.deletedAt));
  const experimentIds = scoped
    ? await experimentIdsOf(db, search.experimentIds ?? [], search.experimentNames ?? [])
    : undefined;
  const compiled = compileSearch({ filter: search.filter, orderBy: search.orderBy, experimentIds });
  const limit = Math.max(1, Math.min(search.maxResults ?? 1000, 50_000));
  const offset = decodePageToken(search.pageToken);
  const page = limit + 1;
  const fields = {
    run: runs,
    experimentId: sql<number>`(select e.id from experiments e where e.name = ${runs.experiment})`,
  };
  let rows: { run: RunRow; experimentId: number }[];
  const byMetric = compiled.byMetric;
  if (!byMetric) {
    rows = await db
      .select(fields)
      .from(runs)
      .where(and(...where, compiled.where))
      .orderBy(...compiled.order)
      .limit(page)
      .offset(offset);
  } else {
    // Walk the metric's index range in value order and look each run up by id (a LATERAL subquery behind OFFSET 0, so
    // the planner cannot turn it into a hash join that reads every run): a page stops after about page ÷ match-rate
    // rows.
    const present = and(...where, byMetric.present.where);
    const walk = sql`run_latest_metrics AS ordered CROSS JOIN LATERAL (SELECT * FROM runs WHERE ${runs.id} = ${orderedMetric.runId}${present ? sql` AND ${present}` : sql``} OFFSET 0) AS runs
      WHERE ${byMetric.scan}`;
    const found = await db.execute<{ id: string }>(
      sql`SELECT ${runs.id} AS id FROM ${walk} ORDER BY ${sql.join(byMetric.present.order, sql`, `)} LIMIT ${page} OFFSET ${offset}`,
    );
    const ids = found.rows.map((r) => r.id);
    const byId = new Map(
      (ids.length
        ? await db
            .select(fields)
            .from(runs)
            .where(sql`${runs.id} = ANY(${sql.param(ids)}::text[])`)
        : []
      ).map((r) => [r.run.id, r]),
    );
    rows = ids.map((id) => byId.get(id)!);
    if (rows.length < page) {
      // How many runs have the metric: known from this page unless the offset is past all of them.
      const withMetric =
        rows.length > 0 || offset === 0
          ? offset + rows.length
          : (await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM ${walk}`)).rows[0]!.n;
      rows = rows.concat(
        await db
          .select(fields)
          .from(runs)
          .where(and(...where, byMetric.missing.where))
          .orderBy(...byMetric.missing.order)
          .limit(page - rows.length)
          .offset(Math.max(0, offset - withMetric)),
      );
    }
  }
  return {
    runs: rows.slice(0, limit).map((r) => toRun(r.run, r.experimentId)),
    nextPageToken: rows.length > limit ? encodePageToken(offset + limit) : undefined,
  };
}

/**
 * The ids of the searched experiments, or undefined when a name has no experiment row (metric lookups then are not
 * scoped).
 */
async function experimentIdsOf(db: Db, ids: number[], names: string[]): Promise<number[] | undefined> {
  if (!names.length) return ids;
  const rows = await db
    .select({ id: experiments.id, name: experiments.name })
    .from(experiments)
    .where(sql`${experiments.name} = ANY(${sql.param(names)}::text[])`);
  if (new Set(rows.map((r) => r.name)).size < new Set(names).size) return undefined;
  return [...new Set([...ids, ...rows.map((r) => r.id)])];
}

/** A pipeline's run picked up by a training worker. */
export async function markRunStarted(
  db: Db,
  runId: string,
  input: { backend: string; taskQueue: string },
): Promise<void> {
  await db
    .update(runs)
    .set({ backend: input.backend, taskQueue: input.taskQueue, status: 'running' })
    .where(eq(runs.id, runId));
}

export async function failRun(db: Db, runId: string, message: string): Promise<void> {
  await db.update(runs).set({ status: 'failed', error: message, endedAt: new Date() }).where(eq(runs.id, runId));
}

/**
 * Merges a pipeline's summary metrics into the run's latest values (the jsonb and `run_latest_metrics`) in one
 * transaction; each value replaces the key's latest outright. The run's row is written first: every metric writer locks
 * the run, then its latest rows.
 */
export async function mergeRunMetrics(
  db: Db,
  runId: string,
  metrics: Record<string, number>,
  finish?: { artifactKey: string; backend: string },
): Promise<void> {
  const values = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, toJsonNumber(v)]));
  await db.transaction(async (tx) => {
    const updated = await tx
      .update(runs)
      .set({
        metrics: sql`coalesce(${runs.metrics}, '{}'::jsonb) || ${JSON.stringify(values)}::jsonb` as never,
        ...(finish
          ? {
              status: 'finished' as const,
              artifactKey: finish.artifactKey,
              backend: finish.backend,
              endedAt: new Date(),
            }
          : {}),
      })
      .where(eq(runs.id, runId))
      .returning({ id: runs.id });
    if (updated.length && Object.keys(metrics).length) await tx.execute(setLatest(runId, metrics));
  });
}

/** Every point of one run, in step order (the loss plot). */
export async function runSteps(db: Db, runId: string): Promise<MetricPoint[]> {
  return (await metricSeries(db, [runId])).map(({ runId: _run, ...point }) => point);
}

/** The other trials' values of `key` at `step` in a sweep (the median stopping rule). */
export async function sweepPeersAt(
  db: Db,
  input: { sweepId: string; excludeRunId: string; key: string; step: number },
): Promise<number[]> {
  const rows = await db
    .select({ value: runMetrics.value })
    .from(runMetrics)
    .innerJoin(runs, eq(runs.id, runMetrics.runId))
    .where(
      and(
        eq(runs.sweepId, input.sweepId),
        sql`${runs.id} <> ${input.excludeRunId}`,
        eq(runMetrics.key, input.key),
        eq(runMetrics.step, input.step),
      ),
    );
  return rows.map((r) => r.value);
}

// ---------------------------------------------------------------- checkpoint retention

/** Set on a run once retention deleted its checkpoints (the time, ISO): each ended run is swept once. */
export const CHECKPOINTS_DELETED_TAG = 'flywheel.checkpointsDeletedAt';

/** Runs that ended (finished, failed, killed) before `endedBefore` and may still have checkpoints, oldest first. */
export async function runsWithExpiredCheckpoints(
  db: Db,
  endedBefore: Date,
  limit: number,
): Promise<{ runId: string; experimentId: number | null }[]> {
  return db
    .select({ runId: runs.id, experimentId: experiments.id })
    .from(runs)
    .leftJoin(experiments, eq(experiments.name, runs.experiment))
    .where(
      and(
        sql`${runs.status} IN ('finished', 'failed', 'killed')`,
        sql`${runs.endedAt} < ${endedBefore}`,
        sql`NOT (${runs.tags} ? ${CHECKPOINTS_DELETED_TAG})`,
      ),
    )
    .orderBy(asc(runs.endedAt))
    .limit(limit);
}

/** Records that a run's checkpoints are gone (`runsWithExpiredCheckpoints` skips it from now on). */
export async function markCheckpointsDeleted(db: Db, runId: string, at: Date): Promise<void> {
  await db
    .update(runs)
    .set({ tags: sql`${runs.tags} || jsonb_build_object(${CHECKPOINTS_DELETED_TAG}::text, ${at.toISOString()}::text)` })
    .where(eq(runs.id, runId));
}
