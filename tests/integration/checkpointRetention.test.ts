/**
 * Checkpoint retention on the local stack's Postgres and MinIO, in the serving process's retention sweep: an ended
 * run's old checkpoints (TF.js and Python layouts) go, its model stays, and a running run's checkpoints stay. The
 * runs are this suite's own, dated decades back, so the cutoff (in 2002) touches nothing any other suite wrote.
 */
import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runs } from '../../schema/runs';
import { closeDb, connectDb, type Db } from '../../storage/db';
import { S3ObjectStore } from '../../storage/objectStore';
import { ensureExperiment } from '../../store/experiments';
import { CHECKPOINTS_DELETED_TAG, newRunId, runArtifactPrefix } from '../../store/runs';
import { PredictionRetention } from '../../serving/retention';
import { loadConfig } from '../../config/env';
import { unique } from './harness';

let db: Db;
const objects = new S3ObjectStore(loadConfig().s3);
const ENDED = new Date('2001-03-01T00:00:00Z');
const CUTOFF = new Date('2002-01-01T00:00:00Z');
const finished = newRunId();
const failed = newRunId();
const running = newRunId();
let experiment: { id: number; name: string };

beforeAll(async () => {
  db = connectDb(loadConfig().databaseUrl, 2);
  experiment = await ensureExperiment(db, unique('checkpoint-retention'));
});

afterAll(async () => {
  if (!db) return;
  await db.delete(runs).where(inArray(runs.id, [finished, failed, running]));
  for (const id of [finished, failed, running])
    for (const prefix of [`checkpoints/${id}/`, runArtifactPrefix(experiment.id, id)])
      for (const key of await objects.list(prefix)) await objects.remove(key);
  await closeDb(db);
});

it("deletes an ended run's checkpoints after the retention period, keeps its model, and keeps a running run's", async () => {
  const base = { experiment: experiment.name, startedAt: new Date('2001-02-01T00:00:00Z') };
  await db.insert(runs).values([
    { ...base, id: finished, status: 'finished', endedAt: ENDED },
    { ...base, id: failed, status: 'failed', endedAt: ENDED },
    // Started as long ago, never ended (a run still training, or resumable): its checkpoints are its resume point.
    { ...base, id: running, status: 'running' },
  ]);
  const python = (id: string) => `${runArtifactPrefix(experiment.id, id)}checkpoints/slot-0.ckpt`;
  const model = `${runArtifactPrefix(experiment.id, finished)}model/model.onnx`;
  for (const id of [finished, failed, running]) {
    await objects.putJson(`checkpoints/${id}/latest.json`, { epoch: 3 });
    await objects.putBuffer(python(id), 'weights');
  }
  await objects.putBuffer(model, 'onnx');

  // Prediction retention off (0 days): this sweep is about checkpoints alone.
  const days = Math.ceil((Date.now() - CUTOFF.getTime()) / 86_400_000);
  const retention = new PredictionRetention(db, { days: 0, checkpoints: { days, objects } });
  const swept = await retention.sweep();
  await retention.stop();
  expect(swept.checkpoints!.runs).toBeGreaterThanOrEqual(2);

  for (const id of [finished, failed]) {
    expect(await objects.list(`checkpoints/${id}/`)).toEqual([]);
    expect(await objects.sizeOf(python(id))).toBeUndefined();
  }
  expect(await objects.sizeOf(model)).toBe(4);
  expect(await objects.list(`checkpoints/${running}/`)).toEqual([`checkpoints/${running}/latest.json`]);
  expect(await objects.sizeOf(python(running))).toBe(7);

  // Each ended run is swept once: marked, and the next sweep passes it by.
  const [row] = await db.select().from(runs).where(eq(runs.id, finished));
  expect(row!.tags[CHECKPOINTS_DELETED_TAG]).toMatch(/^\d{4}-/);
  const again = new PredictionRetention(db, { days: 0, checkpoints: { days, objects } });
  await objects.putJson(`checkpoints/${finished}/latest.json`, { epoch: 4 });
  await again.sweep();
  await again.stop();
  expect(await objects.list(`checkpoints/${finished}/`)).toEqual([`checkpoints/${finished}/latest.json`]);
});
