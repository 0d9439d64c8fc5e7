/**
 * Release authorisation on the real stack: workflows that move an alias check a signed grant in an activity they
 * always call, whatever their input says; tokens stay with the caller and never reach Temporal's history; a pipeline
 * may replace what an existing model serves only with a grant or an admin's approval.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../config/pipeline';
import { trafficRoutes } from '../../schema/deployments';
import { aliasEvents, apiTokens, modelAliases, modelVersions } from '../../schema/models';
import { issueGrant, verifyGrant, type Grant, type GrantRequest } from '../../store/grants';
import { hashToken } from '../../store/tokens';
import type { PipelineInput, PipelineResult } from '../../workflows/pipeline';
import type { RolloutInput, RolloutResult } from '../../workflows/release';
import { startCliServer, type CliServer } from './cliServer';
import { PLANTED_SECRET_PREFIX } from '../secretScanner';
import { cli, demandPipeline, eventually, failureOf, historyText, startHarness, unique, type Harness } from './harness';

let harness: Harness;
/** The server the CLI calls: on this suite's task queues, with its own admin, write and read tokens. */
let server: CliServer;
let v1: PipelineConfig;
const tokenName = unique('authz-admin');
const adminToken = `fw_admin_${randomBytes(18).toString('base64url')}`;

beforeAll(async () => {
  harness = await startHarness();
  server = await startCliServer(harness);
  await harness.services.db.insert(apiTokens).values({ name: tokenName, scope: 'admin', hash: hashToken(adminToken) });
  // A model whose first release needed no grant (v1 holds @champion), and a candidate v2 registered beside it.
  v1 = await demandPipeline(harness.workDir, { config: { evaluation: { gates: [] }, monitor: { enabled: false } } });
  const first = await (await harness.runPipeline(v1)).result;
  expect(first.deployment?.alias).toBe('champion');
  const second = await (
    await harness.runPipeline({
      ...v1,
      training: { ...v1.training, seed: 4 },
      deploy: { ...v1.deploy, enabled: false },
    })
  ).result;
  expect(second.model?.version).toBe(2);
});

afterAll(async () => {
  // No admin token may outlive the suite: other suites rely on bootstrapping the first one.
  await harness?.services.db.delete(apiTokens).where(eq(apiTokens.name, tokenName));
  await server?.close();
  await harness?.stop();
});

async function champion(model: string): Promise<number | undefined> {
  const [row] = await harness.services.db
    .select()
    .from(modelAliases)
    .where(and(eq(modelAliases.modelName, model), eq(modelAliases.alias, 'champion')));
  return row?.version;
}

const movesBy = async (workflowId: string) =>
  harness.services.db.select().from(aliasEvents).where(eq(aliasEvents.workflowId, workflowId));

const historyOf = (workflowId: string) => historyText(harness.services.client, workflowId);

const admin = (request: Omit<GrantRequest, 'actor' | 'scope'>, options: Parameters<typeof issueGrant>[1] = {}) =>
  issueGrant({ ...request, actor: `token:${tokenName}`, scope: 'admin' }, options);

const canary: RolloutInput['strategy'] = {
  kind: 'canary',
  steps: [100],
  stepDuration: '1s',
  health: { maxErrorRate: 1, maxPredictionPsi: 1000, minRequests: 0 },
};

/** Starts `rolloutWorkflow` as anyone with access to Temporal could; `grant` gets the workflow id it will run under. */
async function rollout(model: string, grant?: (workflowId: string) => unknown, extra: Record<string, unknown> = {}) {
  // A token planted on purpose (to show it is ignored) marks its history for the secret scan to pass over.
  const workflowId = unique(extra.token ? `${PLANTED_SECRET_PREFIX}authz-rollout` : 'authz-rollout');
  const input = {
    modelName: model,
    alias: 'champion',
    candidateVersion: 2,
    strategy: canary,
    reason: 'authz test',
    grant: grant?.(workflowId),
    ...extra,
  };
  const handle = await harness.services.client.workflow.start('rolloutWorkflow', {
    workflowId,
    taskQueue: harness.queues.main,
    args: [input],
  });
  // Read when asked: a failure nobody awaits yet must not reject unobserved.
  return { workflowId, result: () => handle.result() as Promise<RolloutResult> };
}

/** Starts `pipelineWorkflow` with an input of the test's choosing (a grant bound to its workflow id, a trigger). */
async function pipeline(
  config: PipelineConfig,
  options: { grant?: (workflowId: string) => Grant; trigger?: PipelineInput['trigger'] } = {},
) {
  const workflowId = unique(config.name);
  const input: PipelineInput = {
    config,
    trigger: options.trigger ?? { kind: 'test' },
    servingUrl: harness.servingUrl,
    queues: { trainCpu: harness.queues.trainCpu, trainGpu: harness.queues.trainGpu },
    grant: options.grant?.(workflowId),
  };
  const handle = await harness.services.client.workflow.start('pipelineWorkflow', {
    workflowId,
    taskQueue: harness.queues.main,
    args: [input],
  });
  return { workflowId, result: () => handle.result() as Promise<PipelineResult> };
}

describe('grants', () => {
  it('verify only unaltered, unexpired grants for the model, action, alias, version and workflow they name', () => {
    const request = { model: 'm', action: 'rollout' as const, workflowId: 'w', alias: 'champion', version: 2 };
    const expected = { model: 'm', actions: ['rollout'] as const, workflowIds: ['w'], alias: 'champion', version: 2 };
    const grant = admin(request);
    // A JSON round trip (Temporal's payloads) keeps it valid.
    expect(verifyGrant(JSON.parse(JSON.stringify(grant)), expected)).toMatchObject({
      actor: `token:${tokenName}`,
      scope: 'admin',
    });
    expect(() => verifyGrant(undefined, expected)).toThrow('no grant was given');
    expect(() => verifyGrant('fw_admin_xyz', expected)).toThrow(/the grant is malformed/);
    expect(() =>
      verifyGrant({ ...grant, claims: { ...grant.claims, version: 3 } }, { ...expected, version: 3 }),
    ).toThrow(/signature does not match/);
    expect(() => verifyGrant(admin(request, { key: randomBytes(32) }), expected)).toThrow(/signature does not match/);
    expect(() => verifyGrant(admin(request, { now: Date.now() - 11 * 60_000 }), expected)).toThrow(
      /the grant expired at/,
    );
    expect(() => verifyGrant(grant, { ...expected, model: 'other' })).toThrow(
      'the grant is for model "m", not "other"',
    );
    expect(() => verifyGrant(grant, { ...expected, actions: ['alias'] })).toThrow(
      'the grant allows rollout, not alias',
    );
    expect(() => verifyGrant(grant, { ...expected, workflowIds: ['w2'] })).toThrow(
      'the grant was issued for workflow w, not w2',
    );
    expect(() => verifyGrant(grant, { ...expected, alias: 'challenger' })).toThrow(
      'the grant is for @champion, not @challenger',
    );
    expect(() => verifyGrant(grant, { ...expected, version: 1 })).toThrow('the grant is for v2, not v1');
  });
});

describe('authorisation', () => {
  it('refuses a rollout started directly without a grant, or with a forged, expired, replayed or wrong-model grant; @champion and the audit stay as they were', async () => {
    const otherModel = `${v1.model}-other`;
    const attempts: [string, Awaited<ReturnType<typeof rollout>>][] = [
      ['no grant was given', await rollout(v1.model)],
      // What the old input carried: a token is no longer accepted, even an admin's.
      ['no grant was given', await rollout(v1.model, undefined, { token: adminToken, actor: 'mallory' })],
      [
        'signature does not match',
        await rollout(v1.model, (workflowId) =>
          admin(
            { model: v1.model, action: 'rollout', workflowId, alias: 'champion', version: 2 },
            { key: randomBytes(32) },
          ),
        ),
      ],
      [
        'signature does not match',
        await rollout(v1.model, (workflowId) => {
          const grant = admin({ model: v1.model, action: 'rollout', workflowId, alias: 'champion', version: 1 });
          return { ...grant, claims: { ...grant.claims, version: 2 } };
        }),
      ],
      [
        'the grant expired at',
        await rollout(v1.model, (workflowId) =>
          admin(
            { model: v1.model, action: 'rollout', workflowId, alias: 'champion', version: 2 },
            { now: Date.now() - 11 * 60_000 },
          ),
        ),
      ],
      [
        `the grant is for model "${otherModel}"`,
        await rollout(v1.model, (workflowId) =>
          admin({ model: otherModel, action: 'rollout', workflowId, alias: 'champion', version: 2 }),
        ),
      ],
      [
        'the grant was issued for workflow an-earlier-rollout',
        await rollout(v1.model, () =>
          admin({
            model: v1.model,
            action: 'rollout',
            workflowId: 'an-earlier-rollout',
            alias: 'champion',
            version: 2,
          }),
        ),
      ],
      [
        'the grant allows alias, not rollout',
        await rollout(v1.model, (workflowId) =>
          admin({ model: v1.model, action: 'alias', workflowId, alias: 'champion', version: 2 }),
        ),
      ],
    ];
    for (const [why, attempt] of attempts) {
      const message = await failureOf(attempt.result());
      expect(message).toContain(`[UnauthorizedError] a rollout of ${v1.model} v2 needs a grant from an admin token`);
      expect(message).toContain(why);
      expect(await movesBy(attempt.workflowId)).toEqual([]);
    }
    expect(await champion(v1.model)).toBe(1);
    expect(await harness.services.db.select().from(trafficRoutes).where(eq(trafficRoutes.modelName, v1.model))).toEqual(
      [],
    );

    // The same rollout with a valid grant is promoted, and the audit names the token that granted it.
    const granted = await rollout(v1.model, (workflowId) =>
      admin({ model: v1.model, action: 'rollout', workflowId, alias: 'champion', version: 2 }),
    );
    expect((await granted.result()).outcome).toBe('promoted');
    expect(await champion(v1.model)).toBe(2);
    expect(await movesBy(granted.workflowId)).toEqual([
      expect.objectContaining({ fromVersion: 1, toVersion: 2, actor: `token:${tokenName}` }),
    ]);
  });

  it('moves and rolls back an alias from the CLI with an admin token (the server checks it), and no token reaches the workflow history', async () => {
    const guess = `fw_admin_${randomBytes(18).toString('base64url')}`;
    const refused = await cli(
      harness,
      ['models', 'alias', `${v1.model}@1`, 'champion', '--token', guess],
      server.env(),
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/moving .+@champion needs an admin token .*: the token is unknown or revoked/);
    const writer = await cli(harness, ['models', 'rollback', v1.model], server.env());
    expect(writer.code).not.toBe(0);
    expect(writer.stderr).toMatch(
      /rolling back .+@champion needs an admin token .*: token ".+-write" has scope "write"; this route needs "admin"/,
    );
    expect(await champion(v1.model)).toBe(2);

    // An alias move over the API is recorded with the token's name; a rollback runs as a workflow holding a grant.
    const moved = await cli(
      harness,
      ['models', 'alias', `${v1.model}@1`, 'champion', '--token', adminToken, '--reason', 'authz: back to v1'],
      server.env(),
    );
    expect(moved.stdout).toContain(`${v1.model}@champion: v2 → v1 (by ${tokenName})`);
    const rolledBack = await cli(
      harness,
      ['models', 'rollback', v1.model, '--reason', 'authz: rollback'],
      server.env(adminToken),
    );
    expect(rolledBack.stdout).toMatch(new RegExp(`v1 → v2 \\(rolled back by token:${tokenName}\\)`));
    expect(await champion(v1.model)).toBe(2);

    const moves = await harness.services.db.select().from(aliasEvents).where(eq(aliasEvents.modelName, v1.model));
    expect(moves.find((m) => m.reason === 'authz: back to v1')).toMatchObject({ actor: tokenName, workflowId: null });
    const rollback = moves.find((m) => m.reason === 'authz: rollback')!;
    expect(rollback.actor).toBe(`token:${tokenName}`);
    const history = await historyOf(rollback.workflowId!);
    expect(history).toContain(`"actor":"token:${tokenName}"`);
    expect(history).not.toContain(adminToken);
    expect(history).not.toContain('fw_');
  });

  it('registers but does not deploy a new version of an existing model without a grant; a grant or an approval releases it', async () => {
    const candidate = (seed: number, overrides: Partial<PipelineConfig> = {}): PipelineConfig => ({
      ...v1,
      training: { ...v1.training, seed },
      ...overrides,
    });
    const [noGrant, forgedDrift, systemNoGates, expired] = await Promise.all([
      pipeline(candidate(21)),
      // A trigger is only a claim in the input: it authorises nothing.
      pipeline(candidate(22), { trigger: { kind: 'drift', reason: 'forged', alertId: 1 } }),
      // The monitor's own grant promotes only through gates, and this config has none.
      pipeline(candidate(23), {
        grant: (workflowId) =>
          issueGrant({ actor: 'alert:1', scope: 'system', model: v1.model, action: 'release', workflowId }),
      }),
      pipeline(candidate(24), {
        grant: (workflowId) =>
          admin({ model: v1.model, action: 'release', workflowId }, { now: Date.now() - 11 * 60_000 }),
      }),
    ]);
    const before = await champion(v1.model);
    for (const run of [noGrant, forgedDrift, systemNoGates]) {
      const outcome = await run.result();
      expect(outcome.deployment).toBeNull();
      expect(outcome.rollout).toBeNull();
      const deploy = outcome.stages.find((s) => s.name === 'deploy')!;
      expect(deploy.status).toBe('skipped');
      expect(deploy.summary).toContain(
        `${v1.model} v${outcome.model!.version} is registered, tagged release=unauthorised, not deployed`,
      );
      const [row] = await harness.services.db
        .select()
        .from(modelVersions)
        .where(and(eq(modelVersions.modelName, v1.model), eq(modelVersions.version, outcome.model!.version)));
      expect(row!.tags).toMatchObject({ release: 'unauthorised' });
      expect(await movesBy(run.workflowId)).toEqual([]);
    }
    expect((await noGrant.result()).stages.find((s) => s.name === 'deploy')!.summary).toMatch(
      /already existed, and releasing a new version of it needs a release grant/,
    );
    expect((await systemNoGates.result()).stages.find((s) => s.name === 'deploy')!.summary).toMatch(
      /started by alert:1 may replace the champion only through evaluation gates/,
    );
    // A grant that is there but invalid stops the pipeline before it trains.
    expect(await failureOf(expired.result())).toMatch(
      /\[UnauthorizedError\] .*releasing .+ needs a grant from an admin token .*: the grant expired at/,
    );
    expect(await champion(v1.model)).toBe(before);

    // The monitor's grant with a gate to pass: its retraining is released.
    const retrained = await pipeline(
      candidate(27, { evaluation: { ...v1.evaluation, gates: [{ metric: 'r2', min: 0.3 }] } }),
      {
        trigger: { kind: 'drift', reason: 'prediction drift', alertId: 1 },
        grant: (workflowId) =>
          issueGrant({ actor: 'alert:1', scope: 'system', model: v1.model, action: 'release', workflowId }),
      },
    );
    const retrainedOutcome = await retrained.result();
    expect(retrainedOutcome.deployment).toMatchObject({ alias: 'champion', previousVersion: before });
    expect(await movesBy(retrained.workflowId)).toEqual([
      expect.objectContaining({ reason: 'prediction drift; authorised by alert:1' }),
    ]);

    const granted = await pipeline(candidate(25), {
      grant: (workflowId) => admin({ model: v1.model, action: 'release', workflowId }),
    });
    const released = await granted.result();
    expect(released.stages.find((s) => s.name === 'record')!.summary).toContain(
      `release authorised by token:${tokenName}`,
    );
    expect(released.deployment).toMatchObject({ alias: 'champion', previousVersion: retrainedOutcome.model!.version });
    expect(await champion(v1.model)).toBe(released.model!.version);
    expect(await movesBy(granted.workflowId)).toEqual([
      expect.objectContaining({
        actor: `workflow:${granted.workflowId}`,
        reason: expect.stringContaining(`authorised by token:${tokenName}`),
      }),
    ]);

    // No grant, but an admin approves the version it waits for: that is the authorisation, and only a grant travels.
    const waiting = await pipeline(
      candidate(26, { deploy: { ...v1.deploy, approval: { required: true, timeout: '10m', onTimeout: 'reject' } } }),
    );
    const version = released.model!.version + 1;
    await eventually(
      async () =>
        (await cli(harness, ['models', 'show', `${v1.model}@${version}`], server.env())).stdout.includes(
          'approval: pending',
        ) || undefined,
      60_000,
      'a pending approval',
    );
    const approved = await cli(harness, ['approve', `${v1.model}@${version}`, '--token', adminToken], server.env());
    expect(approved.stdout).toContain(`v${version} approved by token:${tokenName}`);
    expect((await waiting.result()).deployment).toMatchObject({ alias: 'champion' });
    expect(await champion(v1.model)).toBe(version);
    const history = await historyOf(waiting.workflowId);
    expect(history).toContain('"action":"approve"');
    expect(history).not.toContain('fw_');
  });
});

describe("the API's release, token and schedule routes", () => {
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return {
      status: response.status,
      body: (await response.json()) as { error?: { code: string; message: string } } & Record<string, any>,
    };
  };

  it('refuse a write or read token (403, naming the scope) for rollbacks, rollouts, approvals, archives and tokens, and change nothing', async () => {
    const model = encodeURIComponent(v1.model);
    const before = {
      champion: await champion(v1.model),
      moves: (await harness.services.db.select().from(aliasEvents).where(eq(aliasEvents.modelName, v1.model))).length,
    };
    const sneaky = unique('sneaky');
    const [version1] = await harness.services.db
      .select()
      .from(modelVersions)
      .where(and(eq(modelVersions.modelName, v1.model), eq(modelVersions.version, 1)));
    for (const [scope, token] of [
      ['write', server.tokens.write],
      ['read', server.tokens.read],
    ] as const) {
      const attempts = [
        await call('POST', `/api/v1/models/${model}/aliases/champion/rollback`, token, { reason: 'not mine' }),
        await call('POST', `/api/v1/models/${model}/versions/1/rollout`, token, {
          strategy: { kind: 'canary', steps: [100], stepDuration: '1s' },
        }),
        await call('POST', `/api/v1/models/${model}/versions/1/approval`, token, { decision: 'approve' }),
        await call('POST', `/api/v1/models/${model}/versions/1/archive`, token, {}),
        await call('POST', '/api/v1/tokens', token, { name: sneaky, scope: 'admin' }),
        await call('GET', '/api/v1/tokens', token),
        await call('DELETE', '/api/v1/tokens/1', token),
      ];
      for (const answer of attempts) {
        expect(answer.status).toBe(403);
        expect(answer.body.error).toMatchObject({
          code: 'PERMISSION_DENIED',
          message: expect.stringContaining(`has scope "${scope}"; this route needs "admin"`),
        });
      }
    }
    expect(await champion(v1.model)).toBe(before.champion);
    expect(
      await harness.services.db.select().from(aliasEvents).where(eq(aliasEvents.modelName, v1.model)),
    ).toHaveLength(before.moves);
    expect(
      (
        await harness.services.db
          .select()
          .from(modelVersions)
          .where(and(eq(modelVersions.modelName, v1.model), eq(modelVersions.version, 1)))
      )[0]!.status,
    ).toBe(version1!.status);
    expect(await harness.services.db.select().from(apiTokens).where(eq(apiTokens.name, sneaky))).toEqual([]);
    // A read token may not start or schedule pipelines either.
    expect((await call('POST', '/api/v1/pipelines', server.tokens.read, { config: v1 })).status).toBe(403);
    expect(
      (await call('POST', '/api/v1/schedules', server.tokens.read, { config: v1, cron: '0 3 * * *' })).status,
    ).toBe(403);
  });

  it('lets an admin create a token (shown once, stored hashed), list and revoke it; the revoked token is refused', async () => {
    const name = unique('authz-reader');
    const created = await cli(harness, ['tokens', 'create', name, '--scope', 'read'], server.env(server.tokens.admin));
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.split('\n')[0]!;
    expect(token).toMatch(/^fw_read_/);
    const [row] = await harness.services.db.select().from(apiTokens).where(eq(apiTokens.name, name));
    expect(row!.hash).toBe(hashToken(token));
    expect((await call('GET', `/api/v1/models/${encodeURIComponent(v1.model)}`, token)).status).toBe(200);
    const listed = await cli(harness, ['tokens', 'list'], server.env(server.tokens.admin));
    expect(listed.stdout).toMatch(new RegExp(`#${row!.id} +${name} +read +20\\d\\d-`));
    expect(listed.stdout).not.toContain('fw_');
    const byWriter = await cli(harness, ['tokens', 'revoke', `#${row!.id}`], server.env());
    expect(byWriter.stderr).toMatch(/revoking a token needs an admin token .*has scope "write"/);
    expect((await cli(harness, ['tokens', 'revoke', `#${row!.id}`], server.env(server.tokens.admin))).stdout).toContain(
      `token #${row!.id} revoked`,
    );
    await eventually(
      async () =>
        (await call('GET', `/api/v1/models/${encodeURIComponent(v1.model)}`, token)).status === 401 || undefined,
      5_000,
      'the revocation',
    );
    const bootstrap = await cli(harness, ['tokens', 'create', unique('authz-nobody'), '--scope', 'read'], server.env());
    expect(bootstrap.stderr).toMatch(
      /creating a token needs an admin token .*no admin token yet\? on the stack's machine: `flywheel tokens create <name> --local`/,
    );
  });

  it("runs a pipeline from the CLI: a write token registers a new version of an existing model without deploying it; --token must be an admin's", async () => {
    const file = join(harness.workDir, `${v1.name}-cli.json`);
    await writeFile(file, JSON.stringify({ ...v1, training: { ...v1.training, seed: 31 } }));
    const notAdmin = await cli(harness, ['run', file, '--token', server.tokens.write], server.env());
    expect(notAdmin.code).not.toBe(0);
    expect(notAdmin.stderr).toMatch(
      /--token: release: deploying a new version of an existing model needs an admin token/,
    );
    const before = await champion(v1.model);
    const run = await cli(harness, ['run', file, '--wait'], server.env());
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^started \S+\n/);
    expect(run.stdout).toMatch(
      /✓ train .*\n[\s\S]*- deploy .*is registered, tagged release=unauthorised, not deployed/,
    );
    expect(run.stdout).toMatch(new RegExp(`model version +${v1.model} v\\d+`));
    expect(await champion(v1.model)).toBe(before);
    const workflowId = /^started (\S+)/.exec(run.stdout)![1]!;
    const status = await cli(harness, ['status', workflowId], server.env(server.tokens.read));
    expect(status.stdout).toMatch(
      new RegExp(`^${workflowId}: COMPLETED .*\\n  model ${v1.model}  pipeline ${v1.name}`),
    );
    expect(status.stdout).toMatch(/- deploy /);
  });
});
