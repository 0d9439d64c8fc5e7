/**
 * Registry webhooks on the real stack: the outbox written with each registry change (API, MLflow-style store calls,
 * workflows), the dispatcher that signs and sends it, bounded retries ending in a dead letter, and the admin API.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueGrant } from '../../store/grants';
import { startWebhookDispatcher, type WebhookDispatcher } from '../../workers/webhookDispatcher';
import type { AliasInput, AliasResult } from '../../workflows/release';
import { useApiSuite } from './apiSuite';
import { eventually, historyText, startHarness, unique, type Harness } from './harness';
import { startWebhookReceiver, TEST_WEBHOOK_SCHEDULE as SCHEDULE, type WebhookReceiver } from './webhookReceiver';

const api = useApiSuite('webhooks');
let harness: Harness;
let dispatcher: WebhookDispatcher;
let receiver: WebhookReceiver;
let receiverUrl: string;
let refusedUrl: string;
let received: WebhookReceiver['received'];

beforeAll(async () => {
  harness = await startHarness();
  receiver = await startWebhookReceiver();
  ({ url: receiverUrl, refusedUrl, received } = receiver);
  dispatcher = startWebhookDispatcher(harness.services.db, { ...SCHEDULE, log: () => undefined });
});

afterAll(async () => {
  await dispatcher?.stop();
  await harness?.stop();
  await receiver?.close();
});

const bodiesFor = (model: string) => received.filter((r) => r.body.includes(`"model":${JSON.stringify(model)}`));

async function addHook(input: { url: string; model: string; secret?: string; events?: string[] }) {
  const events = input.events ?? ['model_version.created', 'model_version_alias.moved', 'model_version_alias.deleted'];
  const answer = await api.call('POST', '/api/v1/webhooks', api.tokens.admin, {
    url: input.url,
    events,
    modelName: input.model,
    secret: input.secret,
  });
  expect(answer.status).toBe(201);
  return answer.body as {
    id: number;
    url: string;
    events: string[];
    modelName: string;
    hasSecret: boolean;
    createdAt: string;
  };
}

async function createVersion(model: string): Promise<number> {
  const answer = await api.call('POST', `/api/v1/models/${model}/versions`, api.tokens.write, {
    source: `s3://elsewhere/${model}`,
  });
  expect(answer.status).toBe(201);
  return answer.body.version as number;
}

async function deliveries(status: string, model: string) {
  const answer = await api.call('GET', '/api/v1/webhooks/deliveries', api.tokens.admin, { status, limit: 1000 });
  expect(answer.status).toBe(200);
  return (
    answer.body.deliveries as {
      id: string;
      webhookId: number;
      event: string;
      modelName: string;
      attempts: number;
      lastError: string | null;
      status: string;
    }[]
  ).filter((d) => d.modelName === model);
}

describe('registry webhooks', () => {
  it('a receiver gets signed, deduplicable events for a version created, an alias moved and an alias deleted over the API', async () => {
    const model = unique('hooked');
    const secret = randomBytes(16).toString('hex');
    const hook = await addHook({ url: `${receiverUrl}/ok/${model}`, model, secret });
    expect(hook).toMatchObject({ url: `${receiverUrl}/ok/${model}`, modelName: model, hasSecret: true });
    expect(JSON.stringify(hook)).not.toContain(secret);
    const listed = await api.call('GET', '/api/v1/webhooks', api.tokens.admin);
    expect(listed.body.webhooks).toContainEqual(expect.objectContaining({ id: hook.id, hasSecret: true }));
    expect(JSON.stringify(listed.body)).not.toContain(secret);

    const version = await createVersion(model);
    expect(
      (
        await api.call('PUT', `/api/v1/models/${model}/aliases/staging`, api.tokens.admin, {
          version,
          reason: 'webhook test',
        })
      ).status,
    ).toBe(200);
    expect(
      (await api.call('DELETE', `/api/v1/models/${model}/aliases/staging`, api.tokens.admin, { reason: 'done' }))
        .status,
    ).toBe(200);

    await eventually(async () => bodiesFor(model).length >= 3 || undefined, 30_000, 'three webhook deliveries');
    const events = bodiesFor(model).map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ event: 'model_version.created', model, version, source: `s3://elsewhere/${model}` }),
        expect.objectContaining({
          event: 'model_version_alias.moved',
          model,
          alias: 'staging',
          from_version: null,
          to_version: version,
          reason: 'webhook test',
        }),
        expect.objectContaining({
          event: 'model_version_alias.deleted',
          model,
          alias: 'staging',
          from_version: version,
          to_version: null,
        }),
      ]),
    );
    for (const r of bodiesFor(model)) {
      expect(r.headers['x-flywheel-signature']).toBe(
        `sha256=${createHmac('sha256', secret).update(r.body).digest('hex')}`,
      );
      expect(r.headers['x-flywheel-delivery']).toBe((JSON.parse(r.body) as { delivery_id: string }).delivery_id);
      expect(r.headers['x-flywheel-event']).toBe((JSON.parse(r.body) as { event: string }).event);
    }
    expect(new Set(events.map((e) => e.delivery_id)).size).toBe(3);

    const delivered = await eventually(
      async () => {
        const rows = await deliveries('delivered', model);
        return rows.length === 3 && rows;
      },
      10_000,
      'three delivered rows',
    );
    expect(delivered.every((d) => d.attempts === 1 && d.lastError === null && d.webhookId === hook.id)).toBe(true);

    expect((await api.call('DELETE', `/api/v1/webhooks/${hook.id}`, api.tokens.admin)).body).toEqual({
      id: hook.id,
      deleted: true,
    });
    expect((await api.call('DELETE', `/api/v1/webhooks/${hook.id}`, api.tokens.admin)).status).toBe(404);
    await createVersion(model);
    expect(await deliveries('pending', model)).toEqual([]);
  });

  it('a dead receiver does not hold up an alias move: the move answers with its deliveries pending, and they end dead after the bounded attempts', async () => {
    const model = unique('deadhook');
    await addHook({ url: refusedUrl, model, secret: 'never-in-an-error', events: ['model_version_alias.moved'] });
    await addHook({ url: `${receiverUrl}/fail/${model}`, model, events: ['model_version_alias.moved'] });
    const version = await createVersion(model);

    const move = await api.call('PUT', `/api/v1/models/${model}/aliases/champion`, api.tokens.admin, {
      version,
      reason: 'dead receiver test',
    });
    expect(move.status).toBe(200);
    expect(move.body).toMatchObject({ toVersion: version, moved: true });
    // Both receivers fail every attempt; three attempts take at least 900 ms of backoff, so none can be over yet.
    const pending = await deliveries('pending', model);
    expect(pending).toHaveLength(2);
    expect(pending.every((d) => d.attempts < SCHEDULE.maxAttempts)).toBe(true);

    const dead = await eventually(
      async () => {
        const rows = await deliveries('dead', model);
        return rows.length === 2 && rows;
      },
      30_000,
      'two dead letters',
    );
    expect(dead.map((d) => d.attempts)).toEqual([SCHEDULE.maxAttempts, SCHEDULE.maxAttempts]);
    expect(dead.map((d) => d.lastError)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^attempt 3: connect ECONNREFUSED /), 'attempt 3: HTTP 500']),
    );
    expect(JSON.stringify(dead)).not.toContain('never-in-an-error');
    // Bounded: the failing receiver was called exactly once per attempt.
    expect(received.filter((r) => r.path === `/fail/${model}`)).toHaveLength(SCHEDULE.maxAttempts);
    expect(await deliveries('pending', model)).toEqual([]);
  });

  it('an alias workflow carries no webhook data: its move is delivered from the outbox and its history holds no secret', async () => {
    const model = unique('flowhook');
    const secret = `whsec-${randomBytes(16).toString('hex')}`;
    await addHook({ url: `${receiverUrl}/ok/${model}`, model, secret });
    const version = await createVersion(model);
    const workflowId = unique('alias-webhook');
    const grant = issueGrant({
      actor: 'token:webhooks-test',
      scope: 'admin',
      model,
      action: 'alias',
      workflowId,
      alias: 'champion',
      version,
    });
    const input: AliasInput = {
      action: 'alias',
      modelName: model,
      alias: 'champion',
      version,
      grant,
      reason: 'outbox test',
    };
    const result = (await harness.services.client.workflow.execute('aliasWorkflow', {
      workflowId,
      taskQueue: harness.queues.main,
      args: [input],
    })) as AliasResult;
    expect(result).toMatchObject({ fromVersion: null, toVersion: version, actor: 'token:webhooks-test' });

    const moved = await eventually(
      async () =>
        bodiesFor(model)
          .map((r) => JSON.parse(r.body) as Record<string, unknown>)
          .find((e) => e.event === 'model_version_alias.moved'),
      30_000,
      'the alias move webhook',
    );
    expect(moved).toMatchObject({
      alias: 'champion',
      to_version: version,
      actor: 'token:webhooks-test',
      workflow_id: workflowId,
    });

    const text = await historyText(harness.services.client, workflowId);
    expect(text).toContain('outbox test');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(Buffer.from(secret).toString('base64'));
    expect(text).not.toMatch(/listWebhookTargets|deliverWebhook/);
  });

  it('only admins manage webhooks, and bad receivers or events are refused with the field named', async () => {
    const model = unique('refused');
    expect((await api.call('GET', '/api/v1/webhooks', api.tokens.write)).status).toBe(403);
    expect(
      (
        await api.call('POST', '/api/v1/webhooks', api.tokens.write, {
          url: `${receiverUrl}/ok`,
          events: ['model_version.created'],
          modelName: model,
        })
      ).status,
    ).toBe(403);
    const ftp = await api.call('POST', '/api/v1/webhooks', api.tokens.admin, {
      url: 'ftp://example.com/hook',
      events: ['model_version.created'],
      modelName: model,
    });
    expect(ftp.status).toBe(400);
    expect(JSON.stringify(ftp.body)).toMatch(/url.*http/);
    const event = await api.call('POST', '/api/v1/webhooks', api.tokens.admin, {
      url: `${receiverUrl}/ok`,
      events: ['model_version.deleted'],
      modelName: model,
    });
    expect(event.status).toBe(400);
    expect(JSON.stringify(event.body)).toContain('events');
    expect((await api.call('GET', '/api/v1/webhooks/deliveries', api.tokens.admin, { status: 'lost' })).status).toBe(
      400,
    );
  });
});
