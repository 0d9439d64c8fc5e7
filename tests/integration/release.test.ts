/**
 * Releases on the real stack: gates against the champion, canary rollback and promotion, A/B splits, shadows,
 * approvals, rollbacks, tokens, API keys and webhooks — through the serving process the workflows steer.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServingHandler } from '../../serving/app';
import { ServedModels } from '../../serving/models';
import { PredictionLog } from '../../serving/predictionLog';
import { shadowPredictions, trafficRoutes } from '../../schema/deployments';
import { aliasEvents, apiTokens, modelAliases, modelVersions, registryWebhooks } from '../../schema/models';
import { issueGrant } from '../../store/grants';
import { hashToken } from '../../store/tokens';
import { startWebhookDispatcher, type WebhookDispatcher } from '../../workers/webhookDispatcher';
import type { RolloutInput, RolloutResult } from '../../workflows/release';
import { startCliServer, type CliServer } from './cliServer';
import { cli, demandPipeline, eventually, failureOf, startHarness, unique, type Harness } from './harness';
import { TEST_WEBHOOK_SCHEDULE } from './webhookReceiver';

let harness: Harness;
/** The server the CLI talks to, starting workflows on this suite's queues. */
let cliServer: CliServer;
const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
let hookServer: Server;
let hookUrl: string;
/** The registry queues webhooks with each change; this sends them (the main worker process runs one). */
let webhooks: WebhookDispatcher;
const adminToken = `fw_admin_test_${unique('t')}`;
const inferToken = `fw_infer_test_${unique('t')}`;

beforeAll(async () => {
  harness = await startHarness();
  hookServer = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
  webhooks = startWebhookDispatcher(harness.services.db, TEST_WEBHOOK_SCHEDULE);
  cliServer = await startCliServer(harness);
  // Tokens are stored hashed; the suite's own (the CLI's `tokens create` needs an admin token once one exists).
  await harness.services.db.insert(apiTokens).values([
    { name: 'release-test', scope: 'admin', hash: hashToken(adminToken) },
    { name: 'release-test-client', scope: 'infer', hash: hashToken(inferToken) },
  ]);
});

afterAll(async () => {
  await webhooks?.stop();
  await cliServer?.close();
  await harness?.stop();
  await new Promise((resolve) => hookServer?.close(resolve));
});

const request = (i: number) => ({
  price: 5 + (i % 13),
  promo: i % 2,
  is_holiday: i % 7 === 0 ? 1 : 0,
  store_id: `S0${(i % 3) + 1}`,
  item_id: `I00${(i % 5) + 1}`,
  day_of_week: i % 7,
});

async function predict(
  model: string,
  i: number,
  key?: string,
  url = harness.servingUrl,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'x-flywheel-key': key } : {}), ...headers },
    body: JSON.stringify({ model, instances: [request(i)] }),
  });
  return {
    status: response.status,
    body: (await response.json()) as { version?: number; predictions?: number[]; request_id?: string; error?: string },
  };
}

/** Steady traffic until `done` settles: the canary's health gates need requests to judge. */
async function trafficUntil<T>(
  model: string,
  done: Promise<T>,
  perSecond = 60,
): Promise<{ outcome: PromiseSettledResult<T>; statuses: Map<string, number> }> {
  let finished = false;
  const settled = done
    .then(
      (value) => ({ status: 'fulfilled', value }) as const,
      (reason: unknown) => ({ status: 'rejected', reason }) as const,
    )
    .finally(() => {
      finished = true;
    });
  const statuses = new Map<string, number>();
  for (let i = 0; !finished; i++) {
    const { status, body } = await predict(model, i);
    const key = `${status} v${body.version ?? '-'}`;
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, 1000 / perSecond));
  }
  return { outcome: await settled, statuses };
}

async function champion(model: string): Promise<number | undefined> {
  const [row] = await harness.services.db
    .select()
    .from(modelAliases)
    .where(and(eq(modelAliases.modelName, model), eq(modelAliases.alias, 'champion')));
  return row?.version;
}

/** A rollout started with a grant, as the CLI starts one after checking an admin token. */
function startRollout(input: Omit<RolloutInput, 'grant'>) {
  const workflowId = unique(`rollout-${input.strategy.kind}`);
  const grant = issueGrant({
    actor: 'token:release-test',
    scope: 'admin',
    model: input.modelName,
    action: 'rollout',
    workflowId,
    alias: input.alias,
    version: input.candidateVersion,
  });
  return harness.services.client.workflow.start('rolloutWorkflow', {
    workflowId,
    taskQueue: harness.queues.main,
    args: [{ ...input, grant }],
  });
}

describe('release', () => {
  it('a candidate that fails a gate against the champion stays registered and is not promoted; the report has slices, fairness and plots', async () => {
    const v1 = await demandPipeline(harness.workDir, {
      config: {
        evaluation: {
          gates: [{ metric: 'r2', min: 0.3 }],
          slices: ['store_id'],
          fairness: { sensitive: 'store_id', positiveAbove: 20 },
        },
      },
    });
    await harness.services.db.insert(registryWebhooks).values({
      url: hookUrl,
      events: ['model_version.created', 'model_version_alias.moved'],
      modelName: v1.model,
      secret: 's3cret',
    });
    const first = await (await harness.runPipeline(v1)).result;
    expect(first.model).toEqual({ name: v1.model, version: 1 });

    // v2 must beat the champion's rmse by 50 % on the same holdout rows: it cannot.
    const v2 = {
      ...v1,
      training: { ...v1.training, seed: 11 },
      evaluation: { ...v1.evaluation, gates: [{ metric: 'rmse', minRelativeChange: 0.5 }] },
    };
    const message = await failureOf((await harness.runPipeline(v2)).result);
    expect(message).toMatch(
      /\[GateFailedError\] evaluation gate failed: rmse = [\d.]+ vs [\d.]+ for champion v1: improves by -?[\d.]+ %, needs at least 50 % \(lower is better\)\. .+ v2 is registered but not promoted/,
    );
    expect(await champion(v1.model)).toBe(1);
    const [registered] = await harness.services.db
      .select()
      .from(modelVersions)
      .where(and(eq(modelVersions.modelName, v1.model), eq(modelVersions.version, 2)));
    expect(registered!.tags).toEqual({ gate: 'failed' });
    expect(registered!.evaluation!.baseline!.version).toBe(1);
    expect(registered!.evaluation!.gate.checks[0]).toMatchObject({ metric: 'rmse', passed: false });

    // The first version's report: metrics (incl. MAPE), a slice per store, fairness across stores, the residuals plot.
    const [v1row] = await harness.services.db
      .select()
      .from(modelVersions)
      .where(and(eq(modelVersions.modelName, v1.model), eq(modelVersions.version, 1)));
    const report = await harness.services.store.getJson<{
      metrics: Record<string, number>;
      slices: { column: string; values: { value: string }[] }[];
      fairness: { groups: unknown[]; demographic_parity_difference: number };
    }>(v1row!.evaluation!.reportKey);
    expect(Object.keys(report.metrics)).toEqual(
      expect.arrayContaining(['rmse', 'mae', 'r2', 'mape', 'wape', 'demographic_parity_difference']),
    );
    // MAPE over the raw labels: zero-unit days are skipped, not divided by a round-off 1e-15.
    expect(report.metrics.mape).toBeLessThan(2);
    expect(report.slices[0]!.values.map((s) => s.value).sort()).toEqual(['S01', 'S02', 'S03']);
    expect(report.fairness.groups).toHaveLength(3);
    const svg = (await harness.services.store.getBuffer(v1row!.evaluation!.plots.residuals!)).toString();
    expect(svg).toMatch(/^<svg[\s\S]*<\/svg>$/);

    // Webhooks: v1 created, v1 took @champion, v2 created (gate failed); signed with the secret.
    await eventually(
      async () => received.filter((r) => r.body.includes(v1.model)).length >= 3 || undefined,
      20_000,
      'three webhooks',
    );
    const events = received
      .filter((r) => r.body.includes(v1.model))
      .map((r) => JSON.parse(r.body) as { event: string; version?: number; to_version?: number; gate?: string });
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ event: 'model_version.created', version: 1, gate: 'passed' }),
        expect.objectContaining({ event: 'model_version_alias.moved', to_version: 1 }),
        expect.objectContaining({ event: 'model_version.created', version: 2, gate: 'failed' }),
      ]),
    );
    for (const r of received)
      expect(r.headers['x-flywheel-signature']).toBe(
        `sha256=${createHmac('sha256', 's3cret').update(r.body).digest('hex')}`,
      );
  });

  it('a canary whose error rate is high rolls back by itself; a healthy one is promoted step by step', async () => {
    const v1 = await demandPipeline(harness.workDir);
    await (
      await harness.runPipeline(v1)
    ).result;
    // v2 needs a feature ("month") the clients do not send yet: every request routed to it is refused.
    const canary = {
      steps: [20, 50, 100],
      stepDuration: '2s',
      health: { maxErrorRate: 0.05, minRequests: 10, maxPredictionPsi: 5 },
    };
    const broken = {
      ...v1,
      training: {
        ...v1.training,
        features: { ...v1.training.features, numeric: [...v1.training.features.numeric, 'month'] },
      },
      deploy: { ...v1.deploy, strategy: { kind: 'canary', ...canary } },
    };
    const rolledBack = await trafficUntil(
      v1.model,
      (await harness.runPipeline(broken as typeof v1, undefined, { release: true })).result,
    );
    expect(rolledBack.outcome.status).toBe('rejected');
    const message = await failureOf(Promise.reject((rolledBack.outcome as PromiseRejectedResult).reason));
    expect(message).toMatch(
      /canary of .+ v2 rolled back: health gate failed at 20 %: error rate 100\.0 % \(\d+ of \d+\) is above 5\.0 %; @champion stays at v1/,
    );
    expect(rolledBack.statuses.get('422 v-')).toBeGreaterThanOrEqual(10);
    expect(await champion(v1.model)).toBe(1);
    expect(
      await harness.services.db.select().from(trafficRoutes).where(eq(trafficRoutes.modelName, v1.model)),
    ).toHaveLength(0);
    // After the rollback every request is answered by v1 again.
    for (let i = 0; i < 20; i++) expect((await predict(v1.model, i)).body.version).toBe(1);

    const healthy = {
      ...v1,
      training: { ...v1.training, seed: 5 },
      deploy: { ...v1.deploy, strategy: { kind: 'canary', ...canary } },
    };
    const promoted = await trafficUntil(
      v1.model,
      (await harness.runPipeline(healthy as typeof v1, undefined, { release: true })).result,
    );
    expect(promoted.outcome.status).toBe('fulfilled');
    const result = (
      promoted.outcome as PromiseFulfilledResult<Awaited<Awaited<ReturnType<Harness['runPipeline']>>['result']>>
    ).value;
    expect(result.rollout!.outcome).toBe('promoted');
    expect(result.rollout!.steps.map((s) => s.percent)).toEqual([20, 50, 100]);
    expect(result.rollout!.steps.every((s) => s.health!.passed && s.health!.candidate.requests > 0)).toBe(true);
    expect(await champion(v1.model)).toBe(3);
    // Both versions answered during the rollout, and no request failed across the route changes and the alias swap.
    expect(promoted.statuses.get('200 v1')).toBeGreaterThan(0);
    expect(promoted.statuses.get('200 v3')).toBeGreaterThan(0);
    expect([...promoted.statuses.keys()].filter((k) => !k.startsWith('200 '))).toEqual([]);
  });

  it('an A/B split holds its ratio within ±2 % over 10,000 keys, sticks to each key, and compares the variants on labels; a shadow never answers', async () => {
    const v1 = await demandPipeline(harness.workDir);
    await (
      await harness.runPipeline(v1)
    ).result;
    const candidate = await (
      await harness.runPipeline({
        ...v1,
        training: { ...v1.training, seed: 3 },
        deploy: { ...v1.deploy, enabled: false },
      })
    ).result;
    expect(candidate.model!.version).toBe(2);

    const ab = await startRollout({
      modelName: v1.model,
      alias: 'champion',
      candidateVersion: 2,
      strategy: { kind: 'ab', split: 0.3, duration: '10m' },
      reason: 'A/B test',
    });
    await eventually(
      async () =>
        (
          (await fetch(`${harness.servingUrl}/v2/models`).then((r) => r.json())) as {
            models: { name: string; rollout?: unknown }[];
          }
        ).models.find((m) => m.name === v1.model)?.rollout,
      20_000,
      'the A/B route in serving',
    );
    const assigned = new Map<string, number>();
    const labels: { request_id: string; label: number }[] = [];
    const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
    for (let start = 0; start < keys.length; start += 50) {
      await Promise.all(
        keys.slice(start, start + 50).map(async (key, j) => {
          const { status, body } = await predict(v1.model, start + j, key);
          expect(status).toBe(200);
          assigned.set(key, body.version!);
          if ((start + j) % 10 === 0) labels.push({ request_id: body.request_id!, label: 10 + ((start + j) % 17) });
        }),
      );
    }
    const share = [...assigned.values()].filter((v) => v === 2).length / assigned.size;
    expect(Math.abs(share - 0.3)).toBeLessThanOrEqual(0.02);
    // Sticky: the same keys come back to the same variant.
    for (const key of keys.slice(0, 300))
      expect((await predict(v1.model, 1, key)).body.version).toBe(assigned.get(key));
    const feedback = await fetch(`${harness.servingUrl}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ labels }),
    });
    expect(feedback.status).toBe(200);
    await ab.signal('stopRollout', { reason: 'enough data' });
    const compared = (await ab.result()) as RolloutResult;
    expect(compared.outcome).toBe('stopped');
    const [champ, cand] = compared.variants!;
    expect(champ!.version).toBe(1);
    expect(cand!.version).toBe(2);
    expect(champ!.requests + cand!.requests).toBeGreaterThanOrEqual(10_300);
    expect(champ!.labels + cand!.labels).toBe(1000);
    expect(cand!.metric!.name).toBe('rmse');

    // Shadow: clients get v1's answers only; v2's are logged next to them.
    const shadow = await startRollout({
      modelName: v1.model,
      alias: 'champion',
      candidateVersion: 2,
      strategy: { kind: 'shadow', duration: '10m' },
      reason: 'shadow test',
    });
    await eventually(
      async () =>
        (
          (await fetch(`${harness.servingUrl}/v2/models`).then((r) => r.json())) as {
            models: { name: string; rollout?: { mode: string } }[];
          }
        ).models.find((m) => m.name === v1.model)?.rollout?.mode === 'shadow',
      20_000,
      'the shadow route',
    );
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      const served = await predict(v1.model, i, `user-${i}`);
      const direct = (await fetch(`${harness.servingUrl}/v2/models/${v1.model}/versions/1/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          inputs: Object.entries(request(i)).map(([name, value]) => ({
            name,
            shape: [1],
            datatype: typeof value === 'number' ? 'FP32' : 'BYTES',
            data: [value],
          })),
        }),
      }).then((r) => r.json())) as { outputs: { data: number[] }[] };
      expect(served.body.version).toBe(1);
      expect(served.body.predictions![0]).toBeCloseTo(direct.outputs[0]!.data[0]!, 6);
      ids.push(served.body.request_id!);
    }
    const mirrored = await eventually(
      async () => {
        const rows = await harness.services.db
          .select()
          .from(shadowPredictions)
          .where(eq(shadowPredictions.modelName, v1.model));
        return rows.length >= 200 && rows;
      },
      20_000,
      'shadow predictions',
    );
    expect(new Set(mirrored.map((r) => r.requestId))).toEqual(new Set(ids));
    expect(mirrored.every((r) => r.shadowVersion === 2 && r.baseVersion === 1 && r.shadowPrediction !== null)).toBe(
      true,
    );
    await shadow.signal('stopRollout', { reason: 'seen enough' });
    const report = (await shadow.result()) as RolloutResult;
    expect(report.shadow!.requests).toBe(200);
    expect(report.shadow!.meanAbsDifference).toBeGreaterThan(0);
    expect(await champion(v1.model)).toBe(1);
  });

  it('waits durably for an approval, refuses moves without an admin token, rolls back, and serves with API keys', async () => {
    const v1 = await demandPipeline(harness.workDir);
    await (
      await harness.runPipeline(v1)
    ).result;
    const v2 = {
      ...v1,
      training: { ...v1.training, seed: 9 },
      deploy: { ...v1.deploy, approval: { required: true, timeout: '10m', onTimeout: 'reject' as const } },
    };
    const { result } = await harness.runPipeline(v2);
    await eventually(
      async () =>
        (await cli(harness, ['models', 'show', `${v1.model}@2`], cliServer.env())).stdout.includes(
          'approval: pending',
        ) || undefined,
      60_000,
      'a pending approval',
    );

    const refused = await cli(harness, ['approve', `${v1.model}@2`], cliServer.env());
    expect(refused.code).not.toBe(0);
    expect(refused.stderr + refused.stdout).toMatch(/approving .+ v2 needs an admin token/);
    const wrongVersion = await cli(harness, ['approve', `${v1.model}@1`, '--token', adminToken], cliServer.env());
    expect(wrongVersion.stderr + wrongVersion.stdout).toMatch(/no release of .+ v1 is waiting for an approval/);
    const approved = await cli(
      harness,
      ['approve', `${v1.model}@2`, '--token', adminToken, '--comment', 'looks good'],
      cliServer.env(),
    );
    expect(approved.stdout).toMatch(/v2 approved by token:release-test/);
    const outcome = await result;
    expect(outcome.stages.find((s) => s.name === 'approve')!.summary).toBe(
      'approved by token:release-test: looks good',
    );
    expect(await champion(v1.model)).toBe(2);

    // Rollback: refused without a token, then back to v1 with one; serving answers with v1 at once.
    const noToken = await cli(harness, ['models', 'rollback', v1.model], cliServer.env());
    expect(noToken.code).not.toBe(0);
    expect(noToken.stderr + noToken.stdout).toMatch(/rolling back .+@champion needs an admin token/);
    expect(await champion(v1.model)).toBe(2);
    const rolledBack = await cli(
      harness,
      ['models', 'rollback', v1.model, '--token', adminToken, '--reason', 'bad release'],
      cliServer.env(),
    );
    expect(rolledBack.stdout).toMatch(
      /v2 → v1 \(rolled back by token:release-test\); serving answers with it after \d+ ms/,
    );
    expect((await predict(v1.model, 1)).body.version).toBe(1);
    const [move] = await harness.services.db
      .select()
      .from(aliasEvents)
      .where(and(eq(aliasEvents.modelName, v1.model), eq(aliasEvents.reason, 'bad release')));
    expect(move).toMatchObject({ alias: 'champion', fromVersion: 2, toVersion: 1, actor: 'token:release-test' });
    const listed = await cli(harness, ['models', 'show', v1.model], cliServer.env());
    expect(listed.stdout).toMatch(/@champion\s+v2 → v1\s+by token:release-test: bad release/);

    // A serving process that requires API keys: 401 without, 200 with an infer token.
    const keyed = new ServedModels(harness.services.db, harness.services.store, { requireApiKey: true });
    await keyed.start(250);
    const log = new PredictionLog(harness.services.db);
    const server = createServer(createServingHandler(keyed, log));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect((await predict(v1.model, 1, undefined, url)).status).toBe(401);
      expect((await predict(v1.model, 1, undefined, url, { authorization: 'Bearer nope' })).body.error).toBe(
        'the API key is unknown or revoked',
      );
      expect((await predict(v1.model, 1, undefined, url, { authorization: `Bearer ${inferToken}` })).status).toBe(200);
      expect((await predict(v1.model, 1, undefined, url, { 'x-api-key': inferToken })).status).toBe(200);
    } finally {
      keyed.stop();
      await new Promise((resolve) => server.close(resolve));
      await log.close();
    }
    // Clean: the suite's tokens leave no admin token behind for the other suites' bootstrap.
    await harness.services.db.delete(apiTokens).where(like(apiTokens.name, 'release-test%'));
  });

  it('a classifier gets ROC / PR-AUC, log loss, calibration and a confusion matrix; a fairness threshold stops its release', async () => {
    const base = await demandPipeline(harness.workDir);
    const config = {
      ...base,
      // Promotions are discounts that lift sales: learnable from price and units per item.
      training: {
        ...base.training,
        task: 'classification' as const,
        target: 'promo',
        features: { numeric: ['price', 'units_sold'], categorical: ['item_id'] },
        epochs: 40,
        learningRate: 0.02,
      },
      evaluation: {
        gates: [{ metric: 'roc_auc', threshold: 0.5 }],
        slices: ['item_id'],
        fairness: { sensitive: 'store_id', maxDemographicParityDifference: 0 },
      },
    };
    const message = await failureOf((await harness.runPipeline(config)).result);
    expect(message).toMatch(
      /evaluation gate failed: demographic_parity_difference = [\d.]+ \(selection rate [\d.]+ for "S0\d" vs [\d.]+ for "S0\d"\) is above the maximum 0\. .+ v1 is registered but not promoted/,
    );
    const [version] = await harness.services.db
      .select()
      .from(modelVersions)
      .where(eq(modelVersions.modelName, config.model));
    expect(Object.keys(version!.metrics)).toEqual(
      expect.arrayContaining([
        'accuracy',
        'precision',
        'recall',
        'f1',
        'roc_auc',
        'pr_auc',
        'log_loss',
        'ece',
        'brier',
      ]),
    );
    expect(version!.metrics.roc_auc).toBeGreaterThan(0.5);
    expect(Object.keys(version!.evaluation!.plots).sort()).toEqual([
      'calibration',
      'confusion_matrix',
      'precision_recall',
      'roc',
    ]);
    const report = await harness.services.store.getJson<{
      confusion: { labels: string[]; matrix: number[][] };
      holdoutRows: number;
    }>(version!.evaluation!.reportKey);
    expect(report.confusion.labels).toEqual(['0', '1']);
    expect(report.confusion.matrix.flat().reduce((a, b) => a + b, 0)).toBe(report.holdoutRows);
  });

  it('refuses bad requests with a 4xx that names the field, and stays up', async () => {
    const v1 = await demandPipeline(harness.workDir, { config: { monitor: { enabled: false } } });
    await (
      await harness.runPipeline(v1)
    ).result;
    const post = async (path: string, body: string) => {
      const response = await fetch(`${harness.servingUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      return { status: response.status, error: ((await response.json()) as { error: string }).error };
    };
    const one = (instance: Record<string, unknown>) => JSON.stringify({ model: v1.model, instances: [instance] });
    expect(await post('/predict', '{"model": ')).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^malformed JSON/),
    });
    expect(await post('/predict', JSON.stringify({ model: v1.model, instances: {} }))).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^instances: expected a non-empty array/),
    });
    const { price: _price, ...noPrice } = request(1);
    expect(await post('/predict', one(noPrice))).toEqual({ status: 422, error: 'instances[0].price: missing feature' });
    expect(await post('/predict', one({ ...request(1), colour: 'red' }))).toMatchObject({
      status: 422,
      error: expect.stringMatching(/^instances\[0\]\.colour: unknown feature/),
    });
    expect(await post('/predict', one({ ...request(1), price: 'cheap' }))).toEqual({
      status: 422,
      error: 'instances[0].price: expected a finite number, got "cheap"',
    });
    expect(await post('/predict', one({ ...request(1), price: 'Infinity' }))).toEqual({
      status: 422,
      error: 'instances[0].price: expected a finite number, got "Infinity"',
    });
    expect(
      await post(
        '/predict',
        `{"model": "${v1.model}", "instances": [{"price": 1e400, "promo": 0, "is_holiday": 0, "store_id": "S01", "item_id": "I001", "day_of_week": 1}]}`,
      ),
    ).toEqual({ status: 422, error: 'instances[0].price: expected a finite number, got null' });
    // A wrong JSON type is a malformed request (400); a right type with an unusable value is 422.
    expect(await post('/predict', one({ ...request(1), store_id: { id: 1 } }))).toEqual({
      status: 400,
      error: 'instances[0].store_id: expected a number or a string, got an object',
    });
    expect(await post('/predict', one({ ...request(1), price: true }))).toEqual({
      status: 400,
      error: 'instances[0].price: expected a number, got true',
    });
    expect(
      await post(
        `/v2/models/${v1.model}/infer`,
        JSON.stringify({
          inputs: [
            { name: 'price', shape: [2], datatype: 'FP32', data: [1, 2] },
            { name: 'promo', shape: [1], datatype: 'INT32', data: [1] },
          ],
        }),
      ),
    ).toEqual({ status: 400, error: 'inputs[1].data (promo): has 1 values, inputs[0] has 2' });
    expect(
      await post('/predict', JSON.stringify({ model: v1.model, instances: [request(1)], pad: 'x'.repeat(2 << 20) })),
    ).toMatchObject({ status: 413 });
    expect(await post('/predict', JSON.stringify({ model: 'no-such-model', instances: [request(1)] }))).toMatchObject({
      status: 404,
      error: expect.stringMatching(/^model no-such-model is not deployed here/),
    });
    expect((await fetch(`${harness.servingUrl}/v2/health/live`)).status).toBe(200);
    expect((await predict(v1.model, 1)).status).toBe(200);
  });
});
