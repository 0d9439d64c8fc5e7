/**
 * Step metrics of a run, written in one statement per batch (arrays unnested server-side), upserting by step, and the
 * run's latest value per key (`run_latest_metrics`, mirrored in the `runs.metrics` jsonb), kept in the same
 * transaction.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../storage/db';

export interface MetricPoint {
  key: string;
  step: number;
  value: number;
}

/** A point with the client's time in milliseconds; null is the database's now() (a point logged by the worker). */
export interface TimedPoint extends MetricPoint {
  timestamp: number | null;
}

/**
 * (step, timestamp, value) order: MLflow's "latest". A null timestamp (now) is the newest; NaN above every number, as
 * Postgres orders float8.
 */
export function comparePoints(a: TimedPoint, b: TimedPoint): number {
  const time =
    a.timestamp === b.timestamp ? 0 : a.timestamp === null ? 1 : b.timestamp === null ? -1 : a.timestamp - b.timestamp;
  const value = Number.isNaN(a.value)
    ? Number.isNaN(b.value)
      ? 0
      : 1
    : Number.isNaN(b.value)
      ? -1
      : Math.sign(a.value - b.value);
  return Math.sign(a.step - b.step) || Math.sign(time) || value;
}

/** Per key, the latest point of a batch, sorted by key (writers then lock `run_latest_metrics` rows in one order). */
export function latestPerKey<T extends TimedPoint>(points: T[]): T[] {
  const latest = new Map<string, T>();
  for (const point of points) {
    const seen = latest.get(point.key);
    if (!seen || comparePoints(point, seen) > 0) latest.set(point.key, point);
  }
  return [...latest.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Per (key, step), the latest point: a batch may repeat a step, and one upsert cannot touch a row twice. */
export function latestPerStep<T extends TimedPoint>(points: T[]): T[] {
  const latest = new Map<string, T>();
  for (const point of points) {
    const id = `${point.step}\u0000${point.key}`;
    const seen = latest.get(id);
    if (!seen || comparePoints(point, seen) > 0) latest.set(id, point);
  }
  return latest.size === points.length ? points : [...latest.values()];
}

const at = (timestamps: SQL) => sql`coalesce(to_timestamp(${timestamps} / 1000.0), now())`;
const experimentOf = (runId: string) =>
  sql`(SELECT e.id FROM runs r JOIN experiments e ON e.name = r.experiment WHERE r.id = ${runId})`;

/**
 * Moves each key's latest value to the candidate only when it is greater in (step, logged_at, value): an old step
 * logged
 * late, or a racing batch that committed a later point first, leaves it alone. ON CONFLICT re-reads the committed row
 * under its lock, so concurrent writers cannot lose the latest value. RETURNING the keys that moved, with their values.
 */
export function upsertLatest(runId: string, latest: TimedPoint[]): SQL {
  return sql`INSERT INTO run_latest_metrics AS l (run_id, key, experiment_id, value, step, logged_at)
    SELECT ${runId}, k, ${experimentOf(runId)}, v, s, ${at(sql`t`)}
    FROM unnest(${sql.param(latest.map((p) => p.key))}::text[], ${sql.param(latest.map((p) => p.step))}::int[], ${sql.param(latest.map((p) => p.value))}::float8[], ${sql.param(latest.map((p) => p.timestamp))}::float8[]) AS u(k, s, v, t)
    ORDER BY k
    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, logged_at = excluded.logged_at, experiment_id = excluded.experiment_id
    WHERE (excluded.step, excluded.logged_at, excluded.value) > (l.step, l.logged_at, l.value)
    RETURNING key, value`;
}

/** Summary values set outright (a pipeline's final metrics): they replace the latest value, keeping its step. */
export function setLatest(runId: string, values: Record<string, number>): SQL {
  const keys = Object.keys(values).sort();
  return sql`INSERT INTO run_latest_metrics (run_id, key, experiment_id, value)
    SELECT ${runId}, k, ${experimentOf(runId)}, v FROM unnest(${sql.param(keys)}::text[], ${sql.param(keys.map((k) => values[k]!))}::float8[]) AS u(k, v) ORDER BY k
    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, logged_at = now(), experiment_id = excluded.experiment_id`;
}

/** jsonb has no NaN or Infinity: they are stored as strings ("NaN", "-Infinity"), as store/runs.ts writes them. */
export const jsonMetric = (value: SQL) =>
  sql`CASE WHEN ${value} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) THEN to_jsonb(${value}::text) ELSE to_jsonb(${value}) END`;

/**
 * Locks the run's row first, the order every metric writer takes (the run, then its latest rows by key): no deadlocks.
 */
export const lockRunForMetrics = (runId: string) => sql`SELECT 1 FROM runs WHERE id = ${runId} FOR NO KEY UPDATE`;

/**
 * Writes points in batches of up to 50,000 rows, each batch one transaction: the history (one statement, four array
 * parameters: about 3× drizzle's multi-row insert), the latest values and the run's jsonb. A re-logged step (a resumed
 * attempt) overwrites instead of duplicating.
 */
export async function writeMetrics(db: Db, runId: string, points: MetricPoint[], batch = 50_000): Promise<void> {
  for (let i = 0; i < points.length; i += batch) {
    const slice = points.slice(i, i + batch);
    const latest = latestPerKey(slice.map((p) => ({ ...p, timestamp: null })));
    await db.transaction(async (tx) => {
      await tx.execute(lockRunForMetrics(runId));
      await tx.execute(sql`WITH history AS (
          INSERT INTO run_metrics (run_id, key, step, value)
          SELECT ${runId}, k, s, v FROM unnest(${sql.param(slice.map((p) => p.key))}::text[], ${sql.param(slice.map((p) => p.step))}::int[], ${sql.param(slice.map((p) => p.value))}::float8[]) AS t(k, s, v)
          ON CONFLICT (run_id, key, step) DO UPDATE SET value = excluded.value, logged_at = now()
        ), latest AS (${upsertLatest(runId, latest)})
        UPDATE runs SET metrics = coalesce(metrics, '{}'::jsonb) || (SELECT jsonb_object_agg(key, ${jsonMetric(sql`value`)}) FROM latest)
        WHERE id = ${runId} AND EXISTS (SELECT 1 FROM latest)`);
    });
  }
}
