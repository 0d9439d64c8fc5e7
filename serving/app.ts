/**
 * The HTTP inference server: Open Inference Protocol v2 (`/v2/...`) plus a plain JSON `POST /predict`.
 * One error handler turns typed errors into 4xx responses that name the field; the process stays up.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FeatureError, decodeRegression, featureWidth } from '../ml/preprocess';
import { encodeInstances, outputUnits, predictEncoded } from '../training/model';
import type { LoadedModel, ServedModels } from './models';
import type { PredictionLog } from './predictionLog';

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

const MAX_BODY_BYTES = 1 << 20;
const MAX_INSTANCES = 10_000;

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `malformed JSON: ${(error as Error).message}`);
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

export interface Prediction {
  values: (number | string)[];
  probabilities?: number[][];
  /** Numbers for the prediction log: the value, or the predicted class index. */
  logged: number[];
}

export function predict(models: ServedModels, served: LoadedModel, instances: Record<string, unknown>[]): Prediction {
  const pre = served.preprocessor;
  const encoded = encodeInstances(pre, instances);
  const outputs = predictEncoded(models.tf!, served.model, encoded, instances.length, featureWidth(pre));
  if (pre.target.task === 'regression') {
    const values = Array.from(outputs, (v) => decodeRegression(pre, v));
    return { values, logged: values };
  }
  const classes = outputUnits(pre);
  const labels = pre.target.classes;
  const values: string[] = [];
  const logged: number[] = [];
  const probabilities: number[][] = [];
  for (let i = 0; i < instances.length; i++) {
    const row = Array.from(outputs.subarray(i * classes, (i + 1) * classes));
    const best = row.indexOf(Math.max(...row));
    values.push(labels[best]!);
    logged.push(best);
    probabilities.push(row);
  }
  return { values, probabilities, logged };
}

/** OIP v2 inputs are columns ({name, shape, datatype, data}); turn them into per-row instances. */
function instancesFromV2(body: unknown): Record<string, unknown>[] {
  const inputs = (body as { inputs?: unknown })?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) throw new HttpError(400, 'inputs: expected a non-empty array of {name, shape, datatype, data}');
  let rows: number | undefined;
  const columns = inputs.map((input, i) => {
    const { name, data } = (input ?? {}) as { name?: unknown; data?: unknown };
    if (typeof name !== 'string') throw new HttpError(400, `inputs[${i}].name: expected a string`);
    if (!Array.isArray(data)) throw new HttpError(400, `inputs[${i}].data (${name}): expected an array`);
    if (rows !== undefined && data.length !== rows) throw new HttpError(400, `inputs[${i}].data (${name}): has ${data.length} values, inputs[0] has ${rows}`);
    rows = data.length;
    return { name, data: data as unknown[] };
  });
  if (!rows) throw new HttpError(400, 'inputs: no rows');
  if (rows > MAX_INSTANCES) throw new HttpError(413, `at most ${MAX_INSTANCES} rows per request`);
  return Array.from({ length: rows }, (_, r) => Object.fromEntries(columns.map((c) => [c.name, c.data[r]])));
}

function instancesFromPredict(body: unknown): Record<string, unknown>[] {
  const { instances } = (body ?? {}) as { instances?: unknown };
  if (!Array.isArray(instances) || instances.length === 0) throw new HttpError(400, 'instances: expected a non-empty array of feature objects');
  if (instances.length > MAX_INSTANCES) throw new HttpError(413, `instances: at most ${MAX_INSTANCES} per request`);
  return instances as Record<string, unknown>[];
}

export function createServingHandler(models: ServedModels, predictionLog: PredictionLog) {
  async function resolveModel(name: string, version?: string): Promise<LoadedModel> {
    if (version !== undefined) {
      const number = Number(version);
      if (!Number.isInteger(number) || number < 1) throw new HttpError(400, `version "${version}" is not a positive integer`);
      const found = await models.getVersion(name, number);
      if (!found) throw new HttpError(404, `model ${name} has no version ${version}`);
      return found;
    }
    const found = models.get(name);
    if (!found) throw new HttpError(404, `model ${name} is not deployed here (serving: ${models.list().map((m) => m.name).join(', ') || 'none'})`);
    return found;
  }

  function runAndLog(served: LoadedModel, instances: Record<string, unknown>[], requestId: string) {
    const started = performance.now();
    const prediction = predict(models, served, instances);
    const latencyMs = performance.now() - started;
    predictionLog.add(instances.map((inputs, i) => ({
      requestId: instances.length === 1 ? requestId : `${requestId}:${i}`,
      modelName: served.name, modelVersion: served.version, inputs, prediction: prediction.logged[i]!, latencyMs,
    })));
    return prediction;
  }

  async function route(request: IncomingMessage, response: ServerResponse, context: { model?: string }): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = request.method ?? 'GET';
    const requestId = String(request.headers['x-request-id'] ?? randomUUID());

    if (method === 'GET' && (path === '/v2/health/live' || path === '/health')) return send(response, 200, { live: true });
    if (method === 'GET' && path === '/v2/health/ready') return send(response, models.ready ? 200 : 503, { ready: models.ready });
    if (method === 'GET' && path === '/v2') return send(response, 200, { name: 'flywheel', version: '0.1.0', extensions: [], backend: models.backend });
    if (method === 'GET' && path === '/v2/models') return send(response, 200, { models: models.list().map((m) => ({ name: m.name, version: String(m.version), alias: m.alias })) });

    const match = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/infer|\/ready)?$/.exec(path);
    if (match) {
      const name = decodeURIComponent(match[1]!);
      context.model = name;
      const served = await resolveModel(name, match[2]);
      if (method === 'GET' && !match[3]) {
        const pre = served.preprocessor;
        return send(response, 200, {
          name, versions: [String(served.version)], platform: `tfjs-${models.backend}`,
          inputs: [...pre.numeric.map((n) => ({ name: n.name, datatype: 'FP32', shape: [-1] })), ...pre.categorical.map((c) => ({ name: c.name, datatype: 'BYTES', shape: [-1] }))],
          outputs: [{ name: pre.target.name, datatype: pre.target.task === 'regression' ? 'FP32' : 'BYTES', shape: [-1] }],
        });
      }
      if (method === 'GET' && match[3] === '/ready') return send(response, 200, { name, ready: true });
      if (method === 'POST' && match[3] === '/infer') {
        const body = await readJson(request);
        const id = typeof (body as { id?: unknown })?.id === 'string' ? (body as { id: string }).id : requestId;
        const prediction = runAndLog(served, instancesFromV2(body), id);
        const outputs = [{ name: served.preprocessor.target.name, shape: [prediction.values.length], datatype: typeof prediction.values[0] === 'number' ? 'FP32' : 'BYTES', data: prediction.values }];
        return send(response, 200, { model_name: name, model_version: String(served.version), id, outputs });
      }
    }
    if (method === 'POST' && path === '/predict') {
      const body = await readJson(request);
      const name = (body as { model?: unknown })?.model;
      const names = models.list().map((m) => m.name);
      const modelName = typeof name === 'string' ? name : names.length === 1 ? names[0]! : undefined;
      context.model = modelName;
      if (!modelName) throw new HttpError(400, `model: required when several models are served (${names.join(', ') || 'none'})`);
      const version = (body as { version?: unknown }).version;
      const served = await resolveModel(modelName, version === undefined ? undefined : String(version));
      const prediction = runAndLog(served, instancesFromPredict(body), requestId);
      return send(response, 200, { model: modelName, version: served.version, request_id: requestId, predictions: prediction.values, probabilities: prediction.probabilities });
    }
    if (method === 'POST' && path === '/feedback') {
      // Ground truth by request id: {"labels": [{"request_id": "…", "label": 12}]} or one {"request_id", "label"}.
      const body = await readJson(request) as { labels?: unknown; request_id?: unknown; label?: unknown };
      const raw = Array.isArray(body?.labels) ? body.labels : body && 'request_id' in body ? [body] : undefined;
      if (!raw) throw new HttpError(400, 'labels: expected {"labels": [{"request_id": "…", "label": …}]}');
      if (raw.length > 10_000) throw new HttpError(413, `labels: at most 10,000 per request, got ${raw.length}`);
      const entries = raw.map((item, i) => {
        const { request_id: id, label } = (item ?? {}) as { request_id?: unknown; label?: unknown };
        if (typeof id !== 'string' || !id) throw new HttpError(422, `labels[${i}].request_id: expected a non-empty string`);
        if (typeof label === 'number' ? !Number.isFinite(label) : typeof label !== 'string' || label === '') throw new HttpError(422, `labels[${i}].label: expected a finite number or a class name`);
        return { requestId: id, label: String(label) };
      });
      const result = await predictionLog.recordLabels(entries);
      if (result.accepted === 0) throw new HttpError(404, `no logged prediction has request id ${result.unknown.slice(0, 5).map((u) => `"${u}"`).join(', ')}${result.unknown.length > 5 ? ` (and ${result.unknown.length - 5} more)` : ''}`);
      return send(response, 200, { accepted: result.accepted, unknown: result.unknown });
    }
    throw new HttpError(404, `no route for ${method} ${path}`);
  }

  return (request: IncomingMessage, response: ServerResponse) => {
    const context: { model?: string } = {};
    route(request, response, context).catch((error: unknown) => {
      // Refused and failed requests count towards the model's error rate in its monitor.
      const scored = request.method === 'POST' && context.model !== undefined;
      if (error instanceof HttpError) {
        if (scored && request.url !== '/feedback') predictionLog.addError(context.model, error.status, error.message);
        return send(response, error.status, { error: error.message });
      }
      if (error instanceof FeatureError) {
        if (scored) predictionLog.addError(context.model, 422, error.message);
        return send(response, 422, { error: error.message, field: error.field });
      }
      console.error('serving error', error);
      if (scored) predictionLog.addError(context.model, 500, (error as Error).message ?? String(error));
      send(response, 500, { error: 'internal error' });
    });
  };
}
