/**
 * The HTTP inference server: Open Inference Protocol v2 (`/v2/...`) plus a plain JSON `POST /predict`.
 * One error handler turns typed errors into 4xx responses that name the field; the process stays up.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ApiError } from '../config/errors';
import { NonFiniteOutputError } from '../inference/runner';
import { SignatureError } from '../inference/signature';
import { FeatureError } from '../training/preprocess';
import { PredictBatcher, predictNow, type Prediction } from './batcher';
import type { Choice, LoadedModel, ServedModels } from './models';
import { LookupError, MergedLookups, withOnlineFeatures } from '../features/online';
import type { PredictionLog } from './predictionLog';
import type { Db } from '../storage/db';
import { observePrediction } from './metrics';
import { attachBinaryInputs, encodeOutput, headerLength, wantsBinaryOutput } from './binaryTensors';
import { HttpError } from './httpError';
import { answerMetrics } from '../observability/metricsServer';
import { componentLogger } from '../observability/log';

const log = componentLogger('serving');

const modelInputs = (served: LoadedModel) => new Set(served.runner.features.map((f) => f.name));

export { HttpError };

const MAX_BODY_BYTES = 1 << 20;
const MAX_INSTANCES = 10_000;

/** Past this, an oversized body is not even drained: the connection is dropped. */
const MAX_DRAIN_BYTES = 64 << 20;

/** A body still arriving after this long is dropped (a client trickling bytes holds no connection for ever). */
const BODY_TIMEOUT_MS = 30_000;

/** Deeper JSON is refused: nothing in a request needs it, and deep values overflow the stack downstream. */
export const MAX_JSON_DEPTH = 32;

/** Longest `x-request-id` accepted: it is stored with every logged prediction. */
const MAX_REQUEST_ID = 256;

/** Connection limits for the serving process's `http.Server`, applied by `limitServer`. */
export const SERVER_LIMITS = {
  /** Open connections at once; more are refused at accept. @default 4096 */
  maxConnections: 4096,
  /** Time for a client to send its request headers. @default 10 s */
  headersTimeoutMs: 10_000,
  /** Time for a whole request, body included. @default 60 s */
  requestTimeoutMs: 60_000,
  /** An idle keep-alive connection is closed after this. @default 5 s */
  keepAliveTimeoutMs: 5_000,
  /** Requests one keep-alive connection may carry before it is closed (fairness between clients). @default 10,000 */
  maxRequestsPerSocket: 10_000,
} as const;

/** Applies `SERVER_LIMITS` to the server the handler runs in. */
export function limitServer<T extends Server>(server: T, limits: Partial<typeof SERVER_LIMITS> = {}): T {
  const l = { ...SERVER_LIMITS, ...limits };
  server.maxConnections = l.maxConnections;
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxRequestsPerSocket = l.maxRequestsPerSocket;
  return server;
}

/** `application/json`, or a `+json` type, with any parameters (charset). */
function isJsonType(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

/**
 * A request body as JSON: the content type must say JSON (415), the text must parse (400), and no value may nest
 * deeper than `MAX_JSON_DEPTH` or hold text Postgres cannot store — a NUL or an unpaired surrogate (400, naming
 * where). Throws nothing but `HttpError`.
 */
export function parseJsonBody(contentType: string | undefined, body: Buffer): unknown {
  if (!isJsonType(contentType))
    throw new HttpError(
      415,
      `content-type must be application/json${contentType ? `, got "${contentType.slice(0, 100)}"` : ''}`,
    );
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `malformed JSON: ${(error as Error).message}`);
  }
  checkJsonValue(value);
  return value;
}

const UNSTORABLE_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

interface Visit {
  value: unknown;
  depth: number;
  parent?: Visit;
  key?: string | number;
}

const pathOf = (visit: Visit): string => {
  let path = '';
  for (let v: Visit | undefined = visit; v?.parent; v = v.parent)
    path = typeof v.key === 'number' ? `[${v.key}]${path}` : `${v.parent.parent ? '.' : ''}${v.key}${path}`;
  return path || '(body)';
};

/** Walks the parsed body without recursion: depth, and text that could not be logged. */
function checkJsonValue(root: unknown): void {
  const stack: Visit[] = [{ value: root, depth: 0 }];
  while (stack.length) {
    const visit = stack.pop()!;
    const { value, depth } = visit;
    if (typeof value === 'string') {
      if (UNSTORABLE_TEXT.test(value))
        throw new HttpError(400, `${pathOf(visit)}: text holds a NUL character or an unpaired UTF-16 surrogate`);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH)
      throw new HttpError(400, `${pathOf(visit)}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--)
        stack.push({ value: value[i], depth: depth + 1, parent: visit, key: i });
      continue;
    }
    for (const key of Object.keys(value)) {
      if (UNSTORABLE_TEXT.test(key))
        throw new HttpError(
          400,
          `${pathOf(visit)}: a field name holds a NUL character or an unpaired UTF-16 surrogate`,
        );
      stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, parent: visit, key });
    }
  }
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const contentType = request.headers['content-type'];
  // Refused before the body is read; Node discards what is left of it.
  if (!isJsonType(contentType)) return parseJsonBody(contentType, Buffer.alloc(0));
  return parseJsonBody(contentType, await readBody(request));
}

/**
 * An OIP v2 infer request: JSON, or a JSON header and binary tensor data (`Inference-Header-Content-Length`, the
 * binary_tensor_data extension). OIP clients (tritonclient, KServe's) send no content type, or octet-stream with binary
 * data: both are taken; any other type is a 415.
 */
async function readInferRequest(request: IncomingMessage): Promise<unknown> {
  const contentType = request.headers['content-type'];
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const binaryHeader = request.headers['inference-header-content-length'];
  if (contentType !== undefined && !isJsonType(contentType) && type !== 'application/octet-stream')
    return parseJsonBody(contentType, Buffer.alloc(0));
  const bytes = await readBody(request);
  const jsonBytes = headerLength(binaryHeader, bytes.length);
  if (jsonBytes === undefined) {
    if (type === 'application/octet-stream')
      throw new HttpError(400, 'an octet-stream body needs inference-header-content-length (the JSON header size)');
    return parseJsonBody('application/json', bytes);
  }
  const body = parseJsonBody('application/json', bytes.subarray(0, jsonBytes));
  attachBinaryInputs(body, bytes.subarray(jsonBytes));
  // Decoded BYTES elements are held to what JSON text is: nothing the prediction log could not store.
  checkJsonValue(body);
  return body;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const timer = setTimeout(
    () => request.destroy(new HttpError(408, `request body not received within ${BODY_TIMEOUT_MS / 1000} s`)),
    BODY_TIMEOUT_MS,
  );
  try {
    for await (const chunk of request) {
      size += (chunk as Buffer).length;
      // Read the rest of an oversized body without keeping it, so the client gets its 413 instead of a reset.
      if (size > MAX_DRAIN_BYTES) request.destroy();
      if (size <= MAX_BODY_BYTES) chunks.push(chunk as Buffer);
    }
  } finally {
    clearTimeout(timer);
  }
  if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body exceeds ${MAX_BODY_BYTES} bytes`);
  return Buffer.concat(chunks);
}

/**
 * What a request says about the model's inputs, checked before any lookup or encoding: an object per instance, no
 * nested value for a feature, and a number (or numeric text, or null) for a numeric feature — never `true`/`false`.
 * Wrong JSON types are 400 naming the field; a value of the right type that does not fit (e.g. "cheap") is left to
 * the encoder's 422.
 */
export function checkInstanceValues(
  numeric: ReadonlySet<string>,
  instances: unknown[],
  where: (row: number, key?: string) => string,
): void {
  instances.forEach((instance, row) => {
    if (instance === null || typeof instance !== 'object' || Array.isArray(instance))
      throw new HttpError(400, `${where(row)}: expected an object of feature values`);
    for (const [key, value] of Object.entries(instance)) {
      if (value !== null && typeof value === 'object')
        throw new HttpError(
          400,
          `${where(row, key)}: expected a number or a string, got ${Array.isArray(value) ? 'an array' : 'an object'}`,
        );
      if (typeof value === 'boolean' && numeric.has(key))
        throw new HttpError(400, `${where(row, key)}: expected a number, got ${value}`);
    }
  });
}

/** A 200 whose JSON header is followed by binary output data (OIP v2's binary_tensor_data extension). */
function sendWithBinary(response: ServerResponse, header: unknown, data: Buffer): void {
  const text = Buffer.from(JSON.stringify(header), 'utf8');
  response.writeHead(200, {
    'content-type': 'application/octet-stream',
    'inference-header-content-length': text.length,
    'content-length': text.length + data.length,
  });
  response.end(Buffer.concat([text, data]));
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** One request predicted in-process, without batching (the benchmark's limit). */
export function predict(served: LoadedModel, instances: Record<string, unknown>[]): Promise<Prediction> {
  return predictNow(served, instances);
}

/** A model's one [N, width] input (an ONNX model's tensor layout) and the feature columns along its second axis. */
export interface TensorInput {
  name: string;
  columns: string[];
}

/**
 * A whole [N, width] tensor input as per-feature columns: `data` flat (row-major, as OIP v2 sends it) or nested
 * rows.
 */
function tensorColumns(i: number, tensor: TensorInput, input: { shape?: unknown; data: unknown[] }) {
  const width = tensor.columns.length;
  const nested = input.data.length > 0 && Array.isArray(input.data[0]);
  const flat = nested ? (input.data as unknown[][]).flat() : input.data;
  const shape = input.shape;
  const declared = Array.isArray(shape) && shape.length === 2 && shape[1] === width;
  if (!declared && !nested)
    throw new HttpError(
      400,
      `inputs[${i}].shape (${tensor.name}): expected [rows, ${width}] (${tensor.columns.join(', ')})`,
    );
  if (
    flat.length % width !== 0 ||
    (nested && (input.data as unknown[][]).some((r) => !Array.isArray(r) || r.length !== width))
  )
    throw new HttpError(
      400,
      `inputs[${i}].data (${tensor.name}): expected rows of ${width} values (${tensor.columns.join(', ')})`,
    );
  const rows = flat.length / width;
  return tensor.columns.map((name, k) => ({ name, data: Array.from({ length: rows }, (_, r) => flat[r * width + k]) }));
}

/**
 * OIP v2 inputs are columns ({name, shape, datatype, data}); turn them into per-row instances. An input named as one
 * of `tensors` may carry all its features at once ([N, width]).
 */
export function instancesFromV2(body: unknown, tensors: TensorInput[] = []): Record<string, unknown>[] {
  const inputs = (body as { inputs?: unknown })?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0)
    throw new HttpError(400, 'inputs: expected a non-empty array of {name, shape, datatype, data}');
  let rows: number | undefined;
  const columns = inputs.flatMap((input, i) => {
    const { name, data, shape } = (input ?? {}) as { name?: unknown; data?: unknown; shape?: unknown };
    if (typeof name !== 'string') throw new HttpError(400, `inputs[${i}].name: expected a string`);
    if (!Array.isArray(data)) throw new HttpError(400, `inputs[${i}].data (${name}): expected an array`);
    const tensor = tensors.find((t) => t.name === name);
    const parts = tensor ? tensorColumns(i, tensor, { shape, data }) : [{ name, data: data as unknown[] }];
    for (const part of parts) {
      if (rows !== undefined && part.data.length !== rows)
        throw new HttpError(400, `inputs[${i}].data (${name}): has ${part.data.length} values, inputs[0] has ${rows}`);
      rows = part.data.length;
    }
    return parts;
  });
  if (!rows) throw new HttpError(400, 'inputs: no rows');
  if (rows > MAX_INSTANCES) throw new HttpError(413, `at most ${MAX_INSTANCES} rows per request`);
  return Array.from({ length: rows }, (_, r) => Object.fromEntries(columns.map((c) => [c.name, c.data[r]])));
}

export function instancesFromPredict(body: unknown): Record<string, unknown>[] {
  const { instances } = (body ?? {}) as { instances?: unknown };
  if (!Array.isArray(instances) || instances.length === 0)
    throw new HttpError(400, 'instances: expected a non-empty array of feature objects');
  if (instances.length > MAX_INSTANCES) throw new HttpError(413, `instances: at most ${MAX_INSTANCES} per request`);
  return instances as Record<string, unknown>[];
}

/** Connections in the serving process's pool for online feature lookups. @default 4 */
export const LOOKUP_CONNECTIONS = 4;

export interface ServingHandlerOptions {
  /**
   * The pool the online feature lookups use. A pool of their own: the prediction log's flushes, the model refresh, the
   * replica beat and the NOTIFY listener cannot hold every connection a lookup needs. @default `models.db`
   */
  lookupDb?: Db;
}

export function createServingHandler(
  models: ServedModels,
  predictionLog: PredictionLog,
  options: ServingHandlerOptions = {},
) {
  const batcher = new PredictBatcher();
  // Lookups that wait for one of the pool's connections are merged into one query per view.
  const lookups = new MergedLookups(options.lookupDb ?? models.db, LOOKUP_CONNECTIONS);

  async function resolveModel(name: string, version: string | undefined, key: string): Promise<Choice> {
    if (version !== undefined) {
      const number = Number(version);
      if (!Number.isInteger(number) || number < 1)
        throw new HttpError(400, `version "${version}" is not a positive integer`);
      const found = await models.getVersion(name, number);
      if (!found) throw new HttpError(404, `model ${name} has no version ${version}`);
      return { served: found };
    }
    const found = models.choose(name, key);
    if (!found)
      throw new HttpError(
        404,
        `model ${name} is not deployed here (serving: ${
          models
            .list()
            .map((m) => m.name)
            .join(', ') || 'none'
        })`,
      );
    return found;
  }

  async function runAndLog(
    choice: Choice,
    request: Record<string, unknown>[],
    requestId: string,
    context: { version?: number },
    where: (row: number, key?: string) => string,
  ) {
    const { served, shadow } = choice;
    context.version = served.version;
    const numeric = served.runner.features.filter((f) => f.kind === 'numeric').map((f) => f.name);
    checkInstanceValues(new Set(numeric), request, where);
    const instances = served.featureViews
      ? await withOnlineFeatures(lookups, served.featureViews, modelInputs(served), request)
      : request;
    const prediction = await batcher.predict(served, instances);
    const ids = instances.map((_, i) => (instances.length === 1 ? requestId : `${requestId}:${i}`));
    predictionLog.add(
      instances.map((inputs, i) => ({
        requestId: ids[i]!,
        modelName: served.name,
        modelVersion: served.version,
        inputs,
        prediction: prediction.logged[i]!,
        latencyMs: prediction.latencyMs,
      })),
    );
    // The shadow hears the same request after the answer is on its way; what it says is logged, never returned.
    if (shadow) setImmediate(() => void mirror(shadow, served, instances, ids, prediction));
    return prediction;
  }

  async function mirror(
    shadow: LoadedModel,
    served: LoadedModel,
    instances: Record<string, unknown>[],
    ids: string[],
    answered: Prediction,
  ) {
    const record = (i: number, value: number | null, error: string | null, latencyMs: number) => ({
      requestId: ids[i]!,
      modelName: served.name,
      baseVersion: served.version,
      shadowVersion: shadow.version,
      basePrediction: answered.logged[i]!,
      shadowPrediction: value,
      error,
      latencyMs,
    });
    try {
      const heard = await batcher.predict(shadow, instances);
      predictionLog.addShadow(instances.map((_, i) => record(i, heard.logged[i]!, null, heard.latencyMs)));
    } catch (error) {
      predictionLog.addShadow(instances.map((_, i) => record(i, null, (error as Error).message.slice(0, 300), 0)));
    }
  }

  async function route(
    request: IncomingMessage,
    response: ServerResponse,
    context: { model?: string; version?: number },
  ): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = request.method ?? 'GET';
    const requestId = String(request.headers['x-request-id'] ?? randomUUID());
    if (requestId.length > MAX_REQUEST_ID)
      throw new HttpError(400, `x-request-id: at most ${MAX_REQUEST_ID} characters`);

    // Liveness and readiness stay open for probes and load balancers: they name no model.
    if (method === 'GET' && (path === '/v2/health/live' || path === '/health'))
      return send(response, 200, { live: true });
    if (method === 'GET' && path === '/v2/health/ready')
      return send(response, models.ready ? 200 : 503, { ready: models.ready });
    // For the scraper, like the probes: series names and counts, no predictions.
    if (method === 'GET' && path === '/metrics') return void (await answerMetrics(request, response));
    // Past here every route names, answers with or writes for a model: with keys required, only a keyed client gets in.
    const refused = models.refuseKey(apiKeyOf(request));
    if (refused) throw new HttpError(401, refused);
    if (method === 'GET' && path === '/v2')
      return send(response, 200, {
        name: 'flywheel',
        version: '0.1.0',
        extensions: ['binary_tensor_data'],
        backend: models.backend,
      });
    if (method === 'GET' && path === '/v2/models') {
      return send(response, 200, {
        models: models.list().map((m) => {
          const route = models.route(m.name);
          return {
            name: m.name,
            version: String(m.version),
            alias: m.alias,
            ...(route
              ? { rollout: { mode: route.mode, candidate: String(route.candidate.version), weight: route.weight } }
              : {}),
          };
        }),
      });
    }
    // Sticky assignment in A/B tests and canaries: the caller's key (a user or session id), else the request id.
    const headerKey = request.headers['x-flywheel-key'];

    const match = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/infer|\/ready)?$/.exec(path);
    if (match) {
      const name = decodeURIComponent(match[1]!);
      context.model = name;
      if (method === 'GET' && !match[3]) {
        const { served } = await resolveModel(name, match[2], requestId);
        const { runner } = served;
        return send(response, 200, {
          name,
          versions: [String(served.version)],
          platform: runner.platform,
          inputs: runner.inputMetadata,
          outputs: [
            { name: runner.target.name, datatype: runner.target.task === 'regression' ? 'FP32' : 'BYTES', shape: [-1] },
          ],
        });
      }
      if (method === 'GET' && match[3] === '/ready') {
        await resolveModel(name, match[2], requestId);
        return send(response, 200, { name, ready: true });
      }
      if (method === 'POST' && match[3] === '/infer') {
        const body = (await readInferRequest(request)) as { id?: unknown; parameters?: { key?: unknown } };
        const id = typeof body?.id === 'string' ? body.id : requestId;
        const key =
          typeof body?.parameters?.key === 'string'
            ? body.parameters.key
            : typeof headerKey === 'string'
              ? headerKey
              : id;
        const choice = await resolveModel(name, match[2], key);
        if (id.length > MAX_REQUEST_ID) throw new HttpError(400, `id: at most ${MAX_REQUEST_ID} characters`);
        // A tensor input of either side of a rollout is understood, so a split between formats needs no client change.
        const route = models.route(name);
        const tensors = [choice.served, choice.shadow, route?.base, route?.candidate].flatMap((m) =>
          m?.runner.tensorInput ? [m.runner.tensorInput] : [],
        );
        const instances = instancesFromV2(body, tensors);
        const prediction = await runAndLog(choice, instances, id, context, (row, key) =>
          key === undefined ? `row ${row}` : `input "${key}", row ${row}`,
        );
        const output = choice.served.runner.target.name;
        const datatype = typeof prediction.values[0] === 'number' ? 'FP32' : 'BYTES';
        const head = { model_name: name, model_version: String(choice.served.version), id };
        const shape = [prediction.values.length];
        if (wantsBinaryOutput(body, output)) {
          const data = encodeOutput(prediction.values, datatype);
          const outputs = [{ name: output, shape, datatype, parameters: { binary_data_size: data.length } }];
          return sendWithBinary(response, { ...head, outputs }, data);
        }
        return send(response, 200, { ...head, outputs: [{ name: output, shape, datatype, data: prediction.values }] });
      }
    }
    if (method === 'POST' && path === '/predict') {
      const body = await readJson(request);
      const name = (body as { model?: unknown })?.model;
      const names = models.list().map((m) => m.name);
      const modelName = typeof name === 'string' ? name : names.length === 1 ? names[0]! : undefined;
      context.model = modelName;
      if (!modelName)
        throw new HttpError(400, `model: required when several models are served (${names.join(', ') || 'none'})`);
      const { version, key: bodyKey } = body as { version?: unknown; key?: unknown };
      const key = typeof bodyKey === 'string' ? bodyKey : typeof headerKey === 'string' ? headerKey : requestId;
      const choice = await resolveModel(modelName, version === undefined ? undefined : String(version), key);
      const instances = instancesFromPredict(body);
      const prediction = await runAndLog(
        choice,
        instances,
        requestId,
        context,
        (row, key) => `instances[${row}]${key === undefined ? '' : `.${key}`}`,
      );
      return send(response, 200, {
        model: modelName,
        version: choice.served.version,
        request_id: requestId,
        predictions: prediction.values,
        probabilities: prediction.probabilities,
      });
    }
    if (method === 'POST' && path === '/v2/features') {
      // Online lookup by entity: {"view": "name@version", "entities": [{"store_id": "S01", …}]}.
      const body = (await readJson(request)) as { view?: unknown; entities?: unknown };
      if (typeof body?.view !== 'string') throw new HttpError(400, 'view: expected "name@version"');
      if (!Array.isArray(body.entities) || body.entities.length === 0 || body.entities.length > MAX_INSTANCES)
        throw new HttpError(400, `entities: expected 1 to ${MAX_INSTANCES} objects of entity keys`);
      const view = await models.featureView(body.view);
      if (!view) throw new HttpError(404, `no feature view ${body.view}`);
      const features = await withOnlineFeatures(
        lookups,
        [view],
        new Set(view.entities),
        body.entities as Record<string, unknown>[],
      );
      return send(response, 200, { view: view.ref, features });
    }
    if (method === 'POST' && path === '/feedback') {
      // Ground truth by request id: {"labels": [{"request_id": "…", "label": 12}]} or one {"request_id", "label"}.
      const body = (await readJson(request)) as { labels?: unknown; request_id?: unknown; label?: unknown };
      const raw = Array.isArray(body?.labels) ? body.labels : body && 'request_id' in body ? [body] : undefined;
      if (!raw) throw new HttpError(400, 'labels: expected {"labels": [{"request_id": "…", "label": …}]}');
      if (raw.length > 10_000) throw new HttpError(413, `labels: at most 10,000 per request, got ${raw.length}`);
      const entries = raw.map((item, i) => {
        const { request_id: id, label } = (item ?? {}) as { request_id?: unknown; label?: unknown };
        if (typeof id !== 'string' || !id)
          throw new HttpError(422, `labels[${i}].request_id: expected a non-empty string`);
        if (typeof label === 'number' ? !Number.isFinite(label) : typeof label !== 'string' || label === '')
          throw new HttpError(422, `labels[${i}].label: expected a finite number or a class name`);
        return { requestId: id, label: String(label) };
      });
      const result = await predictionLog.recordLabels(entries);
      if (result.accepted === 0)
        throw new HttpError(
          404,
          `no logged prediction has request id ${result.unknown
            .slice(0, 5)
            .map((u) => `"${u}"`)
            .join(', ')}${result.unknown.length > 5 ? ` (and ${result.unknown.length - 5} more)` : ''}`,
        );
      return send(response, 200, { accepted: result.accepted, unknown: result.unknown });
    }
    throw new HttpError(404, `no route for ${method} ${path}`);
  }

  return (request: IncomingMessage, response: ServerResponse) => {
    const context: { model?: string; version?: number } = {};
    const started = performance.now();
    response.once('finish', () => observePrediction(request, response.statusCode, context, started));
    route(request, response, context).catch((error: unknown) => {
      // Refused and failed requests count towards the model's error rate in its monitor.
      const scored = request.method === 'POST' && context.model !== undefined;
      if (error instanceof HttpError) {
        if (scored && request.url !== '/feedback')
          predictionLog.addError(context.model, error.status, error.message, context.version);
        return send(response, error.status, { error: error.message });
      }
      if (error instanceof ApiError && error.status < 500)
        return send(response, error.status, { error: error.message });
      if (error instanceof LookupError) {
        if (scored) predictionLog.addError(context.model, error.status, error.message, context.version);
        return send(response, error.status, { error: error.message, field: error.field });
      }
      if (error instanceof FeatureError) {
        if (scored) predictionLog.addError(context.model, 422, error.message, context.version);
        return send(response, 422, { error: error.message, field: error.field });
      }
      if (error instanceof SignatureError) {
        // A registered model that does not fit its signature: the server's fault, said plainly.
        log.error(`serving: ${error.message}`);
        if (scored) predictionLog.addError(context.model, 500, error.message, context.version);
        return send(response, 500, { error: error.message, field: error.field });
      }
      if (error instanceof NonFiniteOutputError) {
        // The model's fault, not the caller's: an error in the monitor's rate, never a NaN logged as a prediction.
        log.error(`serving: ${error.message}`);
        if (scored) predictionLog.addError(context.model, 500, error.message, context.version);
        return send(response, 500, { error: error.message });
      }
      log.error({ err: error }, `serving error: ${(error as Error)?.message ?? String(error)}`);
      if (scored)
        predictionLog.addError(context.model, 500, (error as Error).message ?? String(error), context.version);
      send(response, 500, { error: 'internal error' });
    });
  };
}

function apiKeyOf(request: IncomingMessage): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string' && /^bearer /i.test(auth)) return auth.slice(7).trim();
  const key = request.headers['x-api-key'];
  return typeof key === 'string' ? key : undefined;
}
