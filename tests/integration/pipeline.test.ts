/** The pipeline end to end on the real Temporal dev server, Postgres and MinIO. */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetVersions } from '../../schema/datasets';
import { deployments, predictions } from '../../schema/deployments';
import { aliasEvents, modelAliases, modelVersions } from '../../schema/models';
import { alerts } from '../../schema/monitors';
import { runMetrics, runs } from '../../schema/runs';
import { demandPipeline, eventually, failureOf, startHarness, type Harness } from './harness';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.stop();
});

async function recordsOf(config: { model: string; data: { dataset: string } }, workflowId: string) {
  const { db } = harness.services;
  return {
    versions: await db.select().from(datasetVersions).where(eq(datasetVersions.datasetName, config.data.dataset)),
    runs: await db.select().from(runs).where(eq(runs.workflowId, workflowId)),
    models: await db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model)),
    aliases: await db.select().from(modelAliases).where(eq(modelAliases.modelName, config.model)),
  };
}

describe('pipeline workflow', () => {
  it('ingests, validates, trains, evaluates, registers, deploys and starts a monitor', async () => {
    const config = await demandPipeline(harness.workDir, { config: { monitor: { interval: '1h' } } });
    const { workflowId, result } = await harness.runPipeline(config);
    const outcome = await result;

    expect(outcome.stages.map((s) => `${s.name}:${s.status}`)).toEqual(
      ['record', 'ingest', 'validate', 'train', 'evaluate', 'register', 'gate', 'approve', 'deploy', 'monitor'].map(
        (s) => `${s}:${s === 'approve' ? 'skipped' : 'done'}`,
      ),
    );
    expect(outcome.metrics.r2).toBeGreaterThan(0.3);
    expect(outcome.backend).toMatch(/^(wasm|cpu|tensorflow)$/);

    const records = await recordsOf(config, workflowId);
    expect(records.versions).toHaveLength(1);
    expect(records.versions[0]!.rowCount).toBe(900);
    expect(await harness.services.store.sizeOf(records.versions[0]!.objectKey)).toBe(records.versions[0]!.byteSize);
    expect(records.runs).toHaveLength(1);
    expect(records.runs[0]).toMatchObject({
      status: 'finished',
      datasetVersionId: outcome.datasetVersionId,
      backend: outcome.backend,
    });
    const epochs = await harness.services.db
      .select()
      .from(runMetrics)
      .where(and(eq(runMetrics.runId, outcome.runId), eq(runMetrics.key, 'loss')));
    expect(epochs.map((m) => m.step).sort()).toEqual([1, 2, 3]);
    expect(records.models).toHaveLength(1);
    expect(records.models[0]).toMatchObject({
      version: 1,
      runId: outcome.runId,
      datasetVersionId: outcome.datasetVersionId,
      workflowId,
    });
    expect(records.aliases).toEqual([expect.objectContaining({ alias: 'champion', version: 1 })]);
    expect(outcome.deployment?.serving).toBe('confirmed');

    // The serving process answers with the deployed version and logs the prediction.
    const response = await fetch(`${harness.servingUrl}/v2/models/${config.model}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        id: `req-${workflowId}`,
        inputs: [
          { name: 'price', datatype: 'FP32', shape: [1], data: [9.5] },
          { name: 'promo', datatype: 'INT32', shape: [1], data: [1] },
          { name: 'is_holiday', datatype: 'INT32', shape: [1], data: [0] },
          { name: 'store_id', datatype: 'BYTES', shape: [1], data: ['S01'] },
          { name: 'item_id', datatype: 'BYTES', shape: [1], data: ['I002'] },
          { name: 'day_of_week', datatype: 'INT32', shape: [1], data: [6] },
        ],
      }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { model_version: string; outputs: { data: number[] }[] };
    expect(body.model_version).toBe('1');
    expect(body.outputs[0]!.data[0]).toBeGreaterThan(0);
    await eventually(
      async () =>
        (
          await harness.services.db
            .select()
            .from(predictions)
            .where(eq(predictions.requestId, `req-${workflowId}`))
        )[0],
      10_000,
      'the logged prediction',
    );

    // Search attributes make the pipeline findable from the Temporal UI and CLI.
    const found = await eventually(
      async () => {
        const list = [];
        for await (const wf of harness.services.client.workflow.list({
          query: `FlywheelModel = "${config.model}" AND WorkflowType = "pipelineWorkflow"`,
        }))
          list.push(wf.workflowId);
        return list.length > 0 ? list : undefined;
      },
      15_000,
      'visibility',
    );
    expect(found).toEqual([workflowId]);
    await harness.services.client.workflow.getHandle(outcome.monitorWorkflowId!).terminate('test done');
  });

  it('reuses the dataset version when the same content is ingested again', async () => {
    const config = await demandPipeline(harness.workDir, { config: { deploy: { enabled: false } } });
    const first = await (await harness.runPipeline(config)).result;
    const second = await (await harness.runPipeline(config)).result;
    expect(second.datasetVersionId).toBe(first.datasetVersionId);
    expect(second.datasetReused).toBe(true);
    expect((await recordsOf(config, '')).versions).toHaveLength(1);
    expect(second.model?.version).toBe(2);
  });

  it('asks for a GPU, falls back to the CPU training queue when no GPU worker takes the task, and records it', async () => {
    const config = await demandPipeline(harness.workDir, { config: { deploy: { enabled: false } } });
    config.training.resources = { gpu: 1, gpuWait: '2s' };
    const { workflowId, result } = await harness.runPipeline(config);
    const outcome = await result;
    expect(outcome.trainingQueue).toBe(harness.queues.trainCpu);
    const [run] = await harness.services.db.select().from(runs).where(eq(runs.workflowId, workflowId));
    expect(run!.params).toMatchObject({ fellBackFromGpu: true });
    expect(run!.taskQueue).toBe(harness.queues.trainCpu);
  });

  it('registers but does not deploy a model that fails its evaluation gate', async () => {
    const config = await demandPipeline(harness.workDir, {
      config: { evaluation: { gates: [{ metric: 'r2', min: 0.9999 }] } },
    });
    const { workflowId, result } = await harness.runPipeline(config);
    const message = await failureOf(result);
    expect(message).toMatch(
      /evaluation gate failed: r2 = [\d.]+ is below the minimum 0.9999\. .+ v1 is registered but not promoted/,
    );
    const records = await recordsOf(config, workflowId);
    expect(records.runs).toHaveLength(1);
    expect(records.models).toEqual([expect.objectContaining({ version: 1, tags: { gate: 'failed' } })]);
    expect(records.aliases).toHaveLength(0);
  });

  it('raises one prediction-drift alert and starts retraining when predictions shift', async () => {
    const config = await demandPipeline(harness.workDir, {
      config: { monitor: { interval: '2s', minWindowRows: 20, meanShiftThreshold: 0.05, retrainCooldown: '1h' } },
    });
    const outcome = await (await harness.runPipeline(config)).result;
    const monitorId = outcome.monitorWorkflowId!;
    // Upstream now sends every row on promotion at a deep discount: predicted demand jumps.
    const instances = Array.from({ length: 40 }, (_, i) => ({
      price: 1,
      promo: 1,
      is_holiday: 1,
      store_id: `S0${(i % 3) + 1}`,
      item_id: `I00${(i % 5) + 1}`,
      day_of_week: i % 7,
    }));
    await eventually(
      async () => {
        const response = await fetch(`${harness.servingUrl}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: config.model, instances }),
        });
        expect(response.status).toBe(200);
        const open = await harness.services.db
          .select()
          .from(alerts)
          .where(and(eq(alerts.monitorWorkflowId, monitorId), eq(alerts.check, 'prediction_drift')));
        return open.length > 0 && open[0]!.retrainWorkflowId ? open : undefined;
      },
      60_000,
      'a drift alert with a retraining run',
    );
    const all = await harness.services.db.select().from(alerts).where(eq(alerts.monitorWorkflowId, monitorId));
    // One alert per check, however many windows drifted; the shifted features (price, promo, holiday) have their own.
    expect(new Set(all.map((a) => a.check)).size).toBe(all.length);
    expect(all.map((a) => a.check)).toContain('feature_drift');
    const raised = all.filter((a) => a.check === 'prediction_drift');
    expect(raised).toHaveLength(1);
    expect(all.filter((a) => a.retrainWorkflowId)).toHaveLength(1);
    expect(raised[0]!.message).toMatch(/mean .* vs reference/);
    const retrain = await harness.services.client.workflow.getHandle(raised[0]!.retrainWorkflowId!).describe();
    expect(retrain.type).toBe('pipelineWorkflow');
    await harness.services.client.workflow.getHandle(monitorId).terminate('test done');
    await harness.services.client.workflow
      .getHandle(raised[0]!.retrainWorkflowId!)
      .terminate('test done')
      .catch(() => undefined);
    expect(
      (await harness.services.db.select().from(deployments).where(eq(deployments.modelName, config.model)))[0]!
        .monitorWorkflowId,
    ).toBe(monitorId);
    expect(
      await harness.services.db.select().from(aliasEvents).where(eq(aliasEvents.modelName, config.model)),
    ).toHaveLength(1);
  });
});
