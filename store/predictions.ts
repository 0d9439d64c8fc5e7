/**
 * The prediction log store: what serving answered (predictions, shadow answers, refused requests), the labels that
 * arrive later, the windows monitors read, and the retention sweep that keeps these tables from growing for ever.
 */
import { and, count, eq, gte, inArray, lt, sql } from 'drizzle-orm';
import { labels, predictions, requestErrors, shadowPredictions } from '../schema/deployments';
import type { Db } from '../storage/db';
import type { Executor } from './experiments';

export type PredictionRecord = typeof predictions.$inferInsert;
export type RequestErrorRecord = typeof requestErrors.$inferInsert;
export type ShadowRecord = typeof shadowPredictions.$inferInsert;

/**
 * One JSON parameter per batch, unpacked by Postgres: building a drizzle multi-row INSERT cost ~13 µs a row on the
 * event loop (a 500-row flush blocked serving for ~7 ms); `JSON.stringify` costs well under 1 µs a row.
 */
const INSERT_PREDICTIONS = `INSERT INTO predictions (request_id, model_name, model_version, inputs, prediction, latency_ms)
  SELECT request_id, model_name, model_version, inputs, prediction, latency_ms
  FROM jsonb_to_recordset($1::jsonb) AS t(request_id text, model_name text, model_version int, inputs jsonb, prediction float8, latency_ms real)`;

const predictionRow = (r: PredictionRecord) => ({
  request_id: r.requestId,
  model_name: r.modelName,
  model_version: r.modelVersion,
  inputs: r.inputs,
  prediction: r.prediction,
  latency_ms: r.latencyMs,
});

/** The serving hot path: one statement per batch (see `INSERT_PREDICTIONS`). */
export async function insertPredictions(db: Db, batch: PredictionRecord[]): Promise<void> {
  await db.$client.query(INSERT_PREDICTIONS, [JSON.stringify(batch.map(predictionRow))]);
}

export async function insertRequestErrors(db: Db, batch: RequestErrorRecord[]): Promise<void> {
  await db.insert(requestErrors).values(batch);
}

export async function insertShadowPredictions(db: Db, batch: ShadowRecord[]): Promise<void> {
  await db.insert(shadowPredictions).values(batch);
}

/**
 * Ground truth for logged predictions, by request id. Ids with no logged prediction are returned, not stored;
 * a label sent again replaces the earlier one.
 */
export async function recordLabels(
  db: Db,
  entries: { requestId: string; label: string }[],
): Promise<{ accepted: number; unknown: string[] }> {
  const ids = [...new Set(entries.map((e) => e.requestId))];
  const known = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 1000) {
    const rows = await db
      .select({ requestId: predictions.requestId, modelName: predictions.modelName })
      .from(predictions)
      .where(inArray(predictions.requestId, ids.slice(i, i + 1000)));
    for (const row of rows) known.set(row.requestId, row.modelName);
  }
  const accepted = entries
    .filter((e) => known.has(e.requestId))
    .map((e) => ({ requestId: e.requestId, label: e.label, modelName: known.get(e.requestId)! }));
  if (accepted.length) {
    await db
      .insert(labels)
      .values(accepted)
      .onConflictDoUpdate({ target: labels.requestId, set: { label: sql`excluded.label`, receivedAt: new Date() } });
  }
  return { accepted: accepted.length, unknown: ids.filter((id) => !known.has(id)) };
}

/** A monitor's window: one model version's traffic in [from, to). */
export interface PredictionWindow {
  modelName: string;
  version: number;
  from: Date;
  to: Date;
}

const inWindow = (w: PredictionWindow) =>
  and(
    eq(predictions.modelName, w.modelName),
    eq(predictions.modelVersion, w.version),
    gte(predictions.createdAt, w.from),
    lt(predictions.createdAt, w.to),
  );

export async function countWindowPredictions(db: Executor, window: PredictionWindow): Promise<number> {
  const [{ total }] = (await db.select({ total: count() }).from(predictions).where(inWindow(window))) as [
    { total: number },
  ];
  return total;
}

/** The window's predictions, every `stride`-th by id (an even sample of a busy window). */
export async function windowPredictions(
  db: Executor,
  window: PredictionWindow,
  stride = 1,
): Promise<{ prediction: number; inputs: Record<string, unknown>; latencyMs: number }[]> {
  return db
    .select({ prediction: predictions.prediction, inputs: predictions.inputs, latencyMs: predictions.latencyMs })
    .from(predictions)
    .where(stride > 1 ? and(inWindow(window), sql`${predictions.id} % ${stride} = 0`) : inWindow(window));
}

/** Requests of a model refused or failed in [from, to). */
export async function countRequestErrors(db: Executor, modelName: string, from: Date, to: Date): Promise<number> {
  const [{ errors }] = (await db
    .select({ errors: count() })
    .from(requestErrors)
    .where(and(eq(requestErrors.modelName, modelName), gte(requestErrors.at, from), lt(requestErrors.at, to)))) as [
    { errors: number },
  ];
  return errors;
}

/** Labels received in [from, to) for one version's predictions, next to what it predicted. */
export async function labelledPredictions(
  db: Executor,
  window: PredictionWindow,
): Promise<{ prediction: number; label: string }[]> {
  return db
    .select({ prediction: predictions.prediction, label: labels.label })
    .from(labels)
    .innerJoin(predictions, eq(predictions.requestId, labels.requestId))
    .where(
      and(
        eq(predictions.modelName, window.modelName),
        eq(predictions.modelVersion, window.version),
        gte(labels.receivedAt, window.from),
        lt(labels.receivedAt, window.to),
      ),
    );
}

// ---------------------------------------------------------------- retention

/**
 * The tables retention prunes, each with its key and the time a row is judged by. Each has an index on
 * (model_name, time), so a batch is an index range scan per model, never a scan of the table.
 */
const RETAINED = [
  { table: 'predictions', key: 'id', time: 'created_at' },
  { table: 'shadow_predictions', key: 'id', time: 'created_at' },
  { table: 'request_errors', key: 'id', time: 'at' },
  { table: 'labels', key: 'request_id', time: 'received_at' },
  { table: 'monitor_checks', key: 'id', time: 'window_end' },
] as const;
export type RetainedTable = (typeof RETAINED)[number]['table'];

/** The advisory lock one retention sweep holds at a time, across every serving process on the database. */
export const RETENTION_LOCK_KEY = 0x666c_7977_7265; // "flywre"

export interface RetentionOptions {
  /** Rows older than this go. */
  olderThan: Date;
  /** Rows deleted per statement: each is its own short transaction. @default 5000 */
  batchSize?: number;
  /** Pause between batches, so a large backlog never hogs the database. @default 10 ms */
  pauseMs?: number;
  /** Checked between batches: a stopping process ends its sweep early. */
  signal?: AbortSignal;
}

export interface RetentionResult {
  /** `locked`: another process was sweeping; this one did nothing. */
  skipped?: 'locked';
  deleted: Record<RetainedTable, number>;
}

/**
 * Deletes rows older than `olderThan` from the prediction log tables, in bounded batches (row locks only, held for
 * one short statement: inserts of the prediction log never wait on it), by one process at a time (a session advisory
 * lock on one pooled connection; a process that dies mid-sweep releases it with its connection).
 */
export async function sweepRetention(db: Db, options: RetentionOptions): Promise<RetentionResult> {
  const { olderThan, batchSize = 5_000, pauseMs = 10, signal } = options;
  const deleted = Object.fromEntries(RETAINED.map((r) => [r.table, 0])) as Record<RetainedTable, number>;
  const client = await db.$client.connect();
  let broken = false;
  try {
    const {
      rows: [lock],
    } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [RETENTION_LOCK_KEY]);
    if (!lock?.locked) return { skipped: 'locked', deleted };
    try {
      for (const { table, key, time } of RETAINED) {
        // Distinct model names by a loose index scan: one index probe per model, however many rows each has.
        const { rows: models } = await client.query<{ name: string }>(`WITH RECURSIVE names AS (
            (SELECT model_name AS name FROM ${table} ORDER BY model_name LIMIT 1)
            UNION ALL
            SELECT (SELECT model_name FROM ${table} WHERE model_name > names.name ORDER BY model_name LIMIT 1) FROM names WHERE names.name IS NOT NULL
          ) SELECT name FROM names WHERE name IS NOT NULL`);
        for (const { name } of models) {
          for (;;) {
            if (signal?.aborted) return { deleted };
            const { rowCount } = await client.query(
              `DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table} WHERE model_name = $1 AND ${time} < $2 LIMIT $3)`,
              [name, olderThan, batchSize],
            );
            deleted[table] += rowCount ?? 0;
            if ((rowCount ?? 0) < batchSize) break;
            await new Promise((resolve) => setTimeout(resolve, pauseMs));
          }
        }
      }
      return { deleted };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK_KEY]);
    }
  } catch (error) {
    // A connection that failed mid-sweep is closed, not pooled (closing it also releases the lock).
    broken = true;
    throw error;
  } finally {
    client.release(broken);
  }
}

// ---------------------------------------------------------------- rollout windows

/** Refused or failed requests of one version in the window (a rollout's error rate). */
export async function countWindowRequestErrors(db: Executor, window: PredictionWindow): Promise<number> {
  const [e] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(requestErrors)
    .where(
      and(
        eq(requestErrors.modelName, window.modelName),
        eq(requestErrors.modelVersion, window.version),
        gte(requestErrors.at, window.from),
        lt(requestErrors.at, window.to),
      ),
    );
  return e!.n;
}

/** The window's answered predictions and their p99 latency (null with none): a canary step's health. */
export async function windowLatency(
  db: Executor,
  window: PredictionWindow,
): Promise<{ predictions: number; p99Ms: number | null }> {
  const [p] = await db
    .select({
      n: sql<number>`count(*)::int`,
      p99: sql<number | null>`percentile_cont(0.99) within group (order by ${predictions.latencyMs})`,
    })
    .from(predictions)
    .where(inWindow(window));
  return { predictions: p!.n, p99Ms: p!.p99 };
}

/** Up to `limit` predicted values of the window (what a PSI against another version reads). */
export async function windowPredictionValues(db: Executor, window: PredictionWindow, limit: number): Promise<number[]> {
  return (await db.select({ v: predictions.prediction }).from(predictions).where(inWindow(window)).limit(limit)).map(
    (r) => r.v,
  );
}

/**
 * Labels for the predictions made in the window (whenever they arrived), next to what was predicted: an A/B variant's
 * quality.
 */
export async function labelsOfWindowPredictions(
  db: Executor,
  window: PredictionWindow,
  limit: number,
): Promise<{ prediction: number; label: string }[]> {
  return db
    .select({ prediction: predictions.prediction, label: labels.label })
    .from(labels)
    .innerJoin(predictions, eq(predictions.requestId, labels.requestId))
    .where(inWindow(window))
    .limit(limit);
}

/** A shadow answer next to the served one; `shadow` is null where the shadow version failed. */
export interface ShadowPair {
  base: number;
  shadow: number | null;
  latencyMs: number;
}

/** Up to `limit` shadow answers of `window.version` (the shadow version) in the window. */
export async function windowShadowPredictions(
  db: Executor,
  window: PredictionWindow,
  limit: number,
): Promise<ShadowPair[]> {
  return db
    .select({
      base: shadowPredictions.basePrediction,
      shadow: shadowPredictions.shadowPrediction,
      latencyMs: shadowPredictions.latencyMs,
    })
    .from(shadowPredictions)
    .where(
      and(
        eq(shadowPredictions.modelName, window.modelName),
        eq(shadowPredictions.shadowVersion, window.version),
        gte(shadowPredictions.createdAt, window.from),
        lt(shadowPredictions.createdAt, window.to),
      ),
    )
    .limit(limit);
}
