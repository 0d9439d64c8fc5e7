/**
 * Online reads in the serving process (features/online.ts `MergedLookups`) on the stack's Postgres: a lookup that finds
 * a free slot is sent alone, lookups that wait share one query per view and each gets its own rows, and a merged query
 * that Postgres refuses is retried request by request so only the bad request fails.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MergedLookups, withOnlineFeatures } from '../../features/online';
import type { ServedFeatureView } from '../../features/sql';
import { closeDb, connectDb, plansPerExecution, type Db } from '../../storage/db';
import { loadConfig } from '../../config/env';
import { unique } from './harness';

const id = unique('merged');
const views = [`${id}_a@1`, `${id}_b@1`];
let db: Db;

beforeAll(async () => {
  db = connectDb(loadConfig().databaseUrl, 2);
  const now = new Date().toISOString();
  for (const [v, view] of views.entries())
    for (let k = 0; k < 20; k++)
      await db.$client.query(
        'INSERT INTO online_features (view, entity_key, values, event_ts) VALUES ($1, $2, $3, $4)',
        [view, `e${k}`, { score: 100 * v + k }, now],
      );
});

afterAll(async () => {
  await db?.$client.query('DELETE FROM online_features WHERE view = ANY($1)', [views]);
  if (db) await closeDb(db);
});

const scores = (rows: Map<string, { values: Record<string, unknown> }>, keys: string[]) =>
  keys.map((k) => rows.get(k)?.values.score ?? null);

it('sends a lone lookup at once and merges those that wait for a slot, per view, each answered with its own keys', async () => {
  const lookups = new MergedLookups(db, 1);
  // The first takes the only slot; the next five wait: three for view a (merged into one query), two for view b.
  const asked: [number, string[]][] = [
    [0, ['e1']],
    [0, ['e2', 'e3']],
    [1, ['e4']],
    [0, ['e3', 'e5']],
    [1, ['e6', 'missing']],
    [0, ['e19']],
  ];
  const answers = await Promise.all(asked.map(([v, keys]) => lookups.rows(views[v]!, keys)));
  expect(lookups.queries).toBe(3);
  expect(answers.map((rows, i) => scores(rows, asked[i]![1]))).toEqual([[1], [2, 3], [104], [3, 5], [106, null], [19]]);
});

it('fails only the request Postgres refuses when a merged query fails', async () => {
  const lookups = new MergedLookups(db, 1);
  const first = lookups.rows(views[0]!, ['e1']);
  // A NUL character is text Postgres refuses (22021): the merged read fails, each waiting request is retried alone.
  const bad = lookups.rows(views[0]!, ['e2\u0000']);
  const good = lookups.rows(views[0]!, ['e7']);
  const alsoGood = lookups.rows(views[0]!, ['e8']);
  const [r1, r2, r3, r4] = await Promise.allSettled([first, bad, good, alsoGood]);
  expect(r1.status).toBe('fulfilled');
  expect(r2.status).toBe('rejected');
  expect(String((r2 as PromiseRejectedResult).reason)).toMatch(/invalid byte sequence|0x00/);
  expect(scores((r3 as PromiseFulfilledResult<never>).value, ['e7'])).toEqual([7]);
  expect(scores((r4 as PromiseFulfilledResult<never>).value, ['e8'])).toEqual([8]);
  expect(lookups.queries).toBe(1 + 1 + 3);
});

it('serves withOnlineFeatures through merged reads as through a database', async () => {
  const served: ServedFeatureView = {
    ref: views[1]!,
    entities: ['id'],
    features: ['score'],
    ttlSeconds: 3600,
    onMissing: 'null',
  };
  const instances = [{ id: 'e3' }, { id: 'e9' }, { id: 'nobody' }];
  const direct = await withOnlineFeatures(db, [served], new Set(), instances);
  const lookups = new MergedLookups(db, 2);
  const merged = await Promise.all(
    instances.map((instance) => withOnlineFeatures(lookups, [served], new Set(), [instance])),
  );
  expect(merged.flat()).toEqual(direct);
  expect(direct).toEqual([{ score: 103 }, { score: 109 }, { score: null }]);
});

it('prepares lookups only on a pool that plans every execution for its parameters', async () => {
  const custom = connectDb(loadConfig().databaseUrl, 1, { customPlans: true });
  try {
    expect([plansPerExecution(custom), plansPerExecution(db)]).toEqual([true, false]);
    const lookups = new MergedLookups(custom, 1);
    for (let k = 0; k < 8; k++) expect(scores(await lookups.rows(views[0]!, [`e${k}`]), [`e${k}`])).toEqual([k]);
    // The pool's one session: its setting and its prepared lookup.
    const { rows } = await custom.$client.query<{ mode: string; prepared: string[] }>(
      "SELECT current_setting('plan_cache_mode') AS mode, ARRAY(SELECT name FROM pg_prepared_statements) AS prepared",
    );
    expect(rows[0]).toEqual({ mode: 'force_custom_plan', prepared: ['flywheel_online_lookup'] });
    const plain = await db.$client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_statements');
    await new MergedLookups(db, 1).rows(views[0]!, ['e1']);
    expect(
      (await db.$client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_statements')).rows,
    ).toEqual(plain.rows);
  } finally {
    await closeDb(custom);
  }
});

it('leaves lookups unnamed, on sessions as they are, with FLYWHEEL_SERVING_PREPARED_LOOKUPS=0 (for a pooler)', () => {
  const url = loadConfig().databaseUrl;
  expect(loadConfig({ DATABASE_URL: url }).serving.preparedLookups).toBe(true);
  const off = loadConfig({ DATABASE_URL: url, FLYWHEEL_SERVING_PREPARED_LOOKUPS: '0' }).serving.preparedLookups;
  expect(off).toBe(false);
  const pool = connectDb(url, 1, { customPlans: off });
  expect(plansPerExecution(pool)).toBe(false);
  return closeDb(pool);
});
