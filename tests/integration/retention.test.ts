/**
 * Prediction log retention on the local stack's Postgres: old rows go in bounded batches, recent rows stay, and only
 * one process sweeps at a time. The rows are this suite's own, dated decades back, so the sweep's cutoff (in 2002)
 * touches nothing any other suite wrote.
 */
import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { labels, predictions, requestErrors, shadowPredictions } from '../../schema/deployments';
import { monitorChecks } from '../../schema/monitors';
import { closeDb, connectDb, type Db } from '../../storage/db';
import { RETENTION_LOCK_KEY, sweepRetention } from '../../store/predictions';
import { PredictionRetention } from '../../serving/retention';
import { loadConfig } from '../../config/env';
import { unique } from './harness';

let db: Db;
const model = unique('retention-model');
const OLD = new Date('2001-03-01T00:00:00Z');
const KEPT = new Date('2003-03-01T00:00:00Z');
const CUTOFF = new Date('2002-01-01T00:00:00Z');

beforeAll(() => {
  db = connectDb(loadConfig().databaseUrl, 4);
});

afterAll(async () => {
  if (!db) return;
  for (const table of [predictions, shadowPredictions, requestErrors, labels, monitorChecks])
    await db.delete(table).where(eq(table.modelName, model));
  await closeDb(db);
});

const prediction = (requestId: string, createdAt?: Date) => ({
  requestId,
  modelName: model,
  modelVersion: 1,
  inputs: { price: 1 },
  prediction: 2,
  latencyMs: 0.5,
  ...(createdAt ? { createdAt } : {}),
});

it('deletes rows older than the cutoff in batches from every prediction log table, and keeps the newer ones', async () => {
  const old = Array.from({ length: 7 }, (_, i) => `${model}-old-${i}`);
  await db
    .insert(predictions)
    .values([...old.map((id) => prediction(id, OLD)), prediction(`${model}-2003`, KEPT), prediction(`${model}-now`)]);
  await db.insert(labels).values([
    { requestId: old[0]!, modelName: model, label: '2', receivedAt: OLD },
    { requestId: `${model}-now`, modelName: model, label: '3' },
  ]);
  await db.insert(requestErrors).values([
    { modelName: model, status: 422, message: 'old', at: OLD },
    { modelName: model, status: 422, message: 'new' },
  ]);
  await db.insert(shadowPredictions).values([
    {
      requestId: old[1]!,
      modelName: model,
      baseVersion: 1,
      shadowVersion: 2,
      basePrediction: 1,
      shadowPrediction: 1,
      latencyMs: 1,
      createdAt: OLD,
    },
    {
      requestId: `${model}-now`,
      modelName: model,
      baseVersion: 1,
      shadowVersion: 2,
      basePrediction: 1,
      shadowPrediction: 1,
      latencyMs: 1,
    },
  ]);
  await db.insert(monitorChecks).values([
    {
      id: `${model}:old`,
      monitorWorkflowId: `monitor-${model}`,
      modelName: model,
      windowStart: OLD,
      windowEnd: OLD,
      report: {},
    },
    {
      id: `${model}:new`,
      monitorWorkflowId: `monitor-${model}`,
      modelName: model,
      windowStart: new Date(),
      windowEnd: new Date(),
      report: {},
    },
  ]);

  // Batches of 3: the 7 old predictions take three statements.
  const result = await sweepRetention(db, { olderThan: CUTOFF, batchSize: 3, pauseMs: 0 });
  expect(result.skipped).toBeUndefined();
  expect(result.deleted.predictions).toBeGreaterThanOrEqual(7);
  const left = await db
    .select({ requestId: predictions.requestId })
    .from(predictions)
    .where(eq(predictions.modelName, model));
  expect(left.map((r) => r.requestId).sort()).toEqual([`${model}-2003`, `${model}-now`]);
  expect((await db.select().from(labels).where(eq(labels.modelName, model))).map((r) => r.requestId)).toEqual([
    `${model}-now`,
  ]);
  expect(
    (await db.select().from(requestErrors).where(eq(requestErrors.modelName, model))).map((r) => r.message),
  ).toEqual(['new']);
  expect(
    (await db.select().from(shadowPredictions).where(eq(shadowPredictions.modelName, model))).map((r) => r.requestId),
  ).toEqual([`${model}-now`]);
  expect((await db.select().from(monitorChecks).where(eq(monitorChecks.modelName, model))).map((r) => r.id)).toEqual([
    `${model}:new`,
  ]);
});

it('sweeps in one process at a time: while another holds the advisory lock, a sweep does nothing', async () => {
  await db.insert(predictions).values(prediction(`${model}-locked`, OLD));
  const other = await db.$client.connect();
  try {
    await other.query('SELECT pg_advisory_lock($1)', [RETENTION_LOCK_KEY]);
    const skipped = await sweepRetention(db, { olderThan: CUTOFF });
    expect(skipped.skipped).toBe('locked');
    expect(
      await db
        .select()
        .from(predictions)
        .where(inArray(predictions.requestId, [`${model}-locked`])),
    ).toHaveLength(1);
  } finally {
    await other.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK_KEY]);
    other.release();
  }
  // Released: the serving process's sweep (retention of `days` counted back from `now`) takes it.
  const days = Math.ceil((Date.now() - CUTOFF.getTime()) / 86_400_000);
  const retention = new PredictionRetention(db, { days });
  const swept = await retention.sweep();
  await retention.stop();
  expect(swept.skipped).toBeUndefined();
  expect(
    await db
      .select()
      .from(predictions)
      .where(eq(predictions.requestId, `${model}-locked`)),
  ).toHaveLength(0);
  expect(
    await db
      .select()
      .from(predictions)
      .where(eq(predictions.requestId, `${model}-2003`)),
  ).toHaveLength(1);
  // Nothing of the sweep's session lingers: the lock is free again.
  const probe = await db.$client.connect();
  try {
    const {
      rows: [free],
    } = await probe.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [RETENTION_LOCK_KEY]);
    expect(free!.locked).toBe(true);
    await probe.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK_KEY]);
  } finally {
    probe.release();
  }
});
