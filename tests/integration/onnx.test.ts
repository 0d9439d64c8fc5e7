/**
 * ONNX models run by Flywheel on the real stack (Postgres, MinIO): registered by hand through the stores, evaluated by
 * the evaluate activity and served over OIP v2 and `/predict` exactly like TF.js models — and next to them, in a
 * canary and a shadow. Predictions are checked against Python's onnxruntime and scikit-learn; a model answering NaN
 * and one whose inputs do not match its signature are refused with messages that name the culprit.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { and, eq, inArray } from 'drizzle-orm';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvaluateActivities, type EvaluateInput } from '../../activities/evaluate';
import { loadConfig, PROJECT_ROOT } from '../../config/env';
import { loadRunner } from '../../inference/load';
import { OnnxRunner } from '../../inference/onnx';
import { parseSignature, SignatureError } from '../../inference/signature';
import { fitPreprocessor } from '../../training/preprocess';
import { splitRows } from '../../training/split';
import { deployments, predictions, requestErrors, shadowPredictions, trafficRoutes } from '../../schema/deployments';
import { ensurePythonEnv, TRITON_CLIENT_REQUIREMENTS } from '../../scripts/python';
import { createServingHandler } from '../../serving/app';
import { ServedModels } from '../../serving/models';
import { PredictionLog } from '../../serving/predictionLog';
import { recordDatasetVersion } from '../../store/datasets';
import { recordDeployment, setTrafficRoute } from '../../store/deployments';
import { registerPipelineVersion } from '../../store/registry';
import { createRun } from '../../store/runs';
import { loadTf } from '../../training/backend';
import { buildModel, serializeModel } from '../../training/model';
import { connectServices, type Services } from '../../workers/wiring';
import { onnxFixtures, type OnnxFixtureName, type OnnxFixtures } from '../fixtures/onnx';
import { inActivity } from './activityContext';
import { eventually, unique } from './harness';

const execPython = promisify(execFile);
const suite = unique('onnx');
/** Serving answers this alias only: the shared database's other deployments stay out of this suite's process. */
const alias = suite;
let fixtures: OnnxFixtures;
let services: Services;
let models: ServedModels;
let log: PredictionLog;
let server: Server;
let url: string;
let datasetVersionId: string;
let contentHash: string;
const modelNames: string[] = [];

beforeAll(async () => {
  fixtures = await onnxFixtures();
  services = await connectServices(loadConfig());
  const { db, store } = services;
  contentHash = createHash('sha256').update(fixtures.csv).digest('hex');
  const dataset = `${suite}-churn`;
  datasetVersionId = `${dataset}@${contentHash.slice(0, 16)}`;
  const objectKey = `datasets/${dataset}/${contentHash}.csv`;
  await store.putBuffer(objectKey, fixtures.csv, 'text/csv');
  await recordDatasetVersion(db, {
    id: datasetVersionId,
    datasetName: dataset,
    contentHash,
    objectKey,
    sourceUri: fixtures.dir,
    rowCount: fixtures.rows,
    byteSize: Buffer.byteLength(fixtures.csv),
    columns: Object.keys(fixtures.columns).map((name) => ({ name, type: 'string' })),
    profile: [],
  });
  models = new ServedModels(db, store, { alias });
  await models.start(250);
  log = new PredictionLog(db, 500, 50);
  server = createServer(createServingHandler(models, log));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 300_000);

afterAll(async () => {
  models?.stop();
  if (server) await new Promise((resolve) => server.close(resolve));
  await log?.close();
  if (services && modelNames.length) {
    await services.db.delete(trafficRoutes).where(inArray(trafficRoutes.modelName, modelNames));
    await services.db.delete(deployments).where(eq(deployments.alias, alias));
  }
  await services?.close();
});

/** A run and its artifacts under `models/<model>/<run>/`, registered as the model's next version. */
async function register(modelName: string, files: { name: string; body: Buffer | string }[], task: string) {
  const { db, store } = services;
  if (!modelNames.includes(modelName)) modelNames.push(modelName);
  const run = await createRun(db, { experimentName: suite });
  const prefix = `models/${modelName}/${run.id}/`;
  for (const file of files) await store.putBuffer(prefix + file.name, file.body);
  const artifactKey = prefix + files[0]!.name;
  const { version } = await registerPipelineVersion(db, {
    workflowId: unique('wf'),
    modelName,
    task,
    runId: run.id,
    datasetVersionId,
    params: {},
    metrics: {},
    artifactKey,
    predictionReferenceKey: `${prefix}prediction-reference.json`,
  });
  return { version, artifactKey, runId: run.id };
}

async function registerOnnx(modelName: string, fixture: OnnxFixtureName, signature?: Record<string, unknown>) {
  const parsed = signature ?? (await fixtures.signature(fixture));
  return register(
    modelName,
    [
      { name: 'model.onnx', body: await readFile(fixtures.modelPath(fixture)) },
      { name: 'signature.json', body: JSON.stringify(parsed) },
    ],
    String(parsed.task),
  );
}

/** An (untrained) TF.js churn classifier over the same columns as the ONNX pipeline. */
async function registerTfjs(modelName: string) {
  const { tf } = await loadTf();
  const rows = Array.from({ length: fixtures.rows }, (_, i) => i);
  const pre = fitPreprocessor(fixtures.columns, rows, {
    task: 'classification',
    target: 'churned',
    numeric: ['tenure', 'monthly_charges'],
    categorical: ['plan'],
  });
  const network = buildModel(tf, pre, {
    type: 'mlp',
    hiddenUnits: [4],
    activation: 'relu',
    optimizer: 'adam',
    learningRate: 0.01,
    seed: 3,
  });
  const artifact = JSON.stringify(serializeModel(network, pre));
  network.dispose();
  return register(modelName, [{ name: 'model.json', body: artifact }], 'classification');
}

async function deploy(modelName: string, version: number) {
  await recordDeployment(services.db, {
    modelName,
    alias,
    version,
    endpoint: `${url}/v2/models/${modelName}/infer`,
    pipelineName: suite,
    workflowId: suite,
  });
  await models.refresh();
}

const instance = (row: number, features = ['tenure', 'monthly_charges', 'plan']) =>
  Object.fromEntries(
    features.map((f) => [f, f === 'plan' ? fixtures.columns[f]![row]! : Number(fixtures.columns[f]![row])]),
  );
const allRows = () => Array.from({ length: fixtures.rows }, (_, i) => i);

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** Every value within `tolerance` of the expected one. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string) {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst, what).toBeLessThanOrEqual(tolerance);
}

const evaluate = (input: EvaluateInput) =>
  inActivity(() =>
    createEvaluateActivities({
      db: services.db,
      store: services.store,
      temporal: services.client,
      workflowTaskQueue: suite,
    }).evaluateModel(input),
  ).result;

/** The non-retryable failure an activity threw, as its type and message. */
async function failure(result: Promise<unknown>): Promise<{ type?: string; message: string; nonRetryable: boolean }> {
  const error = await result.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  const failed = error as ApplicationFailure;
  return { type: failed.type ?? undefined, message: failed.message, nonRetryable: failed.nonRetryable === true };
}

describe('serving ONNX models', () => {
  it('answers OIP v2 metadata, infer and /predict for a pipeline with a categorical column, like Python', async () => {
    const modelName = `${suite}-pipeline`;
    const { version } = await registerOnnx(modelName, 'pipeline');
    await deploy(modelName, version);

    const metadata = await call('GET', `/v2/models/${modelName}`);
    expect(metadata.status).toBe(200);
    expect(metadata.json).toEqual({
      name: modelName,
      versions: [String(version)],
      platform: 'onnxruntime_onnx',
      inputs: [
        { name: 'tenure', datatype: 'FP32', shape: [-1, 1] },
        { name: 'monthly_charges', datatype: 'FP32', shape: [-1, 1] },
        { name: 'plan', datatype: 'BYTES', shape: [-1, 1] },
      ],
      outputs: [{ name: 'churned', datatype: 'BYTES', shape: [-1] }],
    });

    const rows = allRows();
    const expected = fixtures.expected.pipeline!;
    const predicted = await call('POST', '/predict', { model: modelName, instances: rows.map((r) => instance(r)) });
    expect(predicted.status).toBe(200);
    const probabilities = (predicted.json.probabilities as number[][]).flat();
    expectClose(probabilities, expected.onnxruntime, 1e-5, 'vs Python onnxruntime');
    expectClose(probabilities, expected.sklearn!, 1e-5, 'vs scikit-learn');
    const classOf = (r: number) => (expected.onnxruntime[r * 2 + 1]! > expected.onnxruntime[r * 2]! ? 'yes' : 'no');
    expect(predicted.json.predictions).toEqual(rows.map(classOf));

    const some = rows.slice(0, 20);
    const inferred = await call('POST', `/v2/models/${modelName}/infer`, {
      id: `${suite}-v2`,
      inputs: ['tenure', 'monthly_charges', 'plan'].map((name) => ({
        name,
        shape: [some.length, 1],
        datatype: name === 'plan' ? 'BYTES' : 'FP32',
        data: some.map((r) => instance(r)[name]),
      })),
    });
    expect(inferred.status).toBe(200);
    expect(inferred.json.outputs).toEqual([
      { name: 'churned', shape: [some.length], datatype: 'BYTES', data: some.map(classOf) },
    ]);

    // The same rows from tritonclient (Triton's and KServe's OIP v2 client): binary tensor data both ways, then JSON.
    const triton = await ensurePythonEnv('tritonclient', TRITON_CLIENT_REQUIREMENTS);
    const rowsFile = join(await mkdtemp(join(tmpdir(), 'flywheel-triton-')), 'rows.json');
    const columns = ['tenure', 'monthly_charges', 'plan'].map((name) => [name, some.map((r) => instance(r)[name])]);
    await writeFile(rowsFile, JSON.stringify(Object.fromEntries(columns)));
    const script = join(PROJECT_ROOT, 'tests', 'integration', 'tritonclient_check.py');
    const { stdout } = await execPython(triton, [script, url, modelName, rowsFile], { timeout: 120_000 });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({
      inputs: ['tenure', 'monthly_charges', 'plan'],
      binary: some.map(classOf),
      json: some.map(classOf),
    });

    // Concurrent single-row requests (batched together by the server) each get their own row's answer.
    const concurrent = await Promise.all(
      rows.slice(0, 48).map((r) => call('POST', '/predict', { model: modelName, instances: [instance(r)] })),
    );
    concurrent.forEach((answer, r) => {
      expect(answer.status).toBe(200);
      expectClose(
        (answer.json.probabilities as number[][])[0]!,
        expected.onnxruntime.slice(r * 2, r * 2 + 2),
        1e-5,
        `row ${r}`,
      );
    });

    // A feature missing or unknown is the caller's error (422 naming it), as with TF.js models.
    const missing = await call('POST', '/predict', { model: modelName, instances: [{ tenure: 3, plan: 'pro' }] });
    expect(missing.status).toBe(422);
    expect(missing.json.error).toMatch(/instances\[0\]\.monthly_charges: missing feature/);

    await log.flush();
    const logged = await services.db.select().from(predictions).where(eq(predictions.modelName, modelName));
    // /predict's rows, the v2 JSON request's, tritonclient's two requests' and the 48 single rows: each logged once.
    expect(logged).toHaveLength(rows.length + some.length * 3 + 48);
    expect(logged.every((p) => p.modelVersion === version && (p.prediction === 0 || p.prediction === 1))).toBe(true);
  });

  it('serves tensor-layout models: a float64 regressor, gradient boosting, logits and labels, the tensor sent whole', async () => {
    const modelName = `${suite}-tensor`;
    const registered = {
      regressor: await registerOnnx(modelName, 'regressor'),
      gbc: await registerOnnx(modelName, 'gbc'),
      logits: await registerOnnx(modelName, 'logits'),
      labels: await registerOnnx(modelName, 'labels'),
      logreg: await registerOnnx(modelName, 'logreg'),
    };
    const rows = allRows();
    const numeric = rows.map((r) => instance(r, ['tenure', 'monthly_charges']));
    for (const [fixture, { version }] of Object.entries(registered)) {
      const answer = await call('POST', '/predict', { model: modelName, version, instances: numeric });
      expect(answer.status, fixture).toBe(200);
      const expected = fixtures.expected[fixture]!;
      const values =
        fixture === 'regressor'
          ? (answer.json.predictions as number[])
          : (answer.json.probabilities as number[][]).flat();
      expectClose(values, expected.onnxruntime, 1e-5, `${fixture} vs Python onnxruntime`);
      if (expected.sklearn) expectClose(values, expected.sklearn, 1e-5, `${fixture} vs scikit-learn`);
    }

    // The regressor's real input: one FP64 tensor [N, 2], in the metadata and accepted whole (flat or nested rows).
    const path = `/v2/models/${modelName}/versions/${registered.regressor.version}`;
    const metadata = await call('GET', path);
    expect(metadata.json.inputs).toEqual([{ name: 'X', datatype: 'FP64', shape: [-1, 2] }]);
    expect(metadata.json.outputs).toEqual([{ name: 'spend', datatype: 'FP32', shape: [-1] }]);
    const some = rows.slice(0, 10);
    const flat = some.flatMap((r) => [
      Number(fixtures.columns.tenure![r]),
      Number(fixtures.columns.monthly_charges![r]),
    ]);
    const whole = await call('POST', `${path}/infer`, {
      inputs: [{ name: 'X', shape: [10, 2], datatype: 'FP64', data: flat }],
    });
    expect(whole.status).toBe(200);
    const [output] = whole.json.outputs as { data: number[] }[];
    expectClose(output!.data, fixtures.expected.regressor!.sklearn!.slice(0, 10), 1e-5, 'v2 tensor input');
    const nested = await call('POST', `${path}/infer`, {
      inputs: [{ name: 'X', shape: [10, 2], datatype: 'FP64', data: some.map((_, i) => flat.slice(i * 2, i * 2 + 2)) }],
    });
    expect((nested.json.outputs as { data: number[] }[])[0]!.data).toEqual(output!.data);
    const ragged = await call('POST', `${path}/infer`, {
      inputs: [{ name: 'X', shape: [3], datatype: 'FP64', data: [1, 2, 3] }],
    });
    expect(ragged.status).toBe(400);
    expect(ragged.json.error).toMatch(/inputs\[0\]\.shape \(X\): expected \[rows, 2\] \(tenure, monthly_charges\)/);
  });

  it('splits a canary between a TF.js version and an ONNX version, and shadows one with the other', async () => {
    const modelName = `${suite}-canary`;
    const tfjs = await registerTfjs(modelName);
    const onnx = await registerOnnx(modelName, 'pipeline');
    await deploy(modelName, tfjs.version);
    await setTrafficRoute(services.db, {
      modelName,
      mode: 'canary',
      baseVersion: tfjs.version,
      candidateVersion: onnx.version,
      weight: 0.5,
      workflowId: `${suite}-canary`,
    });
    await models.refresh();
    const listed = await call('GET', '/v2/models');
    expect(listed.json.models).toContainEqual(
      expect.objectContaining({
        name: modelName,
        version: String(tfjs.version),
        rollout: { mode: 'canary', candidate: String(onnx.version), weight: 0.5 },
      }),
    );

    const reference = await loadRunner(services.store, tfjs.artifactKey);
    const seen = new Set<number>();
    for (let r = 0; r < 40; r++) {
      const answer = await call('POST', '/predict', { model: modelName, key: `user-${r}`, instances: [instance(r)] });
      expect(answer.status).toBe(200);
      const version = answer.json.version as number;
      seen.add(version);
      const expected =
        version === onnx.version
          ? fixtures.expected.pipeline!.onnxruntime.slice(r * 2, r * 2 + 2)
          : Array.from(await reference.predict([instance(r)]));
      expectClose((answer.json.probabilities as number[][])[0]!, expected, 1e-5, `user-${r} on v${version}`);
      // OIP v2 by feature reaches whichever version the key is routed to.
      const inferred = await call('POST', `/v2/models/${modelName}/infer`, {
        parameters: { key: `user-${r}` },
        inputs: Object.entries(instance(r)).map(([name, value]) => ({
          name,
          shape: [1],
          datatype: 'BYTES',
          data: [value],
        })),
      });
      expect(inferred.status).toBe(200);
      expect(inferred.json.model_version).toBe(String(version));
    }
    reference.dispose();
    expect([...seen].sort()).toEqual([tfjs.version, onnx.version].sort());

    // Shadow: the TF.js version answers, the ONNX one hears every request and its answers are logged beside.
    await setTrafficRoute(services.db, {
      modelName,
      mode: 'shadow',
      baseVersion: tfjs.version,
      candidateVersion: onnx.version,
      weight: 1,
      workflowId: `${suite}-shadow`,
    });
    await models.refresh();
    const shadowed = await call('POST', '/predict', {
      model: modelName,
      instances: allRows()
        .slice(0, 5)
        .map((r) => instance(r)),
    });
    expect(shadowed.json.version).toBe(tfjs.version);
    const heard = await eventually(
      async () => {
        await log.flush();
        const rows = await services.db
          .select()
          .from(shadowPredictions)
          .where(and(eq(shadowPredictions.modelName, modelName), eq(shadowPredictions.shadowVersion, onnx.version)));
        return rows.length === 5 && rows;
      },
      10_000,
      'the ONNX shadow logged',
    );
    const classes = allRows()
      .slice(0, 5)
      .map((r) =>
        fixtures.expected.pipeline!.onnxruntime[r * 2 + 1]! > fixtures.expected.pipeline!.onnxruntime[r * 2]! ? 1 : 0,
      );
    expect(heard.map((h) => h.error)).toEqual([null, null, null, null, null]);
    expect(heard.map((h) => h.shadowPrediction).sort()).toEqual([...classes].sort());
  });
});

describe('evaluating ONNX models', () => {
  const params = { holdoutFraction: 0.25, seed: 11 };
  const holdout = () => Array.from(splitRows(fixtures.rows, params.holdoutFraction, params.seed, contentHash).holdout);

  it('scores an ONNX candidate against a TF.js champion on the same holdout, and writes the reference beside it', async () => {
    const modelName = `${suite}-evaluate`;
    const champion = await registerTfjs(modelName);
    const candidate = await registerOnnx(modelName, 'pipeline');
    const result = await evaluate({
      runId: candidate.runId,
      artifactKey: candidate.artifactKey,
      datasetVersionId,
      params,
      gates: [],
      slices: ['plan'],
      baseline: { version: champion.version, artifactKey: champion.artifactKey, metrics: { holdout_accuracy: 0.5 } },
    });
    const rows = holdout();
    const expected = fixtures.expected.pipeline!.onnxruntime;
    const correct = rows.filter(
      (r) => (expected[r * 2 + 1]! > expected[r * 2]! ? 'yes' : 'no') === fixtures.columns.churned![r],
    ).length;
    expect(result.metrics.accuracy).toBeCloseTo(correct / rows.length, 12);
    expect(result.metrics.roc_auc).toBeGreaterThan(0.5);
    expect(result.baseline).toEqual(expect.objectContaining({ version: champion.version, scoredOn: 'this holdout' }));
    const prefix = candidate.artifactKey.replace(/model\.onnx$/, '');
    expect(result.predictionReferenceKey).toBe(`${prefix}prediction-reference.json`);
    expect(result.reportKey).toBe(`${prefix}evaluation/report.json`);
    expect(await services.store.sizeOf(result.predictionReferenceKey)).toBeGreaterThan(0);
    expect(Object.keys(result.plots).sort()).toEqual(['calibration', 'confusion_matrix', 'precision_recall', 'roc']);

    // The other way round: a TF.js candidate against the ONNX model as champion.
    const reverse = await evaluate({
      runId: champion.runId,
      artifactKey: champion.artifactKey,
      datasetVersionId,
      params,
      gates: [],
      baseline: { version: candidate.version, artifactKey: candidate.artifactKey, metrics: {} },
    });
    expect(reverse.baseline).toEqual({
      version: candidate.version,
      metrics: result.metrics,
      scoredOn: 'this holdout',
    });
  });

  it('scores an ONNX regressor in the target units, as scikit-learn predicts it', async () => {
    const candidate = await registerOnnx(`${suite}-regression`, 'regressor');
    const result = await evaluate({
      runId: candidate.runId,
      artifactKey: candidate.artifactKey,
      datasetVersionId,
      params,
      gates: [{ metric: 'rmse', max: 100 }],
    });
    const rows = holdout();
    const predicted = fixtures.expected.regressor!.sklearn!;
    const rmse = Math.sqrt(
      rows.reduce((sum, r) => sum + (predicted[r]! - Number(fixtures.columns.spend![r])) ** 2, 0) / rows.length,
    );
    expect(result.metrics.rmse).toBeCloseTo(rmse, 6);
    expect(result.plots).toHaveProperty('residuals');
  });

  it('refuses a model that answers NaN: non-retryable, naming the model, the data row and the output', async () => {
    const candidate = await registerOnnx(`${suite}-nan`, 'nan');
    const failed = await failure(
      evaluate({ runId: candidate.runId, artifactKey: candidate.artifactKey, datasetVersionId, params, gates: [] }),
    );
    const row = holdout().find((r) => Number(fixtures.columns.tenure![r]) < 5)!;
    expect(failed.type).toBe('EvaluationError');
    expect(failed.nonRetryable).toBe(true);
    expect(failed.message).toContain(
      `the candidate ${candidate.artifactKey} answered a non-finite prediction: output "value" [data row ${row + 1}] is NaN (inputs: tenure="${fixtures.columns.tenure![row]}"`,
    );
    // Nothing for monitoring or the registry: the reference is never written.
    expect(await services.store.sizeOf(candidate.artifactKey.replace('model.onnx', 'prediction-reference.json'))).toBe(
      undefined,
    );
  });

  it('refuses a model whose input is not the one its signature names, naming both', async () => {
    const candidate = await registerOnnx(`${suite}-mismatch`, 'mismatch');
    const failed = await failure(
      evaluate({ runId: candidate.runId, artifactKey: candidate.artifactKey, datasetVersionId, params, gates: [] }),
    );
    expect(failed.type).toBe('EvaluationError');
    expect(failed.nonRetryable).toBe(true);
    expect(failed.message).toMatch(/inputs\.name "input": the model has no such input \(its inputs: features\)/);
  });
});

describe('refusals at serving', () => {
  it('answers 500 naming the version for a NaN, logs it as an error, and still answers the batch it came in', async () => {
    const modelName = `${suite}-nan-serving`;
    const { version } = await registerOnnx(modelName, 'nan');
    const [good, bad] = await Promise.all([
      call('POST', '/predict', { model: modelName, version, instances: [{ tenure: 30, monthly_charges: 50 }] }),
      call('POST', '/predict', {
        model: modelName,
        version,
        instances: [
          { tenure: 30, monthly_charges: 50 },
          { tenure: 2, monthly_charges: 50 },
        ],
      }),
    ]);
    expect(good.status).toBe(200);
    expect(good.json.predictions).toEqual([Math.fround(Math.sqrt(25))]);
    expect(bad.status).toBe(500);
    expect(bad.json.error).toBe(
      `${modelName} v${version} answered a non-finite prediction: output "value" [instance 1] is NaN`,
    );
    await log.flush();
    const logged = await services.db.select().from(predictions).where(eq(predictions.modelName, modelName));
    expect(logged.map((p) => p.prediction)).toEqual([5]);
    const errors = await services.db.select().from(requestErrors).where(eq(requestErrors.modelName, modelName));
    expect(errors.map((e) => [e.status, e.modelVersion])).toEqual([[500, version]]);
    expect(errors[0]!.message).toMatch(/non-finite prediction/);
  });

  it('answers a clear 500 for a version whose inputs do not match its signature', async () => {
    const modelName = `${suite}-mismatch-serving`;
    const { version } = await registerOnnx(modelName, 'mismatch');
    const answer = await call('POST', '/predict', {
      model: modelName,
      version,
      instances: [{ tenure: 3, monthly_charges: 40 }],
    });
    expect(answer.status).toBe(500);
    expect(answer.json.error).toMatch(/inputs\.name "input": the model has no such input \(its inputs: features\)/);
    expect(answer.json.field).toBe('inputs.name');
  });
});

describe('signatures checked against the model', () => {
  const open = async (fixture: OnnxFixtureName, change: (s: Record<string, unknown>) => Record<string, unknown>) => {
    const signature = parseSignature(change(await fixtures.signature(fixture)));
    return OnnxRunner.create(await readFile(fixtures.modelPath(fixture)), signature, `${fixture}/model.onnx`);
  };
  const refused = async (runner: Promise<OnnxRunner>) => {
    const error = await runner.then(
      (r) => (r.dispose(), undefined),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SignatureError);
    return error as SignatureError;
  };
  const inputs = (s: Record<string, unknown>) => s.inputs as Record<string, unknown>;

  it.each([
    [
      'a tensor of another width',
      'logreg' as const,
      (s: Record<string, unknown>) => ({
        ...s,
        inputs: { ...inputs(s), columns: ['tenure', 'monthly_charges', 'age'] },
      }),
      'inputs.columns',
      /inputs\.columns lists 3 columns \(tenure, monthly_charges, age\), but ONNX input "input" takes 2/,
    ],
    [
      'another dtype',
      'logreg' as const,
      (s: Record<string, unknown>) => ({ ...s, inputs: { ...inputs(s), dtype: 'float64' } }),
      'inputs.dtype',
      /inputs\.dtype is "float64", but ONNX input "input" is float32/,
    ],
    [
      'a column the model has no input for',
      'pipeline' as const,
      (s: Record<string, unknown>) => ({
        ...s,
        inputs: {
          layout: 'columns',
          columns: [...(inputs(s).columns as object[]).slice(0, 2), { name: 'tier', type: 'categorical' }],
        },
      }),
      'inputs.columns[2]',
      /inputs\.columns\[2\] \("tier"\): the model has no input named "tier" \(its inputs: tenure, monthly_charges, plan\)/,
    ],
    [
      'a categorical column on a float input',
      'pipeline' as const,
      (s: Record<string, unknown>) => ({
        ...s,
        inputs: {
          layout: 'columns',
          columns: [
            { name: 'tenure', type: 'categorical' },
            { name: 'monthly_charges', type: 'numeric' },
            { name: 'plan', type: 'categorical' },
          ],
        },
      }),
      'inputs.columns[0]',
      /inputs\.columns\[0\] \("tenure"\) is categorical, but ONNX input "tenure" is float32/,
    ],
    [
      'an output the model does not have',
      'gbc' as const,
      (s: Record<string, unknown>) => ({ ...s, output: { name: 'scores', kind: 'probabilities' } }),
      'output.name',
      /output\.name "scores": the model has no such output \(its outputs: label \[N\], probabilities \[N, 3\]\)/,
    ],
    [
      'fewer classes than the output has columns',
      'gbc' as const,
      (s: Record<string, unknown>) => ({ ...s, classes: ['high', 'low'] }),
      'classes',
      /classes lists 2 classes, but output "probabilities" has 3 columns/,
    ],
  ])('refuses %s, naming the field and the input', async (_what, fixture, change, field, message) => {
    const error = await refused(open(fixture, change));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });
});
