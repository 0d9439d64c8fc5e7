/**
 * The branches of the pipeline, rollout and monitor workflows that the end-to-end suites cannot reach cheaply (failed
 * gates, release authority, approval timeouts, canary rollback at each step, retraining cooldown): the real workflows
 * on the real Temporal dev server, each test on its own task queue with fake activities that record every call.
 */
import { createRequire } from 'node:module';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Worker,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseAuthority } from '../../activities/release';
import type { DriftCheckResult, MonitorSettings } from '../../activities/monitor';
import { loadConfig } from '../../config/env';
import { parsePipelineConfig, type PipelineConfig } from '../../config/pipeline';
import { connectWorker, temporalClient } from '../../storage/temporal';
import { monitorWorkflow, stopMonitorSignal } from '../../workflows/monitor';
import { approveUpdate, pipelineWorkflow, progressQuery, type PipelineInput } from '../../workflows/pipeline';
import { rolloutWorkflow, stopRolloutSignal, type RolloutInput } from '../../workflows/release';
import { FAKE_HEALTH_PASSED, FakeActivities, type FakeOverrides } from './fakeActivities';
import { eventually, failureOf, unique } from './harness';

const require = createRequire(import.meta.url);
/** Nothing listens here: every activity that would reach the serving process is faked. */
const SERVING_URL = 'http://127.0.0.1:9';

let client: Client;
let connection: NativeConnection;
let namespace: string;
/** Bundled once: each test's worker reuses it, so a worker starts in milliseconds. */
let workflowBundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  const { temporal } = loadConfig();
  namespace = temporal.namespace;
  client = await temporalClient(temporal);
  connection = await connectWorker(temporal);
  workflowBundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows/index.ts'),
    logger: new DefaultLogger('WARN'),
  });
});

afterAll(async () => {
  await connection?.close();
  await client?.connection.close();
});

interface Scenario {
  fake: FakeActivities;
  taskQueue: string;
  /** A unique workflow id on this test's queue, terminated when the test ends if still running. */
  workflowId(prefix: string): string;
}

/** Runs `body` with a worker of the real workflows and fake activities on a task queue of its own. */
async function scenario<T>(overrides: FakeOverrides, body: (s: Scenario) => Promise<T>): Promise<T> {
  const fake = new FakeActivities(overrides);
  const taskQueue = unique('branches');
  const started: string[] = [];
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    workflowBundle,
    activities: fake.activities(),
    shutdownGraceTime: '1s',
    // A nondeterministic workflow fails the test at once instead of retrying its task.
    workflowFailureErrorTypes: { '*': ['NondeterminismError'] } as never,
  });
  return worker.runUntil(async () => {
    try {
      return await body({
        fake,
        taskQueue,
        workflowId: (prefix) => {
          const id = unique(prefix);
          started.push(id);
          return id;
        },
      });
    } finally {
      // A closed workflow refuses the termination: only those still running end here (a rollout child goes with its
      // parent).
      await Promise.all(
        started.map((id) =>
          client.workflow
            .getHandle(id)
            .terminate('test finished')
            .catch(() => undefined),
        ),
      );
    }
  });
}

/** A small regression pipeline; nothing reads its source, the fakes answer for every stage. */
function pipelineConfig(overrides: Record<string, unknown> = {}): PipelineConfig {
  const name = unique('branches');
  return parsePipelineConfig({
    name,
    model: `${name}-model`,
    data: { dataset: `${name}-data`, source: '/fake/demand.csv' },
    training: {
      task: 'regression',
      target: 'units_sold',
      features: { numeric: ['price', 'promo'], categorical: ['store_id'] },
      model: { type: 'mlp', hiddenUnits: [8] },
      epochs: 1,
      batchSize: 32,
      learningRate: 0.01,
    },
    evaluation: { gates: [{ metric: 'r2', min: 0.3 }] },
    ...overrides,
  });
}

function pipelineInput(s: Scenario, config: PipelineConfig, extra: Partial<PipelineInput> = {}): PipelineInput {
  return {
    config,
    trigger: { kind: 'test' },
    servingUrl: SERVING_URL,
    queues: { trainCpu: s.taskQueue, trainGpu: s.taskQueue },
    ...extra,
  };
}

const EXISTING_WITHOUT_GRANT: ReleaseAuthority = { actor: null, scope: null, newModel: false };
const CHAMPION_V1 = { version: 1, artifactKey: 'models/fake/v1/model.json', metrics: { r2: 0.8, rmse: 1.7 } };
/** What the pipeline asks before it trains (record, ingest, validate), then trains, evaluates and registers. */
const THROUGH_REGISTER = [
  'authorizeRelease',
  'recordPipeline',
  'ingestDataset',
  'validateDataset',
  'trainModel',
  'resolveAlias',
  'evaluateModel',
  'registerModelVersion',
];

const statusOf = (stages: { name: string; status: string; summary?: string }[]) =>
  Object.fromEntries(stages.map((st) => [st.name, st.status]));

describe('pipeline branches', () => {
  it('a failed evaluation gate registers the version tagged gate=failed and deploys nothing', async () => {
    await scenario(
      {
        evaluateModel: () => ({
          metrics: { r2: 0.12, rmse: 4.2 },
          gate: {
            passed: false,
            failures: ['r2: 0.12 < 0.3 (min)'],
            checks: [{ metric: 'r2', rule: '>= 0.3', value: 0.12, passed: false }],
          },
          baseline: null,
          predictionReferenceKey: 'reports/p.json',
          reportKey: 'reports/e.json',
          plots: {},
        }),
      },
      async (s) => {
        const workflowId = s.workflowId('gate-fails');
        const run = client.workflow.execute(pipelineWorkflow, {
          taskQueue: s.taskQueue,
          workflowId,
          args: [pipelineInput(s, pipelineConfig())],
        });
        const failure = await failureOf(run);
        expect(failure).toContain('[GateFailedError] evaluation gate failed: r2: 0.12 < 0.3 (min).');
        expect(failure).toContain('v2 is registered but not promoted');
        expect(s.fake.names()).toEqual(THROUGH_REGISTER);
        expect(s.fake.inputsOf('registerModelVersion')[0]!.tags).toEqual({ gate: 'failed' });
        const stages = await client.workflow.getHandle(workflowId).query(progressQuery);
        expect(statusOf(stages)).toMatchObject({
          register: 'done',
          gate: 'failed',
          approve: 'skipped',
          deploy: 'skipped',
          monitor: 'skipped',
        });
      },
    );
  });

  it('a schema violation stops the pipeline at validate: nothing is trained', async () => {
    await scenario(
      {
        validateDataset: () => {
          throw ApplicationFailure.nonRetryable('column price: 3 values above max 100', 'DataValidationError');
        },
      },
      async (s) => {
        const run = client.workflow.execute(pipelineWorkflow, {
          taskQueue: s.taskQueue,
          workflowId: s.workflowId('invalid'),
          args: [pipelineInput(s, pipelineConfig())],
        });
        expect(await failureOf(run)).toContain(
          '[DataValidationError] validate failed: column price: 3 values above max 100',
        );
        expect(s.fake.names()).toEqual(['authorizeRelease', 'recordPipeline', 'ingestDataset', 'validateDataset']);
      },
    );
  });

  const authorities: {
    case: string;
    authority: ReleaseAuthority;
    gates: boolean;
    deployed: boolean;
    refusal?: RegExp;
  }[] = [
    {
      case: 'a new version of an existing model without a grant',
      authority: EXISTING_WITHOUT_GRANT,
      gates: true,
      deployed: false,
      refusal: /already existed, and releasing a new version of it needs a release grant/,
    },
    {
      case: "the monitor's retraining of a pipeline without gates",
      authority: { actor: 'alert:7', scope: 'system', newModel: false },
      gates: false,
      deployed: false,
      refusal: /only through evaluation gates, and this pipeline configures none/,
    },
    {
      case: "the monitor's retraining through its gates",
      authority: { actor: 'alert:7', scope: 'system', newModel: false },
      gates: true,
      deployed: true,
    },
    {
      case: "an admin's release grant",
      authority: { actor: 'token:ops', scope: 'admin', newModel: false },
      gates: false,
      deployed: true,
    },
    {
      case: "a new model's first release",
      authority: { actor: null, scope: null, newModel: true },
      gates: false,
      deployed: true,
    },
  ];
  it.each(authorities)(
    'release authority: $case → deployed: $deployed',
    async ({ authority, gates, deployed, refusal }) => {
      await scenario({ authorizeRelease: () => authority }, async (s) => {
        const config = pipelineConfig(gates ? {} : { evaluation: { gates: [] } });
        const result = await client.workflow.execute(pipelineWorkflow, {
          taskQueue: s.taskQueue,
          workflowId: s.workflowId('authority'),
          args: [pipelineInput(s, config)],
        });
        expect(result.model).toEqual({ name: config.model, version: 2 });
        const deploy = result.stages.find((st) => st.name === 'deploy')!;
        if (deployed) {
          expect(s.fake.names()).toEqual([...THROUGH_REGISTER, 'deployModelVersion', 'ensureMonitor']);
          const [call] = s.fake.inputsOf('deployModelVersion');
          expect(call).toMatchObject({
            modelName: config.model,
            version: 2,
            alias: 'champion',
            servingUrl: SERVING_URL,
            firstRelease: authority.newModel,
          });
          expect(result.deployment).toMatchObject({ alias: 'champion', serving: 'confirmed' });
          expect(deploy.status).toBe('done');
        } else {
          expect(s.fake.names()).toEqual([...THROUGH_REGISTER, 'tagModelVersion']);
          expect(s.fake.inputsOf('tagModelVersion')).toEqual([
            { modelName: config.model, version: 2, tags: { release: 'unauthorised' } },
          ]);
          expect(result.deployment).toBeNull();
          expect(deploy.status).toBe('skipped');
          expect(deploy.summary).toMatch(refusal!);
        }
      });
    },
  );

  it('no GPU worker within gpuWait: training falls back to the CPU queue and says so', async () => {
    await scenario({}, async (s) => {
      const config = pipelineConfig({ deploy: { enabled: false } });
      config.training.resources = { gpu: 1, gpuWait: '1s' };
      // Nobody polls this GPU queue: the schedule-to-start timeout fires.
      const input = pipelineInput(s, config, { queues: { trainCpu: s.taskQueue, trainGpu: unique('no-gpu-worker') } });
      const result = await client.workflow.execute(pipelineWorkflow, {
        taskQueue: s.taskQueue,
        workflowId: s.workflowId('gpu-fallback'),
        args: [input],
      });
      expect(s.fake.inputsOf('trainModel')).toHaveLength(1);
      expect(s.fake.inputsOf('trainModel')[0]!.fellBackFromGpu).toBe(true);
      expect(statusOf(result.stages)).toMatchObject({ deploy: 'skipped', monitor: 'skipped' });
    });
  });

  it('a canary that fails its health gate fails the pipeline with RolledBackError; the alias stays', async () => {
    await scenario(
      {
        authorizeRelease: () => ({ actor: 'token:ops', scope: 'admin', newModel: false }),
        resolveAlias: () => CHAMPION_V1,
        candidateHealth: (_input, previous) =>
          previous === 1
            ? { ...FAKE_HEALTH_PASSED, passed: false, failures: ['error rate 0.2 > 0.05'] }
            : FAKE_HEALTH_PASSED,
      },
      async (s) => {
        const config = pipelineConfig({
          deploy: { strategy: { kind: 'canary', steps: [10, 50, 100], stepDuration: '50ms' } },
        });
        const run = client.workflow.execute(pipelineWorkflow, {
          taskQueue: s.taskQueue,
          workflowId: s.workflowId('canary'),
          args: [pipelineInput(s, config)],
        });
        const failure = await failureOf(run);
        expect(failure).toContain(
          `[RolledBackError] canary of ${config.model} v2 rolled back: health gate failed at 50 %: error rate 0.2 > 0.05; @champion stays at v1`,
        );
        expect(s.fake.names().slice(THROUGH_REGISTER.length)).toEqual([
          'resolveAlias',
          'authorize',
          'resolveAlias',
          'setTrafficRoute',
          'candidateHealth',
          'setTrafficRoute',
          'candidateHealth',
          'clearTrafficRoute',
        ]);
        expect(s.fake.count('moveAlias') + s.fake.count('deployModelVersion') + s.fake.count('ensureMonitor')).toBe(0);
      },
    );
  });
});

describe('approval branches', () => {
  const approval = (timeout: string, onTimeout: 'reject' | 'approve') =>
    pipelineConfig({ deploy: { approval: { required: true, timeout, onTimeout } } });

  it('no decision within the timeout: the approval expires and nothing is released', async () => {
    await scenario({ authorizeRelease: () => EXISTING_WITHOUT_GRANT }, async (s) => {
      const config = approval('1s', 'reject');
      const run = client.workflow.execute(pipelineWorkflow, {
        taskQueue: s.taskQueue,
        workflowId: s.workflowId('approval-expires'),
        args: [pipelineInput(s, config)],
      });
      expect(await failureOf(run)).toContain(
        `[ReleaseRejectedError] release of ${config.model} v2 expired after 1s: no decision within 1s; it stays registered, not promoted`,
      );
      expect(s.fake.names()).toEqual([...THROUGH_REGISTER, 'openApproval', 'closeApproval']);
      expect(s.fake.inputsOf('closeApproval')[0]).toMatchObject({ status: 'expired', actor: 'timeout' });
    });
  });

  it("a timeout that approves is no admin's approval: an existing model without a grant stays unreleased", async () => {
    await scenario({ authorizeRelease: () => EXISTING_WITHOUT_GRANT }, async (s) => {
      const config = approval('1s', 'approve');
      const result = await client.workflow.execute(pipelineWorkflow, {
        taskQueue: s.taskQueue,
        workflowId: s.workflowId('approval-timeout-approves'),
        args: [pipelineInput(s, config)],
      });
      expect(s.fake.names()).toEqual([...THROUGH_REGISTER, 'openApproval', 'closeApproval', 'tagModelVersion']);
      expect(s.fake.inputsOf('closeApproval')[0]).toMatchObject({ status: 'expired', actor: 'timeout' });
      expect(result.deployment).toBeNull();
      expect(statusOf(result.stages)).toMatchObject({ approve: 'done', deploy: 'skipped' });
    });
  });

  it("an admin's approval through the update releases an existing model; a decision for another version is refused", async () => {
    await scenario({ authorizeRelease: () => EXISTING_WITHOUT_GRANT, authorize: () => 'token:reviewer' }, async (s) => {
      const config = approval('10m', 'reject');
      const handle = await client.workflow.start(pipelineWorkflow, {
        taskQueue: s.taskQueue,
        workflowId: s.workflowId('approved'),
        args: [pipelineInput(s, config)],
      });
      await eventually(
        async () =>
          (await handle.query(progressQuery)).find((st) => st.name === 'approve')?.summary?.startsWith('waiting for'),
        30_000,
        'the approval to open',
      );
      const refused = await handle.executeUpdate(approveUpdate, { args: [{ version: 3, approved: true }] }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((refused as WorkflowUpdateFailedError).cause?.message).toBe('this release waits for v2, not v3');
      expect(
        await handle.executeUpdate(approveUpdate, { args: [{ version: 2, approved: true, comment: 'looks good' }] }),
      ).toEqual({ actor: 'token:reviewer' });
      const result = await handle.result();
      expect(s.fake.names()).toEqual([
        ...THROUGH_REGISTER,
        'openApproval',
        'authorize',
        'closeApproval',
        'deployModelVersion',
        'ensureMonitor',
      ]);
      expect(s.fake.inputsOf('authorize')[0]).toMatchObject({ action: 'approve', version: 2, modelName: config.model });
      expect(s.fake.inputsOf('closeApproval')[0]).toMatchObject({
        status: 'approved',
        actor: 'token:reviewer',
        comment: 'looks good',
      });
      expect(s.fake.inputsOf('deployModelVersion')[0]!.reason).toContain('authorised by approval by token:reviewer');
      expect(result.deployment).not.toBeNull();
    });
  });
});

describe('canary rollout branches', () => {
  const STEPS = [5, 25, 50, 100];
  const canary = (s: Scenario, steps = STEPS, stepDuration = '50ms'): RolloutInput => ({
    modelName: `${s.taskQueue}-model`,
    alias: 'champion',
    candidateVersion: 2,
    reason: 'test',
    strategy: {
      kind: 'canary',
      steps,
      stepDuration,
      health: { maxErrorRate: 0.05, maxPredictionPsi: 0.25, minRequests: 20 },
    },
  });
  const unhealthy = { ...FAKE_HEALTH_PASSED, passed: false, failures: ['error rate 0.2 > 0.05'] };

  it.each(STEPS.map((percent, step) => ({ percent, step })))(
    'the health gate failing at $percent % rolls back: route cleared, alias unchanged',
    async ({ percent, step }) => {
      await scenario(
        {
          resolveAlias: () => CHAMPION_V1,
          candidateHealth: (_input, previous) => (previous === step ? unhealthy : FAKE_HEALTH_PASSED),
        },
        async (s) => {
          const input = canary(s);
          const result = await client.workflow.execute(rolloutWorkflow, {
            taskQueue: s.taskQueue,
            workflowId: s.workflowId('canary-fails'),
            args: [input],
          });
          expect(result).toMatchObject({
            outcome: 'rolled_back',
            reason: `health gate failed at ${percent} %: error rate 0.2 > 0.05`,
            baseVersion: 1,
            candidateVersion: 2,
          });
          expect(result.steps.map((st) => st.percent)).toEqual(STEPS.slice(0, step + 1));
          const judged = STEPS.slice(0, step + 1).flatMap(() => ['setTrafficRoute', 'candidateHealth']);
          expect(s.fake.names()).toEqual(['authorize', 'resolveAlias', ...judged, 'clearTrafficRoute']);
          expect(s.fake.inputsOf('setTrafficRoute').map((r) => r.weight)).toEqual(
            STEPS.slice(0, step + 1).map((p) => p / 100),
          );
          expect(s.fake.inputsOf('clearTrafficRoute')).toEqual([
            { modelName: input.modelName, workflowId: expect.any(String) },
          ]);
        },
      );
    },
  );

  it('every step healthy: the alias moves once to the candidate, then the route is cleared', async () => {
    await scenario({ resolveAlias: () => CHAMPION_V1 }, async (s) => {
      const input = canary(s);
      const result = await client.workflow.execute(rolloutWorkflow, {
        taskQueue: s.taskQueue,
        workflowId: s.workflowId('canary-promotes'),
        args: [input],
      });
      expect(result.outcome).toBe('promoted');
      expect(s.fake.inputsOf('moveAlias')).toEqual([
        expect.objectContaining({
          modelName: input.modelName,
          alias: 'champion',
          version: 2,
          actor: 'token:fake-admin',
        }),
      ]);
      expect(s.fake.names().slice(-2)).toEqual(['moveAlias', 'clearTrafficRoute']);
      expect(s.fake.count('candidateHealth')).toBe(STEPS.length);
    });
  });

  it('too little traffic at a step: the step is extended once, then judged', async () => {
    const quiet = { ...FAKE_HEALTH_PASSED, passed: false, enoughTraffic: false, failures: ['3 requests < 20'] };
    await scenario(
      {
        resolveAlias: () => CHAMPION_V1,
        candidateHealth: (_input, previous) => (previous === 0 ? quiet : FAKE_HEALTH_PASSED),
      },
      async (s) => {
        const result = await client.workflow.execute(rolloutWorkflow, {
          taskQueue: s.taskQueue,
          workflowId: s.workflowId('canary-quiet'),
          args: [canary(s, [100])],
        });
        expect(result.outcome).toBe('promoted');
        expect(s.fake.names()).toEqual([
          'authorize',
          'resolveAlias',
          'setTrafficRoute',
          'candidateHealth',
          'candidateHealth',
          'moveAlias',
          'clearTrafficRoute',
        ]);
      },
    );
  });

  it('a stop signal during a step rolls back without waiting for the step to end', async () => {
    await scenario({ resolveAlias: () => CHAMPION_V1 }, async (s) => {
      const handle = await client.workflow.start(rolloutWorkflow, {
        taskQueue: s.taskQueue,
        workflowId: s.workflowId('canary-stopped'),
        args: [canary(s, STEPS, '1h')],
      });
      await s.fake.until((f) => f.count('setTrafficRoute') === 1, 30_000, 'the first canary step');
      await handle.signal(stopRolloutSignal, { reason: 'operator saw errors' });
      expect(await handle.result()).toMatchObject({ outcome: 'rolled_back', reason: 'stopped: operator saw errors' });
      expect(s.fake.names()).toEqual([
        'authorize',
        'resolveAlias',
        'setTrafficRoute',
        'candidateHealth',
        'clearTrafficRoute',
      ]);
    });
  });

  it('no version holds the alias: the candidate is promoted directly, no traffic is split', async () => {
    await scenario({}, async (s) => {
      const result = await client.workflow.execute(rolloutWorkflow, {
        taskQueue: s.taskQueue,
        workflowId: s.workflowId('canary-first'),
        args: [canary(s)],
      });
      expect(result).toMatchObject({ outcome: 'promoted', baseVersion: null, steps: [] });
      expect(s.fake.names()).toEqual(['authorize', 'resolveAlias', 'moveAlias']);
    });
  });

  it('a refused grant ends the rollout before any traffic moves', async () => {
    await scenario(
      {
        authorize: () => {
          throw ApplicationFailure.nonRetryable('a rollout needs a grant from an admin token', 'UnauthorizedError');
        },
      },
      async (s) => {
        const run = client.workflow.execute(rolloutWorkflow, {
          taskQueue: s.taskQueue,
          workflowId: s.workflowId('canary-refused'),
          args: [canary(s)],
        });
        expect(await failureOf(run)).toContain('[UnauthorizedError] a rollout needs a grant from an admin token');
        expect(s.fake.names()).toEqual(['authorize']);
      },
    );
  });
});

describe('monitor branches', () => {
  const settings = (overrides: Partial<MonitorSettings> = {}): MonitorSettings => ({
    interval: '100ms',
    minWindowRows: 50,
    predictionPsiThreshold: 0.2,
    meanShiftThreshold: 0.05,
    retrainOnDrift: true,
    retrainCooldown: '1h',
    ...overrides,
  });
  const drift: DriftCheckResult = {
    verdict: 'drift',
    version: 2,
    rows: 300,
    psi: 0.41,
    message: 'prediction PSI 0.410 (threshold 0.2)',
  };

  /** Starts a monitor, waits until it has run `checks` drift checks, stops it and returns the fake's record. */
  async function monitorUntil(
    s: Scenario,
    monitorSettings: MonitorSettings,
    checks: (f: FakeActivities) => boolean,
  ): Promise<string> {
    const handle = await client.workflow.start(monitorWorkflow, {
      taskQueue: s.taskQueue,
      workflowId: s.workflowId('monitor'),
      args: [{ modelName: 'demand', alias: 'champion', pipelineName: 'demand-pipeline', settings: monitorSettings }],
    });
    await s.fake.until(checks, 30_000, 'the monitor checks');
    await handle.signal(stopMonitorSignal);
    return handle.result();
  }

  it('drift starts one retraining; more drift within the cooldown starts no second', async () => {
    await scenario({ checkPredictionDrift: () => drift }, async (s) => {
      expect(await monitorUntil(s, settings(), (f) => f.count('checkPredictionDrift') >= 3)).toBe('stopped');
      const checks = s.fake.count('checkPredictionDrift');
      // Each drifting check raises (or refreshes) the one open alert.
      expect(s.fake.count('raiseAlert')).toBe(checks);
      expect(s.fake.inputsOf('raiseAlert').every((a) => a.check === 'prediction_drift')).toBe(true);
      expect(s.fake.inputsOf('startRetraining')).toEqual([
        {
          pipelineName: 'demand-pipeline',
          modelName: 'demand',
          alertId: 1,
          reason: `prediction drift: ${drift.message}`,
        },
      ]);
    });
  });

  it('drift after the cooldown has passed starts another retraining', async () => {
    // The cooldown is shorter than the interval, so every drifting check comes after it.
    await scenario({ checkPredictionDrift: () => drift }, async (s) => {
      await monitorUntil(
        s,
        settings({ interval: '300ms', retrainCooldown: '50ms' }),
        (f) => f.count('startRetraining') >= 2,
      );
      expect(s.fake.count('startRetraining')).toBe(s.fake.count('checkPredictionDrift'));
    });
  });

  it('retrainOnDrift false: drift raises the alert and starts nothing', async () => {
    await scenario({ checkPredictionDrift: () => drift }, async (s) => {
      await monitorUntil(s, settings({ retrainOnDrift: false }), (f) => f.count('checkPredictionDrift') >= 2);
      expect(s.fake.count('raiseAlert')).toBe(s.fake.count('checkPredictionDrift'));
      expect(s.fake.count('startRetraining')).toBe(0);
    });
  });

  it('dataset drift retrains; a service breach alone alerts (warning) without retraining', async () => {
    const featureDrift: DriftCheckResult = {
      verdict: 'ok',
      version: 2,
      rows: 300,
      message: 'prediction PSI 0.01',
      features: {
        columns: [{ column: 'price', drifted: true } as never],
        share: 1,
        datasetDrift: true,
        message: '1 of 1 features drifted',
      },
    };
    const breach: DriftCheckResult = {
      verdict: 'ok',
      version: 2,
      rows: 300,
      message: 'prediction PSI 0.01',
      service: { errors: 30, requests: 100, errorRate: 0.3, breach: 'error rate 0.3 > 0.05' },
    };
    await scenario(
      { checkPredictionDrift: (_input, previous) => (previous === 0 ? featureDrift : breach) },
      async (s) => {
        await monitorUntil(s, settings({ retrainCooldown: '0ms' }), (f) => f.count('checkPredictionDrift') >= 3);
        const alerts = s.fake.inputsOf('raiseAlert');
        expect(alerts[0]).toMatchObject({ check: 'feature_drift', severity: 'critical' });
        expect(alerts.slice(1).every((a) => a.check === 'service' && a.severity === 'warning')).toBe(true);
        expect(s.fake.inputsOf('startRetraining')).toEqual([
          expect.objectContaining({ reason: 'dataset drift: 1 of 1 features drifted' }),
        ]);
      },
    );
  });

  it('a removed deployment ends the monitor quietly with what is gone', async () => {
    await scenario(
      {
        checkPredictionDrift: () => ({
          verdict: 'no-deployment',
          rows: 0,
          message: 'demand@champion no longer exists',
        }),
      },
      async (s) => {
        const result = await client.workflow.execute(monitorWorkflow, {
          taskQueue: s.taskQueue,
          workflowId: s.workflowId('monitor-gone'),
          args: [{ modelName: 'demand', alias: 'champion', pipelineName: 'demand-pipeline', settings: settings() }],
        });
        expect(result).toBe('demand@champion no longer exists');
        expect(s.fake.names()).toEqual(['checkPredictionDrift']);
      },
    );
  });
});
