/**
 * Serving hears alias moves over Postgres NOTIFY: when its LISTEN connection drops (a restarted database, a killed
 * backend), it opens a new one by itself instead of falling back to polling for good. Needs the local stack.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SERVING_CHANNEL } from '../../store/registry';
import { closeDb, connectDb, type Db } from '../../storage/db';
import { S3ObjectStore } from '../../storage/objectStore';
import { ServedModels } from '../../serving/models';
import { loadConfig } from '../../config/env';
import { eventually } from './harness';

let db: Db;
let models: ServedModels;

const listeners = async () =>
  (
    await db.execute<{ pid: number }>(sql`SELECT pid FROM pg_stat_activity
  WHERE datname = current_database() AND query = ${`LISTEN ${SERVING_CHANNEL}`}`)
  ).rows.map((r) => r.pid);

beforeAll(() => {
  const config = loadConfig();
  db = connectDb(config.databaseUrl, 4);
  models = new ServedModels(db, new S3ObjectStore(config.s3));
});

afterAll(async () => {
  await models?.stop();
  if (db) await closeDb(db);
});

it('opens its NOTIFY listener again after the connection is killed', async () => {
  const before = new Set(await listeners());
  await models.start(60_000);
  expect(models.listening).toBe(true);
  const mine = (await listeners()).filter((pid) => !before.has(pid));
  expect(mine).toHaveLength(1);
  await db.execute(sql`SELECT pg_terminate_backend(${mine[0]!})`);
  await eventually(async () => !models.listening, 10_000, 'the listener to notice it was dropped');
  const again = await eventually(
    async () => {
      const now = (await listeners()).filter((pid) => !before.has(pid) && pid !== mine[0]);
      return models.listening && now.length === 1 ? now : undefined;
    },
    20_000,
    'a new LISTEN connection',
  );
  expect(again[0]).not.toBe(mine[0]);
});
