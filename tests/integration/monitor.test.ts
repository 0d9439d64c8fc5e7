/** The monitor on the real stack: feature drift and data quality of served requests against the training profile. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../ml/formats/csv';
import { seededRandom, shuffledIndices } from '../../ml/random';
import { deployments } from '../../schema/deployments';
import { modelAliases, registeredModels } from '../../schema/models';
import { alerts, monitorChecks } from '../../schema/monitors';
import type { MonitorInput } from '../../activities/monitor';
import { recordDeployment } from '../../store/deployments';
import { PROJECT_ROOT } from '../../config/env';
import { PIPELINE_KEY } from '../../workflows/searchAttributes';
import { demandPipeline, eventually, startHarness, unique, type Harness } from './harness';

const run = promisify(execFile);
let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  // stop() first terminates whatever this file left running on its queues (monitors, pipelines).
  await harness?.stop();
});

describe('monitor', () => {
  it('stays quiet on normal traffic, then raises one feature-drift and one data-quality alert, acknowledged and resolved from the CLI', async () => {
    const config = await demandPipeline(harness.workDir, {
      data: { stores: 3, items: 5, days: 120 },
      // Prediction drift thresholds out of reach: this test is about the features.
      config: {
        monitor: {
          interval: '2s',
          minWindowRows: 100,
          predictionPsiThreshold: 1000,
          meanShiftThreshold: 1000,
          retrainOnDrift: false,
        },
      },
    });
    const outcome = await (await harness.runPipeline(config)).result;
    const monitorId = outcome.monitorWorkflowId!;
    const { db } = harness.services;
    const records = parseCsv(await readFile(config.data.source, 'utf8'));
    const header = records[0]!.fields;
    // Requests in random order: the file is sorted by date, and a slice of it would have its own share of holidays.
    const ordered = records.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r.fields[i]!])));
    const rows = Array.from(shuffledIndices(ordered.length, seededRandom(11)), (i) => ordered[i]!);
    const features = ['price', 'promo', 'is_holiday', 'store_id', 'item_id', 'day_of_week'];
    const instance = (row: Record<string, string>) =>
      Object.fromEntries(features.map((f) => [f, ['store_id', 'item_id'].includes(f) ? row[f] : Number(row[f])]));
    const send = async (instances: Record<string, unknown>[]) => {
      const response = await fetch(`${harness.servingUrl}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: config.model, instances }),
      });
      expect(response.status).toBe(200);
    };
    const checksWith = async (minRows: number) =>
      (await db.select().from(monitorChecks).where(eq(monitorChecks.monitorWorkflowId, monitorId))).filter(
        (c) => (c.report as { rows: number }).rows >= minRows,
      );
    const raised = () => db.select().from(alerts).where(eq(alerts.monitorWorkflowId, monitorId));

    // No traffic: checks find too few rows and say so; nothing is raised.
    await eventually(
      async () =>
        (await db.select().from(monitorChecks).where(eq(monitorChecks.monitorWorkflowId, monitorId))).length >= 1,
      30_000,
      'a first check',
    );
    expect(await raised()).toHaveLength(0);

    // Normal traffic (rows of the training data), two windows: no alert.
    for (let window = 0; window < 2; window++) {
      const before = (await checksWith(100)).length;
      await send(rows.slice(window * 700, window * 700 + 700).map(instance));
      await eventually(async () => (await checksWith(100)).length > before, 30_000, 'a check over normal traffic');
    }
    const normal = await checksWith(100);
    const report = normal[0]!.report as { features: { columns: { column: string; test: string; drifted: boolean }[] } };
    expect(report.features.columns.map((c) => `${c.column}:${c.test}`).sort()).toEqual([
      'day_of_week:wasserstein_normed',
      'is_holiday:wasserstein_normed',
      'item_id:jensen_shannon',
      'price:wasserstein_normed',
      'promo:wasserstein_normed',
      'store_id:jensen_shannon',
    ]);
    expect(await raised()).toHaveLength(0);

    // Upstream sends prices in cents, and a fifth of the requests come from a store training never saw.
    await send(
      rows.slice(0, 700).map((row, i) => ({
        ...instance(row),
        price: Number(row.price) * 100,
        store_id: i % 5 === 0 ? 'S99' : row.store_id,
      })),
    );
    const both = await eventually(
      async () => {
        const open = await raised();
        return open.length >= 2 ? open : undefined;
      },
      30_000,
      'feature-drift and data-quality alerts',
    );
    const drift = both.find((a) => a.check === 'feature_drift')!;
    expect(drift).toMatchObject({ severity: 'warning', status: 'open' });
    expect(drift.message).toMatch(/^[12] of 6 features drifted \(\d+ %\): .*price \(wasserstein_normed [\d.e+]+\)/);
    const quality = both.find((a) => a.check === 'data_quality')!;
    expect(quality.message).toMatch(
      /feature "store_id": 2\d\.\d % of requests carry categories training never saw \("S99"\)/,
    );

    // The same drift in the next window refreshes the open alert instead of opening another.
    await send(rows.slice(700, 1400).map((row) => ({ ...instance(row), price: Number(row.price) * 100 })));
    const after = (await checksWith(100)).length;
    await eventually(async () => (await checksWith(100)).length > after, 30_000, 'one more check');
    expect((await raised()).filter((a) => a.check === 'feature_drift')).toHaveLength(1);

    // Asynchronously: the monitor's worker runs in this process and must keep working while the CLI waits on it.
    const cli = async (...args: string[]) =>
      (await run(process.execPath, [join(PROJECT_ROOT, 'bin', 'flywheel.js'), 'alerts', ...args], { encoding: 'utf8' }))
        .stdout;
    expect(await cli('--model', config.model)).toMatch(new RegExp(`#${drift.id} +open +warning +feature_drift`));
    expect(await cli('ack', String(drift.id))).toContain(`alert #${drift.id} acknowledged (via monitor ${monitorId}`);
    expect(await cli('resolve', String(quality.id))).toContain(`alert #${quality.id} resolved`);
    const [acked] = await db
      .select()
      .from(alerts)
      .where(and(eq(alerts.id, drift.id)));
    // The CLI acts through the API with the local CLI token: the monitor records the token's name.
    expect(acked!.details).toMatchObject({ acknowledgedBy: expect.stringMatching(/^token:local-cli@/) });
    await harness.services.client.workflow.getHandle(monitorId).terminate('test done');
  });

  it('retrains on a calendar: a schedule created, paused, resumed and backfilled from the CLI', async () => {
    const config = await demandPipeline(harness.workDir);
    const file = join(harness.workDir, `${config.name}.json`);
    await writeFile(file, JSON.stringify(config));
    const id = `${config.name}-nightly`;
    const cli = async (...args: string[]) =>
      (
        await run(process.execPath, [join(PROJECT_ROOT, 'bin', 'flywheel.js'), 'schedule', ...args], {
          encoding: 'utf8',
        })
      ).stdout;
    try {
      expect(
        await cli(
          'create',
          file,
          '--cron',
          '0 3 * * *',
          '--id',
          id,
          '--overlap',
          'buffer-one',
          '--catchup',
          '2h',
          '--paused',
        ),
      ).toContain('(overlap buffer-one, catch-up 2h), paused');
      expect(await cli('describe', id)).toMatch(/cron 0 3 \* \* \*, paused[\s\S]*overlap BUFFER_ONE, catch-up 7200 s/);
      await cli('resume', id);
      expect(await cli('list')).toMatch(new RegExp(`${id} +cron 0 3 \\* \\* \\* +next 20`));
      // allow-all: nothing works the default queue here, so a buffered second run would wait for the first forever.
      await cli(
        'backfill',
        id,
        '--from',
        '2026-01-01T00:00:00Z',
        '--to',
        '2026-01-03T00:00:00Z',
        '--overlap',
        'allow-all',
      );
      const started = await eventually(
        async () => {
          const described = await harness.services.client.schedule.getHandle(id).describe();
          return described.info.numActionsTaken >= 2 ? described.info.recentActions : undefined;
        },
        15_000,
        'two backfilled runs',
      );
      expect(started.map((a) => a.action.workflow.workflowId)).toEqual([
        `${id}-workflow-2026-01-01T03:00:00Z`,
        `${id}-workflow-2026-01-02T03:00:00Z`,
      ]);
      for (const action of started) {
        const handle = harness.services.client.workflow.getHandle(action.action.workflow.workflowId);
        expect((await handle.describe()).typedSearchAttributes.get(PIPELINE_KEY)).toBe(config.name);
        // Nothing listens on the default queue in the test stack; where a stack worker does, the run may have ended.
        await handle.terminate('test done').catch(() => undefined);
      }
    } finally {
      await cli('delete', id).catch(() => undefined);
    }
  });

  it('copes with an all-null window, counts refused requests, then ends quietly when its deployment is removed', async () => {
    const config = await demandPipeline(harness.workDir, {
      config: { monitor: { interval: '2s', minWindowRows: 20, retrainOnDrift: false } },
    });
    const outcome = await (await harness.runPipeline(config)).result;
    const monitorId = outcome.monitorWorkflowId!;
    const { db } = harness.services;
    // Every feature missing: serving imputes, the monitor reports the null rates instead of failing.
    const nulls = Object.fromEntries(
      ['price', 'promo', 'is_holiday', 'store_id', 'item_id', 'day_of_week'].map((f) => [f, null]),
    );
    const response = await fetch(`${harness.servingUrl}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: config.model, instances: Array(40).fill(nulls) }),
    });
    expect(response.status).toBe(200);
    // And a client that sends a feature the model does not know: refused, and counted in the error rate.
    for (let i = 0; i < 20; i++) {
      const refused = await fetch(`${harness.servingUrl}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: config.model, instances: [{ ...nulls, colour: 'red' }] }),
      });
      expect(refused.status).toBe(422);
    }
    const found = await eventually(
      async () => {
        const open = await db.select().from(alerts).where(eq(alerts.monitorWorkflowId, monitorId));
        return open.some((a) => a.check === 'data_quality') && open.some((a) => a.check === 'service')
          ? open
          : undefined;
      },
      30_000,
      'data-quality and service alerts',
    );
    expect(found.find((a) => a.check === 'data_quality')!.message).toMatch(
      /feature "price": 100\.0 % of requests have no value \(training: 0\.0 %\)/,
    );
    expect(found.find((a) => a.check === 'service')!.message).toMatch(
      /^33\.3 % of 60 requests failed or were refused \(limit 5 %\)/,
    );

    await db.delete(modelAliases).where(eq(modelAliases.modelName, config.model));
    await db.delete(deployments).where(eq(deployments.modelName, config.model));
    const ended = await harness.services.client.workflow.getHandle(monitorId).result();
    expect(ended).toBe(`${config.model}@champion is no longer deployed`);
  });

  it('ends by itself, with what is gone as its result and no alert, when its model or the version its alias names no longer exists', async () => {
    const { db, client } = harness.services;
    const settings: MonitorInput['settings'] = {
      interval: '1s',
      minWindowRows: 1,
      predictionPsiThreshold: 0.2,
      meanShiftThreshold: 0.1,
      retrainOnDrift: true,
      retrainCooldown: '1h',
    };
    const watch = async (modelName: string) => {
      const workflowId = unique('monitor-gone');
      const input: MonitorInput = { modelName, alias: 'champion', pipelineName: `${modelName}-pipeline`, settings };
      const result = (await client.workflow.execute('monitorWorkflow', {
        workflowId,
        taskQueue: harness.queues.main,
        args: [input],
      })) as string;
      expect(await db.select().from(alerts).where(eq(alerts.monitorWorkflowId, workflowId))).toEqual([]);
      expect(await db.select().from(monitorChecks).where(eq(monitorChecks.monitorWorkflowId, workflowId))).toEqual([]);
      return result;
    };

    // A model deleted from the registry.
    const deleted = unique('gone-model');
    expect(await watch(deleted)).toBe(`model ${deleted} no longer exists`);

    // The model, its alias and its deployment remain, but the version the alias names was deleted.
    const orphan = unique('gone-version');
    await db.insert(registeredModels).values({ name: orphan });
    await db.insert(modelAliases).values({ modelName: orphan, alias: 'champion', version: 3 });
    await recordDeployment(db, {
      modelName: orphan,
      alias: 'champion',
      version: 3,
      endpoint: 'http://127.0.0.1:1/v2/models/x/infer',
      pipelineName: `${orphan}-pipeline`,
      workflowId: 'test',
    });
    try {
      expect(await watch(orphan)).toBe(`${orphan} v3 (@champion) no longer exists`);
    } finally {
      await db.delete(deployments).where(eq(deployments.modelName, orphan));
      await db.delete(modelAliases).where(eq(modelAliases.modelName, orphan));
      await db.delete(registeredModels).where(eq(registeredModels.name, orphan));
    }
  });
});
