/**
 * The seed story end to end with short intervals: a deployed demand model, its monitor, a change upstream, the
 * alert, the retraining it starts, and what happens to the champion.
 */
import { readFile } from 'node:fs/promises';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemand } from '../../examples/demand/generate';
import { parseCsv } from '../../ml/formats/csv';
import { seededRandom, shuffledIndices } from '../../ml/random';
import { aliasEvents, modelAliases, modelVersions } from '../../schema/models';
import { alerts } from '../../schema/monitors';
import { cli, demandPipeline, eventually, failureOf, startHarness, type Harness } from './harness';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.stop();
});

const DATA = { stores: 3, items: 5, days: 120 };
const FEATURES = ['price', 'promo', 'is_holiday', 'store_id', 'item_id', 'day_of_week'];
const INTERVAL_MS = 2_000;

async function rowsOf(path: string): Promise<Record<string, string>[]> {
  const records = parseCsv(await readFile(path, 'utf8'));
  const header = records[0]!.fields;
  const rows = records.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r.fields[i]!])));
  // Requests arrive in random order, not sorted by date like the file.
  return Array.from(shuffledIndices(rows.length, seededRandom(3)), (i) => rows[i]!);
}

const instance = (row: Record<string, string>) =>
  Object.fromEntries(FEATURES.map((f) => [f, f === 'store_id' || f === 'item_id' ? row[f] : Number(row[f])]));

async function predict(model: string, instances: Record<string, unknown>[]): Promise<string> {
  const response = await fetch(`${harness.servingUrl}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, instances }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { request_id: string }).request_id;
}

async function deployed(overrides: Record<string, unknown> = {}) {
  const config = await demandPipeline(harness.workDir, {
    data: DATA,
    config: {
      monitor: {
        interval: '2s',
        minWindowRows: 50,
        meanShiftThreshold: 0.05,
        retrainCooldown: '1h',
        modelQuality: { minLabels: 30 },
      },
      ...overrides,
    },
  });
  const outcome = await (await harness.runPipeline(config)).result;
  expect(outcome.model?.version).toBe(1);
  return { config, monitorId: outcome.monitorWorkflowId! };
}

async function champion(model: string): Promise<number | undefined> {
  const [alias] = await harness.services.db
    .select()
    .from(modelAliases)
    .where(and(eq(modelAliases.modelName, model), eq(modelAliases.alias, 'champion')));
  return alias?.version;
}

describe('the closed loop', () => {
  it('price ×100 upstream: drift is caught within two intervals, the retraining stops at validation, the champion stays', async () => {
    const { config, monitorId } = await deployed();
    const { db } = harness.services;
    const rows = await rowsOf(config.data.source);
    await predict(config.model, rows.slice(0, 200).map(instance));

    // The upstream feature calculation changes: the next data drop and live requests carry prices in cents.
    await generateDemand(config.data.source, { ...DATA, priceScale: 100 });
    const switchedAt = Date.now();
    await predict(
      config.model,
      rows.slice(200, 400).map((row) => ({ ...instance(row), price: Number(row.price) * 100 })),
    );
    const [alert] = await eventually(
      async () => {
        const open = await db
          .select()
          .from(alerts)
          .where(and(eq(alerts.monitorWorkflowId, monitorId), eq(alerts.check, 'prediction_drift')));
        return open.length && open[0]!.retrainWorkflowId ? open : undefined;
      },
      30_000,
      'a prediction-drift alert that started a retraining',
    );
    expect(alert!.openedAt.getTime() - switchedAt).toBeLessThan(2 * INTERVAL_MS + 2_000);
    expect(alert!.message).toMatch(/mean .* vs reference/);

    const retraining = harness.services.client.workflow.getHandle(alert!.retrainWorkflowId!);
    const message = await failureOf(retraining.result());
    expect(message).toMatch(/validate failed: .*column "price": \d+ of \d+ rows are above the maximum 100/s);
    expect(await champion(config.model)).toBe(1);
    expect(await db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model))).toHaveLength(1);
    await harness.services.client.workflow.getHandle(monitorId).terminate('test done');
  });

  it('a genuine shift in demand: labels show the model degrading, the retraining passes validation and gates and rolls out', async () => {
    const { config, monitorId } = await deployed();
    const { db } = harness.services;
    const rows = await rowsOf(config.data.source);
    const served = rows.slice(0, 300);
    const requestId = await predict(config.model, served.map(instance));

    // The world changes: the same customers and prices, but 60 % more units sold. The new drop is valid data.
    await generateDemand(config.data.source, { ...DATA, demandScale: 1.6 });
    const truth = new Map(
      (await rowsOf(config.data.source)).map((r) => [`${r.date}/${r.store_id}/${r.item_id}`, r.units_sold!]),
    );
    const response = await fetch(`${harness.servingUrl}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        labels: served.map((row, i) => ({
          request_id: `${requestId}:${i}`,
          label: Number(truth.get(`${row.date}/${row.store_id}/${row.item_id}`)),
        })),
      }),
    });
    expect(await response.json()).toEqual({ accepted: 300, unknown: [] });

    const [alert] = await eventually(
      async () => {
        const open = await db
          .select()
          .from(alerts)
          .where(and(eq(alerts.monitorWorkflowId, monitorId), eq(alerts.check, 'model_quality')));
        return open.length && open[0]!.retrainWorkflowId ? open : undefined;
      },
      30_000,
      'a model-quality alert that started a retraining',
    );
    expect(alert!.message).toMatch(
      /^rmse [\d.]+ on 300 labelled predictions vs [\d.]+ at evaluation \(\d+ %, limit \+20 %\)/,
    );

    const retrained = (await harness.services.client.workflow.getHandle(alert!.retrainWorkflowId!).result()) as {
      model: { version: number };
      validation: { reference: string | null };
    };
    expect(retrained.model.version).toBe(2);
    expect(await champion(config.model)).toBe(2);
    const moves = await db.select().from(aliasEvents).where(eq(aliasEvents.modelName, config.model));
    expect(moves.map((m) => `${m.fromVersion ?? '-'}→${m.toVersion}`)).toEqual(['-→1', '1→2']);
    expect(moves[1]!.reason).toMatch(/model quality: rmse/);

    // The chain, from the CLI: alert → retraining run → dataset version → model version → rollout.
    // Not spawnSync: a blocked event loop stalls this process's serving, and its keep-alive sockets go stale under
    // fetch.
    const lineage = await cli(harness, ['lineage', `${config.model}@2`]);
    expect(lineage.code, lineage.stderr).toBe(0);
    expect(lineage.stdout).toMatch(
      new RegExp(
        [
          `^${config.model} v2 +registered`,
          `├─ started by alert #${alert!.id} \\(model_quality, critical, open\\)`,
          `while ${config.model} v1 was served:`,
          `${config.model} v1 .*\\n.*started by test`,
          `├─ run run-[0-9a-f]+ +finished on`,
          `├─ dataset ${config.data.dataset}@[0-9a-f]{16} +1800 rows .*\\(validation passed\\)`,
          `rolled out to @champion \\(was v1\\) by workflow:${alert!.retrainWorkflowId}`,
        ].join('[\\s\\S]*'),
      ),
    );

    // Labels for requests nobody made are refused by name; the server stays up.
    const unknown = await fetch(`${harness.servingUrl}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: 'no-such-request', label: 3 }),
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toContain('"no-such-request"');
    await harness.services.client.workflow.getHandle(monitorId).terminate('test done');
  });
});
