/**
 * The feature store on the real stack: point-in-time joins (no leakage, TTL, ties), a pipeline trained on a
 * feature-built dataset, incremental and idempotent materialisation (also from a Temporal Schedule), lookups by entity
 * at serving time, the online / offline skew check, and bad input.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { featureTrainingQuery, loadFeatureSource } from '../../features/activities';
import { parsePipelineConfig } from '../../config/pipeline';
import { defineFeatureView, outputFeatures } from '../../features/define';
import { ttlSeconds, viewRef } from '../../features/sql';
import { parseCsv } from '../../ml/formats/csv';
import { datasetVersions } from '../../schema/datasets';
import { predictions } from '../../schema/deployments';
import { featureViews } from '../../schema/features';
import { withOnlineFeatures } from '../../features/online';
import { findFeatureView, registerFeatureView } from '../../features/store';
import type { MaterializeResult } from '../../features/workflow';
import { PROJECT_ROOT } from '../../config/env';
import { startCliServer, type CliServer } from './cliServer';
import { cli, eventually, failureOf, startHarness, unique, type Harness } from './harness';

let harness: Harness;
let server: CliServer;
const id = unique('fs').replace(/-/g, '_');
const source = `fs_src_${id}`;
const DAY = 86_400_000;
// Thirty days of daily store statistics ending yesterday, so the newest values are fresh (TTL 3 days) at serving time.
const base = Math.floor(Date.now() / DAY) * DAY - 30 * DAY;
const at = (day: number, ms = 0) => new Date(base + day * DAY + ms).toISOString();
const stores = ['S1', 'S2', 'S3', 'S4', 'S5'];
const avgUnits = (store: number, day: number) => 10 * (store + 1) + day;

const view = defineFeatureView({
  name: `store_stats_${id}`.slice(0, 41).toLowerCase(),
  entities: ['store_id'],
  timestamp: 'day',
  createdTimestamp: 'created',
  ttl: '3d',
  source: { query: `SELECT store_id, day, created, avg_units, promo_rate FROM ${source}` },
  features: { avg_units: 'number', promo_rate: 'number' },
  transforms: { units_per_promo: { expression: 'avg_units * (1 + promo_rate)', type: 'number' } },
});

beforeAll(async () => {
  harness = await startHarness();
  server = await startCliServer(harness.queues.main);
  const rows: string[] = [];
  stores.forEach((store, s) => {
    for (let day = 0; day < 30; day++)
      rows.push(`('${store}', '${at(day)}', '${at(day)}', ${avgUnits(s, day)}, ${0.1 * (s + 1)})`);
  });
  // A late correction: the same event time, created later, wins over the first value.
  rows.push(`('S1', '${at(10)}', '${at(10, 3_600_000)}', 222, 0.1)`);
  // A value stamped one second after S2's label at day 15, 12:00: it must never reach that training row.
  rows.push(`('S2', '${at(15, 12 * 3_600_000 + 1_000)}', '${at(15, 12 * 3_600_000 + 1_000)}', 999, 0.2)`);
  await harness.services.db.$client.query(
    `CREATE TABLE ${source} (store_id text, day timestamptz, created timestamptz, avg_units float8, promo_rate float8)`,
  );
  await harness.services.db.$client.query(`INSERT INTO ${source} VALUES ${rows.join(', ')}`);
});

afterAll(async () => {
  // The suite's views, their offline tables and online rows.
  const mine =
    (await harness?.services.db
      .select()
      .from(featureViews)
      .where(like(featureViews.name, `${view.name.slice(0, 36)}%`))) ?? [];
  for (const row of mine) {
    await harness.services.db.$client.query(`DROP TABLE IF EXISTS "${row.offlineTable}"`);
    await harness.services.db.$client.query('DELETE FROM online_features WHERE view = $1', [
      `${row.name}@${row.version}`,
    ]);
  }
  await harness?.services.db.delete(featureViews).where(like(featureViews.name, `${view.name.slice(0, 36)}%`));
  await harness?.services.db.$client.query(`DROP TABLE IF EXISTS ${source}`);
  await server?.close();
  await harness?.stop();
});

/** Entity rows: every store at noon of days 2..27 with a label that follows the feature, plus the edge cases. */
async function entityCsv(): Promise<string> {
  const lines = ['store_id,ts,units_sold'];
  stores.forEach((store, s) => {
    for (let day = 2; day < 28; day++)
      lines.push(`${store},${at(day, 12 * 3_600_000)},${2 * avgUnits(s, day) + (day % 3)}`);
  });
  lines.push(`S3,${at(20)},1`); // exactly at an event time: that value counts
  lines.push(`S4,${at(40)},1`); // ten days after the last value: past the TTL, no features
  const path = join(harness.workDir, `${id}-entities.csv`);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

function materialize(until?: string, extra: Record<string, unknown> = {}) {
  return harness.services.client.workflow.execute('materializeWorkflow', {
    workflowId: unique('materialize'),
    taskQueue: harness.queues.main,
    args: [{ view: view.name, until, window: '5d', ...extra }],
  }) as Promise<MaterializeResult>;
}

describe('feature store', () => {
  it('registers versions, and refuses a source without the timestamp column or with the wrong types', async () => {
    const first = await registerFeatureView(harness.services.db, view);
    expect(first).toMatchObject({ created: true, row: { version: 1 } });
    expect((await registerFeatureView(harness.services.db, view)).created).toBe(false);
    const loaded = await loadFeatureSource(harness.services.db, harness.services.store, first.row);
    expect(loaded.rows).toBe(152);

    const noTimestamp = defineFeatureView({
      ...view,
      name: `${view.name.slice(0, 36)}_nots`,
      source: { query: `SELECT store_id, created, avg_units, promo_rate FROM ${source}` },
    });
    const a = await registerFeatureView(harness.services.db, noTimestamp);
    await expect(loadFeatureSource(harness.services.db, harness.services.store, a.row)).rejects.toThrow(
      new RegExp(
        `feature view ${noTimestamp.name}: its source lacks the event timestamp column "day" \\(it has: store_id, created, avg_units, promo_rate\\)`,
      ),
    );
    const wrongType = defineFeatureView({
      ...view,
      name: `${view.name.slice(0, 36)}_type`,
      source: { query: `SELECT store_id, day, created, 'many' AS avg_units, promo_rate FROM ${source}` },
    });
    const b = await registerFeatureView(harness.services.db, wrongType);
    await expect(loadFeatureSource(harness.services.db, harness.services.store, b.row)).rejects.toThrow(
      /column "avg_units" does not hold a number everywhere: invalid input syntax for type double precision: "many"/,
    );
    const [failed] = await harness.services.db
      .select()
      .from(featureViews)
      .where(and(eq(featureViews.name, wrongType.name), eq(featureViews.version, 1)));
    expect(failed!.loadedAt).toBeNull();

    // A dataset version as the source: checked cell by cell, the error naming line, column and value.
    const dataset = `fs-${id}-stats`.replace(/_/g, '-');
    const csvPath = join(harness.workDir, `${id}-stats.csv`);
    await writeFile(csvPath, `store_id,day,avg_units,promo_rate\nS1,${at(1)},12,0.1\nS2,${at(1)},lots,0.2\n`);
    await harness.runDataset({ dataset, table: { source: csvPath }, drift: null });
    const fromDataset = defineFeatureView({
      ...view,
      name: `${view.name.slice(0, 36)}_ds`,
      createdTimestamp: undefined,
      source: { dataset },
    });
    const c = await registerFeatureView(harness.services.db, fromDataset);
    await expect(loadFeatureSource(harness.services.db, harness.services.store, c.row)).rejects.toThrow(
      new RegExp(`feature view ${fromDataset.name}: line 3, column "avg_units": "lots" is not a number`),
    );
    await writeFile(csvPath, `store_id,day,avg_units,promo_rate\nS1,${at(1)},12,0.1\nS2,${at(1)},13,0.2\n`);
    await harness.runDataset({ dataset, table: { source: csvPath }, drift: null });
    const good = await loadFeatureSource(harness.services.db, harness.services.store, c.row);
    expect(good).toMatchObject({ rows: 2, loadedFrom: expect.stringMatching(new RegExp(`^${dataset}@`)) });
  });

  it('builds a training set point in time — nothing from the future, TTL and ties respected — and trains, deploys and serves by entity id', async () => {
    const config = parsePipelineConfig({
      name: `fs-${id}`.replace(/_/g, '-'),
      model: `fs-${id}-model`.replace(/_/g, '-'),
      data: {
        dataset: `fs-${id}-train`.replace(/_/g, '-'),
        source: await entityCsv(),
        features: { views: [view.name], timestamp: 'ts' },
      },
      training: {
        task: 'regression',
        target: 'units_sold',
        features: { numeric: ['avg_units', 'promo_rate', 'units_per_promo'] },
        model: { type: 'linear' },
        epochs: 30,
        learningRate: 0.05,
      },
      monitor: { enabled: false },
    });
    const outcome = await (await harness.runPipeline(config)).result;
    expect(outcome.stages.find((s) => s.name === 'ingest')!.summary).toMatch(
      new RegExp(`with features of ${view.name}@1 joined point in time`),
    );

    const [version] = await harness.services.db
      .select()
      .from(datasetVersions)
      .where(eq(datasetVersions.id, outcome.datasetVersionId));
    const [head, ...records] = parseCsv((await harness.services.store.getBuffer(version!.objectKey)).toString()).map(
      (r) => r.fields,
    );
    const csv = { header: head!, rows: records };
    expect(csv.header).toEqual(['store_id', 'ts', 'units_sold', 'avg_units', 'promo_rate', 'units_per_promo']);
    const row = (store: string, ts: string) => csv.rows.find((r) => r[0] === store && r[1] === ts)!;
    expect(csv.rows).toHaveLength(5 * 26 + 2);
    // Leakage: S2's label at day 15, 12:00 sees day 15's value, never the 999 stamped one second later.
    expect(row('S2', at(15, 12 * 3_600_000))[3]).toBe(String(avgUnits(1, 15)));
    expect(csv.rows.some((r) => r[3] === '999')).toBe(false);
    expect(row('S1', at(10, 12 * 3_600_000))[3]).toBe('222');
    expect(row('S3', at(20))[3]).toBe(String(avgUnits(2, 20)));
    expect(row('S4', at(40)).slice(3)).toEqual(['', '', '']);
    expect(Number(row('S5', at(7, 12 * 3_600_000))[5])).toBeCloseTo(avgUnits(4, 7) * 1.5, 6);

    // Materialise up to day 20, twice (nothing changes), then to now; the scheduler's runs pick up from the watermark.
    const first = await materialize(at(20, 1));
    expect(first).toMatchObject({ windows: 5, watermark: at(20, 1) });
    const online = async (store: string) =>
      (
        await harness.services.db.$client.query(
          'SELECT values FROM online_features WHERE view = $1 AND entity_key = $2',
          [`${view.name}@1`, store],
        )
      ).rows[0]?.values as { avg_units: number } | undefined;
    expect((await online('S1'))!.avg_units).toBe(avgUnits(0, 20));
    expect(await materialize(at(20, 1), { load: false })).toMatchObject({ windows: 0, upserted: 0 });
    // Out of order and again: a window already written changes nothing.
    expect(await materialize(at(20, 1), { load: false, full: false })).toMatchObject({ upserted: 0 });
    const rest = await materialize(undefined, { load: false });
    expect(rest.upserted).toBeGreaterThanOrEqual(5);
    expect((await online('S1'))!.avg_units).toBe(avgUnits(0, 29));

    // Serving: the request carries the entity id only; the features come from the online store.
    const post = (instances: Record<string, unknown>[]) =>
      fetch(`${harness.servingUrl}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: config.model, instances }),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { predictions?: number[]; error?: string; request_id?: string },
      }));
    const served = await post([{ store_id: 'S3' }]);
    expect(served.status).toBe(200);
    expect(served.body.predictions![0]).toBeGreaterThan(0);
    expect(await post([{ store_id: 'S99' }])).toEqual({
      status: 404,
      body: expect.objectContaining({
        error: `instances[0]: no online features for store_id="S99" in feature view ${view.name}@1 (unknown entity, or not materialised yet)`,
      }),
    });
    expect(await post([{ price: 3 }])).toEqual({
      status: 422,
      body: expect.objectContaining({
        error: `instances[0].store_id: missing: the entity key of feature view ${view.name}@1`,
      }),
    });
    // The log holds the looked-up features: the drift monitor compares them with the training data's profile.
    const [logged] = await eventually(
      async () => {
        const rows = await harness.services.db
          .select()
          .from(predictions)
          .where(eq(predictions.requestId, served.body.request_id!));
        return rows.length > 0 && rows;
      },
      10_000,
      'the logged prediction',
    );
    expect(logged!.inputs).toEqual({
      avg_units: avgUnits(2, 29),
      promo_rate: expect.closeTo(0.3, 9),
      units_per_promo: expect.closeTo(avgUnits(2, 29) * 1.3, 6),
    });

    // Skew check: for every store, what serving looks up now equals what the training set gets at the watermark.
    const row_ = await findFeatureView(harness.services.db, view.name);
    const watermark = row_.materializedUntil!.toISOString();
    const path = join(harness.workDir, `${id}-skew.csv`);
    await writeFile(path, `store_id,ts\n${stores.map((s) => `${s},${watermark}`).join('\n')}\n`);
    const built = await featureTrainingQuery(
      harness.services.db,
      harness.services.store,
      `fs_skew_${id}`,
      { source: path },
      { views: [view.name], timestamp: 'ts' },
    );
    try {
      const offline = (await harness.services.db.$client.query(built.query)).rows as Record<string, unknown>[];
      const served_ = {
        ref: viewRef(row_.name, row_.version),
        entities: view.entities,
        features: outputFeatures(view),
        ttlSeconds: ttlSeconds(view),
        onMissing: view.onMissing,
      };
      const online = await withOnlineFeatures(
        harness.services.db,
        [served_],
        new Set(),
        stores.map((s) => ({ store_id: s })),
      );
      expect(online).toEqual(
        offline.map((r) => ({ avg_units: r.avg_units, promo_rate: r.promo_rate, units_per_promo: r.units_per_promo })),
      );
    } finally {
      await built.drop();
    }
  });

  it('joins several views at once, each with its own TTL', async () => {
    const weekly = defineFeatureView({
      name: `${view.name.slice(0, 36)}_wk`,
      entities: ['store_id'],
      timestamp: 'day',
      ttl: '1d',
      source: { query: `SELECT store_id, day, avg_units * 7 AS units_wk FROM ${source} WHERE day < '${at(25)}'` },
      features: { units_wk: 'number' },
    });
    const { row } = await registerFeatureView(harness.services.db, weekly);
    await loadFeatureSource(harness.services.db, harness.services.store, row);
    const path = join(harness.workDir, `${id}-two.csv`);
    await writeFile(path, `store_id,ts\nS1,${at(12, 3_600_000)}\nS2,${at(27)}\n`);
    const built = await featureTrainingQuery(
      harness.services.db,
      harness.services.store,
      `fs_two_${id}`,
      { source: path },
      { views: [view.name, weekly.name], timestamp: 'ts' },
    );
    try {
      const rows = (await harness.services.db.$client.query(built.query)).rows as Record<string, unknown>[];
      expect(rows).toEqual([
        {
          store_id: 'S1',
          ts: at(12, 3_600_000),
          avg_units: avgUnits(0, 12),
          promo_rate: 0.1,
          units_per_promo: expect.closeTo(avgUnits(0, 12) * 1.1, 6),
          units_wk: 7 * avgUnits(0, 12),
        },
        // The weekly view stops at day 24: two days later its 1-day TTL has passed; the daily view's 3 days have not.
        {
          store_id: 'S2',
          ts: at(27),
          avg_units: avgUnits(1, 27),
          promo_rate: 0.2,
          units_per_promo: expect.closeTo(avgUnits(1, 27) * 1.2, 6),
          units_wk: null,
        },
      ]);
      expect(built.views.map((v) => v.ref)).toEqual([`${view.name}@1`, `${weekly.name}@1`]);
    } finally {
      await built.drop();
    }
  });

  it('materialises on a Temporal Schedule and looks entities up from the CLI, through the API', async () => {
    const flywheel = (args: string[], token?: string) => cli(harness, ['features', ...args], server.env(token));
    const created = await flywheel(['schedule', view.name, '--every', '1h', '--id', `fs-${id}`]);
    expect(created.stdout, created.stderr).toMatch(new RegExp(`schedule fs-${id}: materialise ${view.name} every 1h`));
    const before = (await findFeatureView(harness.services.db, view.name)).materializedUntil!.getTime();
    await harness.services.client.schedule.getHandle(`fs-${id}`).trigger();
    await eventually(
      async () =>
        (await findFeatureView(harness.services.db, view.name)).materializedUntil!.getTime() > before || undefined,
      60_000,
      'the scheduled run',
    );
    await harness.services.client.schedule.getHandle(`fs-${id}`).delete();
    const got = await flywheel(['get', view.name, 'store_id=S2']);
    const unknown = await flywheel(['get', view.name, 'store_id=S99']);
    const listed = await flywheel(['list'], server.tokens.read);
    const materialized = await flywheel(['materialize', view.name, '--no-load']);
    expect(JSON.parse(got.stdout)).toEqual({
      store_id: 'S2',
      avg_units: avgUnits(1, 29),
      promo_rate: 0.2,
      units_per_promo: expect.closeTo(avgUnits(1, 29) * 1.2, 6),
    });
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain(`no online features for store_id="S99" in feature view ${view.name}@1`);
    expect(listed.stdout).toMatch(new RegExp(`${view.name}@1\\s+store_id\\s+3\\s+3d\\s+152\\s+20`));
    expect(materialized.stdout, materialized.stderr).toMatch(
      new RegExp(
        `^materialising ${view.name}: workflow materialize-${view.name}-\\w+ \\(http[^)]+\\)\\n${view.name}@1: \\d+ windows, \\d+ entities written; online until 20`,
      ),
    );

    // Declared in a TypeScript file and applied from the CLI: registered once, a changed TTL is version 2.
    const declare = async (ttl: string, name = `${view.name.slice(0, 36)}_cli`) => {
      const file = join(harness.workDir, `${name}-views.ts`);
      await writeFile(
        file,
        `import { defineFeatureView } from ${JSON.stringify(join(PROJECT_ROOT, 'features', 'define.ts'))};
export const v = defineFeatureView({ name: ${JSON.stringify(name)}, entities: ['store_id'], timestamp: 'day', ttl: ${JSON.stringify(ttl)},
  source: { query: ${JSON.stringify(`SELECT store_id, day, avg_units FROM ${source}`)} }, features: { avg_units: 'number' } });
`,
      );
      return file;
    };
    const file = await declare('3d');
    expect((await flywheel(['apply', file])).stdout).toMatch(
      /_cli@1 {2}registered {2}entities store_id; 1 features; ttl 3d/,
    );
    expect((await flywheel(['apply', file])).stdout).toMatch(/_cli@1 {2}unchanged/);
    await declare('4d');
    expect((await flywheel(['apply', file])).stdout).toMatch(/_cli@2 {2}registered/);
    await declare('0d');
    expect((await flywheel(['apply', file])).stderr).toMatch(/ttl: must be a positive duration/);

    // Loaded through a workflow the server starts, which the CLI follows; a read token may look, never write.
    const readOnly = `${view.name.slice(0, 36)}_ro`;
    const loaded = await flywheel(['load', `${view.name.slice(0, 36)}_cli`]);
    const shown = await flywheel(['show', view.name], server.tokens.read);
    const refused = await flywheel(['apply', await declare('3d', readOnly)], server.tokens.read);
    expect(loaded.stdout, loaded.stderr).toMatch(/_cli@2: 152 rows from query at 20\S+ in [\d.]+ s/);
    expect(shown.stdout).toMatch(/avg_units\s+number\s+152\s+0\.0\s+10\s+/);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/has scope "read"; this route needs "write"/);
    expect(await harness.services.db.select().from(featureViews).where(eq(featureViews.name, readOnly))).toEqual([]);

    // Entity rows without the timestamp column: the pipeline's ingest names what is missing.
    const path = join(harness.workDir, `${id}-bad.csv`);
    await writeFile(path, 'store_id,when\nS1,2026-01-01\n');
    const config = parsePipelineConfig({
      name: `fs-bad-${id}`.replace(/_/g, '-'),
      model: `fs-bad-${id}`.replace(/_/g, '-'),
      data: {
        dataset: `fs-bad-${id}`.replace(/_/g, '-'),
        source: path,
        features: { views: [view.name], timestamp: 'ts' },
      },
      training: { task: 'regression', target: 'units_sold', features: { numeric: ['avg_units'] } },
    });
    expect(await failureOf((await harness.runPipeline(config)).result)).toMatch(
      /the entity rows lack "ts" \(needed by .+ and data\.features\.timestamp; they have: store_id, when\)/,
    );
  }, 600_000); // a dozen CLI processes, each compiling its TypeScript: minutes on a busy machine
});
