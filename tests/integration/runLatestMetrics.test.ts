/**
 * `run_latest_metrics` on the real Postgres: every metric writer keeps it equal to `runs.metrics` and to MLflow's
 * "latest" (greatest step, then timestamp, then value) under out-of-order steps, step ties and concurrent batches, and
 * searches over it answer exactly as the jsonb reference does. Needs the local stack (`flywheel up --infra-only`).
 */
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLatestMetrics, runMetrics, runs } from '../../schema/runs';
import { closeDb, connectDb, type Db } from '../../storage/db';
import { writeMetrics } from '../../store/metrics';
import { compileFilter, compileOrder } from '../../store/runFilterSql';
import {
  createPipelineRun,
  createRun,
  logBatch,
  mergeRunMetrics,
  searchRuns,
  setRunDeleted,
  type MetricPoint,
} from '../../store/runs';
import { loadConfig } from '../../config/env';
import { unique } from './harness';

let db: Db;

beforeAll(() => {
  db = connectDb(loadConfig().databaseUrl, 8);
});

afterAll(async () => {
  if (db) await closeDb(db);
});

const T0 = Date.UTC(2026, 5, 1);
const point = (key: string, step: number, value: number, timestamp = T0 + step * 1000): MetricPoint => ({
  key,
  step,
  value,
  timestamp,
});

/** The table's rows and the jsonb, which must always say the same. */
async function latestOf(runId: string): Promise<Record<string, { value: number; step: number }>> {
  const rows = await db
    .select()
    .from(runLatestMetrics)
    .where(eq(runLatestMetrics.runId, runId))
    .orderBy(asc(runLatestMetrics.key));
  const [run] = await db.select({ metrics: runs.metrics }).from(runs).where(eq(runs.id, runId));
  const json = Object.fromEntries(Object.entries(run!.metrics ?? {}).map(([k, v]) => [k, Number(v)]));
  expect(Object.fromEntries(rows.map((r) => [r.key, r.value]))).toEqual(json);
  return Object.fromEntries(rows.map((r) => [r.key, { value: r.value, step: r.step }]));
}

describe('latest metric values', () => {
  it('keeps the greatest step when steps arrive out of order, and breaks step ties by timestamp', async () => {
    const run = await createRun(db, { experimentName: unique('latest-order') });
    await logBatch(db, run.id, { metrics: [point('loss', 5, 0.5), point('acc', 1, 0.7)] });
    await logBatch(db, run.id, { metrics: [point('loss', 3, 0.9), point('loss', 4, 0.8)] });
    expect(await latestOf(run.id)).toEqual({ acc: { value: 0.7, step: 1 }, loss: { value: 0.5, step: 5 } });

    // Same step, older timestamp: MLflow's latest is still the newer point (and so is the one history keeps).
    await logBatch(db, run.id, { metrics: [point('loss', 5, 0.1, T0)] });
    expect((await latestOf(run.id)).loss).toEqual({ value: 0.5, step: 5 });
    const history = await db
      .select()
      .from(runMetrics)
      .where(and(eq(runMetrics.runId, run.id), eq(runMetrics.key, 'loss')))
      .orderBy(asc(runMetrics.step));
    expect(history.map((p) => [p.step, p.value])).toEqual([
      [3, 0.9],
      [4, 0.8],
      [5, 0.5],
    ]);

    // Same step, newer timestamp: it replaces.
    await logBatch(db, run.id, { metrics: [point('loss', 5, 0.4, T0 + 60_000)] });
    expect((await latestOf(run.id)).loss).toEqual({ value: 0.4, step: 5 });

    // One batch repeating a step: the latest by timestamp, then value; no "row affected twice" error.
    await logBatch(db, run.id, {
      metrics: [
        point('f1', 2, 0.3, T0 + 5),
        point('f1', 2, 0.2, T0 + 9),
        point('f1', 2, 0.6, T0 + 9),
        point('f1', 1, 0.9, T0 + 99),
      ],
    });
    expect((await latestOf(run.id)).f1).toEqual({ value: 0.6, step: 2 });

    // NaN and ±Infinity are values like any other (jsonb keeps them as strings).
    await logBatch(db, run.id, { metrics: [point('nan', 0, NaN), point('inf', 0, -Infinity)] });
    const latest = await latestOf(run.id);
    expect(latest.nan!.value).toBeNaN();
    expect(latest.inf!.value).toBe(-Infinity);
  });

  it('does not lose the latest value under concurrent log-batch calls on one run', async () => {
    const run = await createRun(db, { experimentName: unique('latest-concurrent') });
    // 24 batches, steps shuffled across them; two keys; the greatest step (and for `tie`, the greatest timestamp) wins.
    const steps = Array.from({ length: 240 }, (_, i) => i).sort((a, b) => ((a * 7919) % 241) - ((b * 7919) % 241));
    const batches = Array.from({ length: 24 }, (_, b) =>
      steps.slice(b * 10, b * 10 + 10).flatMap((s) => [point('loss', s, 1000 - s), point('tie', 7, s, T0 + s)]),
    );
    await Promise.all(batches.map((metrics) => logBatch(db, run.id, { metrics })));
    expect(await latestOf(run.id)).toEqual({ loss: { value: 1000 - 239, step: 239 }, tie: { value: 239, step: 7 } });
    const [count] = await db
      .select({ n: sql<number>`count(*)::int` })
      .from(runMetrics)
      .where(and(eq(runMetrics.runId, run.id), eq(runMetrics.key, 'loss')));
    expect(count!.n).toBe(240);
  });

  it('follows a pipeline run: per-epoch points (also concurrent), then the summary metrics', async () => {
    const experiment = unique('latest-pipeline');
    const runId = unique('run');
    await createPipelineRun(db, { id: runId, experiment, status: 'running' });
    await writeMetrics(db, runId, [
      { key: 'loss', step: 1, value: 0.9 },
      { key: 'val_loss', step: 1, value: 11 },
    ]);
    await Promise.all(
      [3, 2, 5, 4].map((step) =>
        writeMetrics(db, runId, [
          { key: 'loss', step, value: 1 - step / 10 },
          { key: 'val_loss', step, value: 10 + step },
        ]),
      ),
    );
    expect(await latestOf(runId)).toEqual({ loss: { value: 0.5, step: 5 }, val_loss: { value: 15, step: 5 } });

    // A resumed attempt re-logs the last epoch: same step, a later time, so it replaces.
    await writeMetrics(db, runId, [{ key: 'loss', step: 5, value: 0.45 }]);
    expect((await latestOf(runId)).loss).toEqual({ value: 0.45, step: 5 });

    await mergeRunMetrics(db, runId, { loss: 0.42, objective: 0.6, stopped_early: 0 });
    expect(await latestOf(runId)).toEqual({
      loss: { value: 0.42, step: 5 },
      objective: { value: 0.6, step: 0 },
      stopped_early: { value: 0, step: 0 },
      val_loss: { value: 15, step: 5 },
    });
    // A run created with its metrics (an imported run) has them as latest values too.
    const imported = unique('run');
    await createPipelineRun(db, { id: imported, experiment, status: 'finished', metrics: { rmse: 1.5, r2: 0.8 } });
    expect(await latestOf(imported)).toEqual({ r2: { value: 0.8, step: 0 }, rmse: { value: 1.5, step: 0 } });

    const [row] = await db
      .select({ experimentId: runLatestMetrics.experimentId })
      .from(runLatestMetrics)
      .where(eq(runLatestMetrics.runId, runId))
      .limit(1);
    expect(row!.experimentId).toEqual((await searchRuns(db, { experimentNames: [experiment] })).runs[0]!.experimentId);
  });
});

describe('search over the latest values', () => {
  const experiment = unique('latest-search');
  const names: string[] = [];

  beforeAll(async () => {
    // 30 runs: rmse on most (ties, NaN, Infinity, negatives), r2 on some, none on a few; lr as a param.
    for (let i = 0; i < 30; i++) {
      const run = await createRun(db, {
        experimentName: experiment,
        name: `r${String(i).padStart(2, '0')}`,
        startTime: T0 + i * 1000,
      });
      names.push(run.id);
      const metrics: MetricPoint[] = [];
      if (i % 7 !== 3)
        metrics.push(point('rmse', 1, [0.5, -1, 2, NaN, Infinity, 0.5, 3.25][i % 7]! + (i % 5 === 0 ? 0 : i / 100)));
      if (i % 3 === 0) metrics.push(point('r2', 0, i / 30));
      await logBatch(db, run.id, { metrics, params: { lr: ['0.1', '0.01'][i % 2]! } });
    }
    await setRunDeleted(db, names[4]!, true);
  });

  /** The reference: the same filter and order over the jsonb, in one query. */
  async function reference(filter: string, orderBy: string | undefined): Promise<string[]> {
    const rows = await db
      .select({ id: runs.id })
      .from(runs)
      .where(and(eq(runs.experiment, experiment), isNull(runs.deletedAt), compileFilter(filter, { metrics: 'json' })))
      .orderBy(...compileOrder(orderBy, { metrics: 'json' }));
    return rows.map((r) => r.id);
  }

  const filters = [
    '',
    'metrics.rmse < 1',
    'metrics.rmse >= 0.5',
    'not metrics.rmse < 1',
    'metrics.rmse != 0.5',
    'not (metrics.rmse > 0 and metrics.r2 < 0.5)',
    'metrics.rmse in (0.5, 2.02)',
    'not metrics.rmse in (0.5)',
    'metrics.r2 > 0.2 or metrics.rmse < 0',
    "params.lr = '0.1' and not metrics.r2 <= 0.5",
    "metrics.rmse like '0.5%'",
    'metrics.missing < 1',
    'not metrics.missing < 1',
  ];
  const orders = [
    undefined,
    'metrics.rmse',
    'metrics.rmse DESC',
    'metrics.r2 DESC, metrics.rmse',
    'start_time, metrics.rmse DESC',
    'metrics.missing',
  ];

  it('answers every filter and order exactly as the jsonb reference', async () => {
    for (const filter of filters) {
      for (const orderBy of orders) {
        const got = (await searchRuns(db, { experimentNames: [experiment], filter, orderBy })).runs.map((r) => r.id);
        expect({ filter, orderBy, ids: got }).toEqual({ filter, orderBy, ids: await reference(filter, orderBy) });
      }
    }
    // Missing values last: 26 runs have rmse (one deleted), 4 do not.
    const byRmse = await reference('', 'metrics.rmse');
    expect(byRmse.length).toBe(29);
    expect(byRmse.slice(-4).sort()).toEqual([names[3], names[10], names[17], names[24]].sort());
  });

  it('pages across the runs with the metric and those without, by experiment id too', async () => {
    const experimentId = (await searchRuns(db, { experimentNames: [experiment], maxResults: 1 })).runs[0]!.experimentId;
    for (const [filter, orderBy] of [
      ['', 'metrics.rmse DESC'],
      ['metrics.r2 >= 0 or metrics.rmse > 1', 'metrics.r2'],
    ] as const) {
      const want = await reference(filter, orderBy);
      for (const maxResults of [1, 4, 7, 25]) {
        const got: string[] = [];
        let pageToken: string | undefined;
        do {
          const page = await searchRuns(db, { experimentIds: [experimentId], filter, orderBy, maxResults, pageToken });
          got.push(...page.runs.map((r) => r.id));
          pageToken = page.nextPageToken;
        } while (pageToken);
        expect({ filter, orderBy, maxResults, got }).toEqual({ filter, orderBy, maxResults, got: want });
      }
    }
  });

  it('leaves deleted runs out of active searches and finds them again once restored', async () => {
    const deleted = names[4]!;
    const found = async (viewType?: 'ACTIVE_ONLY' | 'DELETED_ONLY') =>
      (
        await searchRuns(db, {
          experimentNames: [experiment],
          filter: 'metrics.rmse > 1',
          orderBy: 'metrics.rmse',
          viewType,
        })
      ).runs.map((r) => r.id);
    expect(await found()).not.toContain(deleted);
    expect(await found('DELETED_ONLY')).toEqual([deleted]);
    await setRunDeleted(db, deleted, false);
    expect(await found()).toContain(deleted);
    await setRunDeleted(db, deleted, true);
  });
});
