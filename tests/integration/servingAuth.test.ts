/**
 * Serving that requires keys, on the real stack: liveness and readiness stay open and name no model; every route that
 * names, answers with or writes for a model needs an active infer (or admin) token, and what an unkeyed caller sends
 * is neither answered nor logged (so it cannot move a monitor's numbers).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createServingHandler } from '../../serving/app';
import { ServedModels } from '../../serving/models';
import { PredictionLog } from '../../serving/predictionLog';
import { predictions, requestErrors } from '../../schema/deployments';
import { apiTokens } from '../../schema/models';
import { hashToken } from '../../store/tokens';
import type { PipelineInput, PipelineResult } from '../../workflows/pipeline';
import { demandPipeline, startHarness, unique, type Harness } from './harness';

let harness: Harness;
let keyed: ServedModels;
let log: PredictionLog;
let server: Server;
let url: string;
const suite = unique('serving-auth');
const tokens = { infer: `fw_infer_${suite}`, read: `fw_read_${suite}`, revoked: `fw_infer_${suite}-revoked` };

beforeAll(async () => {
  harness = await startHarness();
  await harness.services.db.insert(apiTokens).values([
    { name: `${suite}-infer`, scope: 'infer', hash: hashToken(tokens.infer) },
    { name: `${suite}-read`, scope: 'read', hash: hashToken(tokens.read) },
    { name: `${suite}-revoked`, scope: 'infer', hash: hashToken(tokens.revoked), revokedAt: new Date() },
  ]);
  keyed = new ServedModels(harness.services.db, harness.services.store, { requireApiKey: true });
  await keyed.start(250);
  log = new PredictionLog(harness.services.db, 500, 50);
  server = createServer(createServingHandler(keyed, log));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  keyed?.stop();
  if (server) await new Promise((resolve) => server.close(resolve));
  await log?.close();
  await harness?.services.db.delete(apiTokens).where(like(apiTokens.name, `${suite}-%`));
  await harness?.stop();
});

const call = async (method: string, path: string, key?: string, body?: unknown) => {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, text: await response.text() };
};

it('answers probes without a key, and reveals, predicts and takes feedback only for an active infer token', async () => {
  // Deployed through the keyed serving process: it tells no keyless caller what it serves, but it reports what it
  // loaded as a serving replica in Postgres, which the deploy stage reads (`unverified`: one that does not report).
  const config = await demandPipeline(harness.workDir, { config: { monitor: { enabled: false } } });
  const input: PipelineInput = {
    config,
    trigger: { kind: 'test' },
    servingUrl: url,
    queues: { trainCpu: harness.queues.trainCpu, trainGpu: harness.queues.trainGpu },
  };
  const outcome = (await harness.services.client.workflow.execute('pipelineWorkflow', {
    workflowId: unique(config.name),
    taskQueue: harness.queues.main,
    args: [input],
  })) as PipelineResult;
  expect(outcome.deployment?.serving).toBe('confirmed');
  const model = config.model;
  const { db } = harness.services;
  await keyed.refresh();
  const instance = { price: 5, promo: 0, is_holiday: 0, store_id: 'S01', item_id: 'I001', day_of_week: 2 };

  // Probes: open, and they name nothing.
  for (const path of ['/v2/health/live', '/health', '/v2/health/ready']) {
    const probe = await call('GET', path);
    expect(probe.status, path).toBe(200);
    expect(probe.text).not.toContain(model);
  }

  // Everything that names a model, with no key, a revoked one, or a token of another scope: 401, naming no model.
  const revealing = [
    ['GET', '/v2'],
    ['GET', '/v2/models'],
    ['GET', `/v2/models/${model}`],
    ['GET', `/v2/models/${model}/ready`],
    ['GET', `/v2/models/${model}/versions/1`],
    ['GET', '/v2/models/no-such-model'],
    ['GET', '/no-such-route'],
  ] as const;
  for (const key of [undefined, tokens.revoked, tokens.read, 'fw_infer_made_up']) {
    for (const [method, path] of revealing) {
      const refused = await call(method, path, key);
      expect(refused.status, `${method} ${path} with ${key ?? 'no key'}`).toBe(401);
      expect(refused.text).not.toContain(model);
    }
    expect((await call('POST', '/predict', key, { model, instances: [instance] })).status).toBe(401);
    expect(
      (
        await call('POST', `/v2/models/${model}/infer`, key, {
          inputs: [{ name: 'price', shape: [1], datatype: 'FP32', data: [5] }],
        })
      ).status,
    ).toBe(401);
    expect((await call('POST', '/feedback', key, { request_id: 'x', label: 1 })).status).toBe(401);
  }
  // Nothing an unkeyed caller sent was logged: no prediction, no refused request in the monitor's error rate.
  await log.flush();
  expect(await db.select().from(predictions).where(eq(predictions.modelName, model))).toHaveLength(0);
  expect(await db.select().from(requestErrors).where(eq(requestErrors.modelName, model))).toHaveLength(0);

  // With an infer token: the model list, its metadata, a prediction (logged) and its label.
  const listed = await call('GET', '/v2/models', tokens.infer);
  expect(listed.status).toBe(200);
  expect(JSON.parse(listed.text).models).toContainEqual(expect.objectContaining({ name: model, version: '1' }));
  expect((await call('GET', `/v2/models/${model}`, tokens.infer)).status).toBe(200);
  expect((await call('GET', `/v2/models/${model}/ready`, tokens.infer)).status).toBe(200);
  const answered = await call('POST', '/predict', tokens.infer, { model, instances: [instance] });
  expect(answered.status).toBe(200);
  const requestId = JSON.parse(answered.text).request_id as string;
  const labelled = await call('POST', '/feedback', tokens.infer, { request_id: requestId, label: 4 });
  expect(JSON.parse(labelled.text)).toEqual({ accepted: 1, unknown: [] });
  expect(await db.select().from(predictions).where(eq(predictions.modelName, model))).toHaveLength(1);
});
