import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkInstanceValues,
  createServingHandler,
  HttpError,
  limitServer,
  MAX_JSON_DEPTH,
  parseJsonBody,
  SERVER_LIMITS,
} from '../../serving/app';
import type { LayersModel } from '@tensorflow/tfjs';
import { TfjsRunner } from '../../inference/tfjs';
import type { ServedModels } from '../../serving/models';
import type { TfModule } from '../../training/backend';
import type { PredictionLog } from '../../serving/predictionLog';

/** A served regression model over `price` and `store_id` whose network answers 0, and a log that keeps what it gets. */
function fakeServing() {
  const tf = {
    tidy: <T>(work: () => T) => work(),
    tensor2d: (data: Float32Array, shape: number[]) => ({ data, shape }),
  } as unknown as TfModule;
  const network = { predict: (input: { shape: number[] }) => ({ dataSync: () => new Float32Array(input.shape[0]!) }) };
  const served = {
    name: 'demand',
    version: 1,
    runner: new TfjsRunner(tf, network as unknown as LayersModel, {
      numeric: [{ name: 'price', mean: 10, std: 2 }],
      categorical: [{ name: 'store_id', vocabulary: ['S1', 'S2'] }],
      target: { name: 'units', task: 'regression', mean: 5, std: 1 },
    }),
  };
  const models = {
    list: () => [served],
    route: () => undefined,
    refuseKey: () => undefined,
    ready: true,
    backend: 'fake',
    choose: (name: string) => (name === 'demand' ? { served } : undefined),
  } as unknown as ServedModels;
  const logged: unknown[] = [];
  const errors: number[] = [];
  const log = {
    add: (records: unknown[]) => logged.push(...records),
    addError: (_model: string, status: number) => errors.push(status),
    addShadow: () => undefined,
  } as unknown as PredictionLog;
  return { handler: createServingHandler(models, log), logged, errors };
}

let server: Server;
let url: string;
let serving: ReturnType<typeof fakeServing>;

beforeAll(async () => {
  serving = fakeServing();
  server = limitServer(createServer(serving.handler));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function post(body: string, contentType = 'application/json') {
  const response = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: response.status, error: ((await response.json()) as { error?: string }).error };
}

const predict = (instance: Record<string, unknown>) => JSON.stringify({ model: 'demand', instances: [instance] });

describe('serving request parsing', () => {
  it('answers and logs a good request', async () => {
    expect((await post(predict({ price: 9.5, store_id: 'S1' }))).status).toBe(200);
    expect(serving.logged).toHaveLength(1);
  });

  it('refuses a body that is not declared JSON with 415', async () => {
    expect(await post(predict({ price: 9.5, store_id: 'S1' }), 'text/plain')).toEqual({
      status: 415,
      error: 'content-type must be application/json, got "text/plain"',
    });
    expect((await post(predict({ price: 9.5, store_id: 'S1' }), 'application/json; charset=utf-8')).status).toBe(200);
  });

  it('refuses JSON nested 100,000 deep with 400, not 500', async () => {
    const deep = `${'['.repeat(100_000)}1${']'.repeat(100_000)}`;
    const answer = await post(`{"model": "demand", "instances": [{"price": ${deep}, "store_id": "S1"}]}`);
    expect(answer).toEqual({
      status: 400,
      error: `instances[0].price${'[0]'.repeat(MAX_JSON_DEPTH - 3)}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
    });
    expect(serving.errors).not.toContain(500);
  });

  it('refuses a boolean for a numeric feature, naming the field', async () => {
    expect(await post(predict({ price: true, store_id: 'S1' }))).toEqual({
      status: 400,
      error: 'instances[0].price: expected a number, got true',
    });
    expect(await post(predict({ price: [1], store_id: 'S1' }))).toEqual({
      status: 400,
      error: 'instances[0].price: expected a number or a string, got an array',
    });
  });

  it('refuses text that could not be logged (NUL, an unpaired surrogate) instead of answering unlogged', async () => {
    const before = serving.logged.length;
    expect(await post(predict({ price: 9.5, store_id: 'S1\u0000' }))).toEqual({
      status: 400,
      error: 'instances[0].store_id: text holds a NUL character or an unpaired UTF-16 surrogate',
    });
    expect(await post(predict({ price: 9.5, store_id: 'S\ud800' }))).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^instances\[0\]\.store_id: /),
    });
    expect(serving.logged).toHaveLength(before);
    // A paired surrogate (an emoji) is text like any other.
    expect((await post(predict({ price: 9.5, store_id: 'S😀' }))).status).toBe(200);
  });

  it('parses without the network: only typed HTTP errors, and limits for the server', () => {
    expect(() => parseJsonBody(undefined, Buffer.from('{}'))).toThrow(HttpError);
    expect(() => parseJsonBody('application/json', Buffer.from('{'))).toThrow(/^malformed JSON/);
    expect(parseJsonBody('application/problem+json', Buffer.from('{"a":[1]}'))).toEqual({ a: [1] });
    expect(() => checkInstanceValues(new Set(['price']), [null], (row) => `instances[${row}]`)).toThrow(
      'instances[0]: expected an object of feature values',
    );
    expect(server.headersTimeout).toBe(SERVER_LIMITS.headersTimeoutMs);
    expect(server.maxConnections).toBe(SERVER_LIMITS.maxConnections);
  });
});

describe("OIP v2 infer as tritonclient and KServe's clients send it", () => {
  const infer = (body: Buffer, headers: Record<string, string> = {}) =>
    fetch(`${url}/v2/models/demand/infer`, { method: 'POST', headers, body: new Uint8Array(body) });
  const json = {
    inputs: [
      { name: 'price', shape: [2], datatype: 'FP32', data: [9.5, 11] },
      { name: 'store_id', shape: [2], datatype: 'BYTES', data: ['S1', 'S2'] },
    ],
  };
  /** A JSON header, then each input's bytes: FP32 little-endian, BYTES as 4-byte lengths and the text. */
  function binaryRequest(header: object, parts: Buffer[]) {
    const text = Buffer.from(JSON.stringify(header));
    return {
      body: Buffer.concat([text, ...parts]),
      headers: { 'inference-header-content-length': String(text.length) },
    };
  }
  const prices = Buffer.alloc(8);
  prices.writeFloatLE(9.5, 0);
  prices.writeFloatLE(11, 4);
  const stores = Buffer.concat(['S1', 'S2'].map((s) => Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from(s)])));
  const binaryInputs = (priceBytes = prices.length) => [
    { name: 'price', shape: [2], datatype: 'FP32', parameters: { binary_data_size: priceBytes } },
    { name: 'store_id', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: stores.length } },
  ];

  it('takes JSON without a content type', async () => {
    // A Buffer: fetch adds no content type to it (a string would be text/plain).
    const answer = await infer(Buffer.from(JSON.stringify(json)));
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([5, 5]);
  });

  it('takes binary inputs and answers with binary outputs when asked', async () => {
    const request = binaryRequest({ inputs: binaryInputs(), parameters: { binary_data_output: true } }, [
      prices,
      stores,
    ]);
    const logged = serving.logged.length;
    const answer = await infer(request.body, { ...request.headers, 'content-type': 'application/octet-stream' });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/octet-stream');
    const bytes = Buffer.from(await answer.arrayBuffer());
    const headerBytes = Number(answer.headers.get('inference-header-content-length'));
    const header = JSON.parse(bytes.subarray(0, headerBytes).toString()) as {
      outputs: { name: string; datatype: string; shape: number[]; parameters: { binary_data_size: number } }[];
    };
    expect(header.outputs).toEqual([
      { name: 'units', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
    ]);
    const data = bytes.subarray(headerBytes);
    expect([data.readFloatLE(0), data.readFloatLE(4)]).toEqual([5, 5]);
    // The prediction log has the decoded values, as for a JSON request.
    expect(serving.logged.slice(logged)).toHaveLength(2);
    expect(JSON.stringify(serving.logged.slice(logged))).toContain('9.5');

    // Binary inputs, JSON outputs (the output asks for it).
    const mixed = binaryRequest(
      { inputs: binaryInputs(), outputs: [{ name: 'units', parameters: { binary_data: false } }] },
      [prices, stores],
    );
    const answered = await infer(mixed.body, mixed.headers);
    expect(((await answered.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([5, 5]);
  });

  it('refuses sizes that do not add up, a short BYTES element and a missing header size, naming the input', async () => {
    const cases: [Buffer, Record<string, string>, number, string][] = [];
    const short = binaryRequest({ inputs: binaryInputs(6) }, [prices, stores]);
    cases.push([short.body, short.headers, 400, 'inputs[0] (price): 6 bytes is not a whole number of FP32 elements']);
    const extra = binaryRequest({ inputs: binaryInputs() }, [prices, stores, Buffer.from([1])]);
    cases.push([extra.body, extra.headers, 400, "1 bytes after the inputs' binary_data_size add up"]);
    const cut = binaryRequest({ inputs: binaryInputs() }, [prices, stores.subarray(0, 7)]);
    cases.push([cut.body, cut.headers, 400, 'inputs[1] (store_id): binary_data_size 12 runs past the body']);
    const plain = Buffer.from(JSON.stringify(json));
    cases.push([plain, { 'inference-header-content-length': '99999' }, 400, 'expected the JSON header']);
    cases.push([prices, { 'content-type': 'application/octet-stream' }, 400, 'needs inference-header-content-length']);
    const nan = Buffer.from(prices);
    nan.writeFloatLE(Number.NaN, 4);
    const notFinite = binaryRequest({ inputs: binaryInputs() }, [nan, stores]);
    cases.push([notFinite.body, notFinite.headers, 400, 'inputs[0] (price): element 1 is NaN, not a finite number']);
    const nul = Buffer.concat(['S1', 'S\u0000'].map((s) => Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from(s)])));
    const unstorable = binaryRequest({ inputs: binaryInputs() }, [prices, nul]);
    cases.push([unstorable.body, unstorable.headers, 400, 'inputs[1].data[1]: text holds a NUL character']);
    cases.push([plain, { 'content-type': 'text/plain' }, 415, 'content-type must be application/json']);
    for (const [body, headers, status, message] of cases) {
      const answer = await infer(body, headers);
      expect({ status: answer.status, error: ((await answer.json()) as { error: string }).error }).toMatchObject({
        status,
        error: expect.stringContaining(message),
      });
    }
    expect(serving.errors).not.toContain(500);
  });
});
