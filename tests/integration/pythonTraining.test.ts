/**
 * Bring your own model, on the real stack: the user's Python training functions run by a real Python worker
 * (sdk/python's flywheel-worker on Temporal's Python SDK) on this suite's Python queue, reading data and writing
 * metrics, checkpoints and the ONNX model through a real Flywheel server; then Flywheel's own evaluation, gates,
 * registry, serving (onnxruntime-node) and monitor. Also: a worker SIGKILLed mid-training and its successor resuming
 * from the checkpoint, a sweep over a Python step, the failures users make, and an ONNX model imported from elsewhere.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { and, asc, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { churnCsv } from '../../examples/churn-sklearn/generate';
import { generateDemand } from '../../examples/demand/generate';
import { loadPipelineConfig, parsePipelineConfig, type PipelineConfig } from '../../config/pipeline';
import { PROJECT_ROOT } from '../../config/env';
import { apiTokens, modelVersions } from '../../schema/models';
import { monitorChecks } from '../../schema/monitors';
import { runMetrics, runs } from '../../schema/runs';
import {
  ensurePythonWorkerEnv,
  ensureTorch,
  startPythonWorker,
  type PythonWorkerHandle,
} from '../../scripts/pythonWorker';
import { startServer } from '../../server/start';
import { hashToken } from '../../store/tokens';
import { importPipelineConfig } from '../../cli/models';
import { eventually, failureOf, startHarness, unique, type Harness } from './harness';

const suite = unique('py');
const token = `fw_write_test_${suite}`;
const CODE_ROOTS = [join(PROJECT_ROOT, 'examples'), join(PROJECT_ROOT, 'tests', 'fixtures', 'python')];
const CHURN_FEATURES = {
  numeric: ['tenure_months', 'monthly_charges', 'support_calls', 'paperless'],
  categorical: ['contract', 'internet'],
};

let harness: Harness;
let server: { url: string; close(): Promise<void> };
let python: string;
const workers: PythonWorkerHandle[] = [];
let churnSource: string;
let demandSource: string;

async function pythonWorker(): Promise<PythonWorkerHandle> {
  const worker = await startPythonWorker({
    python,
    url: server.url,
    token,
    queue: harness.queues.trainPythonCpu,
    paths: CODE_ROOTS,
  });
  workers.push(worker);
  await worker.ready;
  return worker;
}

beforeAll(async () => {
  // The PyTorch example needs Debian's python3-torch (installed on first use, as root); the venv sees it.
  await ensureTorch();
  python = await ensurePythonWorkerEnv();
  harness = await startHarness();
  await harness.services.db
    .insert(apiTokens)
    .values({ name: `${suite}-write`, scope: 'write', hash: hashToken(token) });
  server = await startServer({ port: 0 });
  churnSource = join(harness.workDir, 'churn.csv');
  writeFileSync(churnSource, churnCsv({ rows: 3000, seed: 11 }));
  demandSource = join(harness.workDir, 'demand.csv');
  await generateDemand(demandSource, { stores: 3, items: 4, days: 90 });
  await pythonWorker();
}, 900_000);

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.stop()));
  await harness?.cleanup();
  await server?.close();
  await harness?.services.db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(like(apiTokens.name, `${suite}-%`));
  await harness?.stop();
});

/** An example's config, renamed for this suite and pointed at this suite's data, with short monitor intervals. */
function example(dir: string, source: string, overrides: Record<string, unknown> = {}): PipelineConfig {
  const loaded = loadPipelineConfig(join(PROJECT_ROOT, 'examples', dir, 'pipeline.yaml'));
  const name = unique(loaded.name);
  return parsePipelineConfig({
    ...loaded,
    name,
    model: name,
    data: { dataset: name, source },
    monitor: { ...loaded.monitor, interval: '2s', minWindowRows: 20 },
    ...overrides,
  });
}

/** A config whose training is a function of tests/fixtures/python/steps.py. */
function fixture(entrypoint: string, params: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const base = example('churn-sklearn', churnSource);
  return parsePipelineConfig({
    ...base,
    deploy: { enabled: false },
    evaluation: { gates: [] },
    training: {
      ...base.training,
      features: { numeric: CHURN_FEATURES.numeric, categorical: [] },
      entrypoint,
      params,
      ...extra,
    },
  });
}

async function predict(model: string, instances: Record<string, unknown>[]) {
  const response = await fetch(`${harness.servingUrl}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, instances }),
  });
  const body = (await response.json()) as Record<string, unknown>;
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body as { predictions: unknown[]; probabilities?: number[][]; version: number };
}

const churnInstance = {
  tenure_months: 3,
  monthly_charges: 99.5,
  support_calls: 4,
  paperless: 1,
  contract: 'month-to-month',
  internet: 'fiber',
};

describe('Python training steps', () => {
  it('the scikit-learn example runs end to end: trained in Python, evaluated, gated, registered, served, monitored', async () => {
    const config = example('churn-sklearn', churnSource);
    const result = await (await harness.runPipeline(config)).result;
    expect(result.backend).toBe('python-cpu');
    expect(result.trainingQueue).toBe(harness.queues.trainPythonCpu);
    expect(result.metrics.roc_auc).toBeGreaterThan(0.7);
    expect(result.model?.version).toBe(1);
    expect(result.deployment?.alias).toBe('champion');

    const { db } = harness.services;
    const [version] = await db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model));
    expect(version!.artifactKey).toMatch(/model\.onnx$/);
    // The boosting stages' validation curve landed on the run, as a TF.js run's epochs do.
    const curve = await db
      .select()
      .from(runMetrics)
      .where(and(eq(runMetrics.runId, result.runId), eq(runMetrics.key, 'val_loss')));
    expect(curve.length).toBeGreaterThanOrEqual(10);

    const answer = await predict(config.model, [
      churnInstance,
      { ...churnInstance, tenure_months: 70, contract: 'two-year' },
    ]);
    expect(answer.predictions).toHaveLength(2);
    expect(answer.probabilities![0]![1]).toBeGreaterThan(answer.probabilities![1]![1]!);
    const metadata = (await (await fetch(`${harness.servingUrl}/v2/models/${config.model}`)).json()) as {
      inputs: { name: string; datatype: string }[];
    };
    expect(metadata.inputs.map((i) => i.name).sort()).toEqual(
      [...CHURN_FEATURES.numeric, ...CHURN_FEATURES.categorical].sort(),
    );

    // The monitor checks windows of the ONNX model's logged predictions like any other model's.
    await predict(
      config.model,
      Array.from({ length: 40 }, (_, i) => ({ ...churnInstance, tenure_months: 1 + (i % 30) })),
    );
    await eventually(
      async () =>
        (await db.select().from(monitorChecks).where(eq(monitorChecks.monitorWorkflowId, result.monitorWorkflowId!)))
          .length >= 1,
      60_000,
      'a monitor check of the ONNX model',
    );
  });

  it('the PyTorch example runs end to end and is served', async () => {
    const config = example('demand-torch', demandSource);
    const withEpochs = parsePipelineConfig({
      ...config,
      training: { ...config.training, params: { ...config.training.params, epochs: 6, batch_size: 64 } },
      evaluation: { gates: [{ metric: 'r2', min: 0 }] },
    });
    const result = await (await harness.runPipeline(withEpochs)).result;
    expect(result.model?.version).toBe(1);
    const steps = await harness.services.db
      .select()
      .from(runMetrics)
      .where(and(eq(runMetrics.runId, result.runId), eq(runMetrics.key, 'val_loss')))
      .orderBy(asc(runMetrics.step));
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const answer = await predict(config.model, [
      { price: 4.5, promo: 1, is_holiday: 0, day_of_week: 5, month: 6 },
      { price: 9.0, promo: 0, is_holiday: 0, day_of_week: 2, month: 6 },
    ]);
    expect(answer.predictions.every((p) => typeof p === 'number' && Number.isFinite(p))).toBe(true);
  });

  it('a worker SIGKILLed mid-training: a new one resumes from the checkpoint and every epoch is logged once', async () => {
    const config = fixture('steps.py:slow_logistic', { epochs: 6, pause_s: 1 });
    const { workflowId, result } = await harness.runPipeline(config);
    const { db } = harness.services;
    const logged = async () => {
      const [run] = await db.select().from(runs).where(eq(runs.workflowId, workflowId));
      if (!run) return [];
      return db
        .select()
        .from(runMetrics)
        .where(and(eq(runMetrics.runId, run.id), eq(runMetrics.key, 'val_loss')))
        .orderBy(asc(runMetrics.step));
    };
    await eventually(async () => (await logged()).length >= 2, 120_000, 'two epochs logged');
    // Every worker polling the queue dies at once (the first was started in beforeAll).
    for (const worker of workers.splice(0)) worker.child.kill('SIGKILL');
    await pythonWorker();
    const outcome = await result;
    expect(outcome.model?.version).toBe(1);
    const steps = (await logged()).map((m) => m.step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
    const [run] = await db.select().from(runs).where(eq(runs.workflowId, workflowId));
    expect(run!.status).toBe('finished');
  });

  it("cancelling the pipeline stops the user's code mid-epoch and records the run as cancelled", async () => {
    const config = fixture('steps.py:slow_logistic', { epochs: 30, pause_s: 1 });
    const { workflowId, result } = await harness.runPipeline(config);
    const { db } = harness.services;
    const runOf = async () => (await db.select().from(runs).where(eq(runs.workflowId, workflowId)))[0];
    const logged = async () => {
      const run = await runOf();
      return run ? db.select().from(runMetrics).where(eq(runMetrics.runId, run.id)) : [];
    };
    await eventually(async () => (await logged()).length >= 2, 120_000, 'training under way');
    await harness.services.client.workflow.getHandle(workflowId).cancel();
    await expect(result).rejects.toThrow();
    const run = await eventually(
      async () => ((await runOf())?.status === 'failed' ? runOf() : undefined),
      30_000,
      'the run closed',
    );
    expect(run!.error).toBe('cancelled');
    // The user's process stopped: no epoch is logged after a few seconds' grace.
    const after = (await logged()).length;
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect((await logged()).length).toBe(after);
  });

  it('a sweep over a Python step tries each point of the grid and keeps the best', async () => {
    const config = fixture(
      'steps.py:slow_logistic',
      { epochs: 2, pause_s: 0 },
      { sweep: { method: 'grid', maxParallel: 1, parameters: { C: { values: [0.01, 1.0] } } } },
    );
    const result = await (await harness.runPipeline(config)).result;
    expect(result.sweep?.trials).toHaveLength(2);
    expect(result.sweep?.trials.every((t) => t.status === 'finished')).toBe(true);
    const trialRuns = await harness.services.db.select().from(runs).where(eq(runs.sweepId, result.sweep!.workflowId));
    expect(trialRuns.map((r) => (r.params as { python: { params: { C: number } } }).python.params.C).sort()).toEqual([
      0.01, 1.0,
    ]);
  });

  it("the user's exception fails the run with its traceback; nothing is registered", async () => {
    const config = fixture('steps.py:raises', {});
    const { workflowId, result } = await harness.runPipeline(config);
    const message = await failureOf(result);
    expect(message).toMatch(/ValueError: tenure has \d+ columns; cannot fit a negative tenure/);
    expect(message).toMatch(/steps\.py", line \d+, in _helper/);
    const [run] = await harness.services.db.select().from(runs).where(eq(runs.workflowId, workflowId));
    expect(run!.status).toBe('failed');
    expect(run!.error).toMatch(/ValueError/);
    expect(
      await harness.services.db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model)),
    ).toHaveLength(0);
  });

  it('a missing entrypoint and a function that saves no model are named failures', async () => {
    const missing = await failureOf((await harness.runPipeline(fixture('nope.py:fit', {}))).result);
    expect(missing).toMatch(/nope\.py/);
    expect(missing).toMatch(/EntrypointError|not found|no such/i);
    const nothing = await failureOf((await harness.runPipeline(fixture('steps.py:saves_nothing', {}))).result);
    expect(nothing).toMatch(/returned without saving a model: call ctx\.save_model/);
  });
});

describe('an imported ONNX model', () => {
  it('is evaluated on a dataset version, gated, registered with lineage "imported", and served', async () => {
    // A model trained elsewhere: the churn example's, taken out of the registry as a user would have it.
    const trained = example('churn-sklearn', churnSource, { deploy: { enabled: false } });
    const original = await (await harness.runPipeline(trained)).result;
    const { store, db } = harness.services;
    const [version] = await db.select().from(modelVersions).where(eq(modelVersions.modelName, trained.model));
    const dir = version!.artifactKey!.replace(/model\.onnx$/, '');
    const modelFile = join(harness.workDir, 'churn.onnx');
    const signatureFile = join(harness.workDir, 'churn.signature.json');
    writeFileSync(modelFile, await store.getBuffer(`${dir}model.onnx`));
    writeFileSync(signatureFile, await store.getBuffer(`${dir}signature.json`));

    const name = unique('imported-churn');
    const config = importPipelineConfig(name, modelFile, {
      signature: signatureFile,
      data: churnSource,
    });
    const gated = parsePipelineConfig(
      {
        ...config,
        // The same seed and data as the original: the same holdout, so the same scores.
        training: { ...config.training, seed: trained.training.seed },
        evaluation: { gates: [{ metric: 'roc_auc', min: 0.7 }] },
      },
      'import',
      {
        keepConfigDir: true,
      },
    );
    const result = await (await harness.runPipeline(gated)).result;
    expect(result.backend).toBe('onnx-import');
    expect(result.metrics.roc_auc).toBeCloseTo(original.metrics.roc_auc!, 6);
    expect(result.model?.version).toBe(1);
    const [run] = await db.select().from(runs).where(eq(runs.id, result.runId));
    expect((run!.tags as Record<string, string>)['flywheel.source']).toBe('imported');
    const answer = await predict(name, [churnInstance]);
    expect(answer.probabilities![0]![1]).toBeGreaterThan(0.5);

    // A signature whose inputs the ONNX file does not have is refused, naming them; nothing is registered.
    const wrong = join(harness.workDir, 'wrong.signature.json');
    const signature = JSON.parse((await store.getBuffer(`${dir}signature.json`)).toString()) as {
      inputs: { columns: unknown[] };
    };
    writeFileSync(
      wrong,
      JSON.stringify({ ...signature, inputs: { layout: 'tensor', name: 'features', columns: CHURN_FEATURES.numeric } }),
    );
    const refused = unique('imported-wrong');
    const message = await failureOf(
      (await harness.runPipeline(importPipelineConfig(refused, modelFile, { signature: wrong, data: churnSource })))
        .result,
    );
    expect(message).toMatch(/"features"/);
    expect(await db.select().from(modelVersions).where(eq(modelVersions.modelName, refused))).toHaveLength(0);
  });
});
