/**
 * Fake stage activities for testing workflow branches on the real Temporal server: canned results a test may
 * override per activity, every call recorded in order, and any activity nobody faked failing at once (non-retryable).
 */
import { activityInfo } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { StageActivities, TrainInput, TrainResult } from '../../activities/index';

/** What the main worker and a training worker register, by name. */
export type FlywheelActivities = StageActivities & { trainModel(input: TrainInput): Promise<TrainResult> };
export type ActivityName = keyof FlywheelActivities;
type InputOf<K extends ActivityName> = Parameters<FlywheelActivities[K]>[0];
type OutputOf<K extends ActivityName> = Awaited<ReturnType<FlywheelActivities[K]>>;

/** A fake activity: gets the input and how many calls of this activity came before (0 for the first). */
export type FakeActivity<K extends ActivityName> = (
  input: InputOf<K>,
  previousCalls: number,
) => OutputOf<K> | Promise<OutputOf<K>>;
export type FakeOverrides = { [K in ActivityName]?: FakeActivity<K> };

export interface RecordedCall {
  name: string;
  input: unknown;
}

export const FAKE_HEALTH_PASSED = {
  passed: true,
  enoughTraffic: true,
  failures: [],
  candidate: { requests: 100, errors: 0, errorRate: 0, p99Ms: 12 },
  base: { requests: 900, errors: 0 },
  predictionPsi: 0.01,
};

/** A healthy run of everything the pipeline, rollout and monitor call; a test overrides the branch it drives. */
const DEFAULTS: FakeOverrides = {
  authorize: () => 'token:fake-admin',
  authorizeRelease: () => ({ actor: null, scope: null, newModel: true }),
  recordPipeline: () => undefined,
  ingestDataset: (input) => ({
    datasetVersionId: `${input.dataset}@fake`,
    contentHash: 'fake-hash',
    objectKey: `datasets/${input.dataset}/fake.csv`,
    rowCount: 120,
    format: 'csv',
    reused: false,
  }),
  validateDataset: () => ({
    reportKey: 'reports/fake-validation.json',
    passed: true,
    contract: 'pinned',
    reference: null,
    driftedColumns: [],
    warnings: [],
  }),
  trainModel: (input) => ({
    runId: `run-${input.workflowId}`,
    artifactKey: `models/${input.modelName}/fake/model.json`,
    backend: 'fake',
    taskQueue: 'fake-train-queue',
    epochs: 1,
    finalLoss: 0.5,
    objective: 0.5,
    stoppedEarly: false,
  }),
  resolveAlias: () => null,
  evaluateModel: () => ({
    metrics: { r2: 0.9, rmse: 1.5, count: 24 },
    gate: { passed: true, failures: [], checks: [{ metric: 'r2', rule: '>= 0.3', value: 0.9, passed: true }] },
    baseline: null,
    predictionReferenceKey: 'reports/fake-predictions.json',
    reportKey: 'reports/fake-evaluation.json',
    plots: {},
  }),
  registerModelVersion: (input) => ({ modelName: input.modelName, version: 2 }),
  tagModelVersion: () => undefined,
  openApproval: () => undefined,
  closeApproval: () => undefined,
  deployModelVersion: (input) => ({
    deploymentId: `dep-${input.workflowId}`,
    previousVersion: null,
    endpoint: `${input.servingUrl}/v2/models/${input.modelName}/infer`,
    serving: 'confirmed',
  }),
  ensureMonitor: (input) => `monitor-${input.modelName}-${input.alias}`,
  setTrafficRoute: () => undefined,
  clearTrafficRoute: () => undefined,
  candidateHealth: () => FAKE_HEALTH_PASSED,
  moveAlias: (input) => ({ fromVersion: 1, toVersion: input.version, moved: true }),
  checkPredictionDrift: () => ({
    verdict: 'ok',
    version: 2,
    rows: 200,
    message: 'prediction PSI 0.010 (threshold 0.2)',
  }),
  raiseAlert: (_input, previous) => ({ alertId: 1, isNew: previous === 0 }),
  updateAlert: () => undefined,
  startRetraining: (input) => `${input.pipelineName}-retrain-alert-${input.alertId}`,
};

export class FakeActivities {
  /** Every call, in the order the worker ran them (unfaked ones included, under their own name). */
  readonly calls: RecordedCall[] = [];
  private readonly waiters: { probe: () => boolean; resolve: () => void }[] = [];

  constructor(private readonly overrides: FakeOverrides = {}) {}

  /** The activities object to give `Worker.create`. */
  activities(): Record<string, (input: unknown) => Promise<unknown>> {
    const faked = { ...DEFAULTS, ...this.overrides } as Record<string, (input: unknown, previous: number) => unknown>;
    const registered: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [name, fake] of Object.entries(faked)) {
      registered[name] = async (input) => {
        const previous = this.count(name as ActivityName);
        this.record(name, input);
        return fake(input, previous);
      };
    }
    // The worker's fallback for any activity type nobody registered: a workflow branch called what the test did not
    // expect.
    registered.default = async (input) => {
      const { activityType } = activityInfo();
      this.record(activityType, input);
      throw ApplicationFailure.nonRetryable(
        `activity ${activityType} is not faked in this test`,
        'UnexpectedActivityError',
      );
    };
    return registered;
  }

  /** The names of the calls, in order. */
  names(): string[] {
    return this.calls.map((c) => c.name);
  }

  count(name: ActivityName): number {
    return this.calls.filter((c) => c.name === name).length;
  }

  inputsOf<K extends ActivityName>(name: K): InputOf<K>[] {
    return this.calls.filter((c) => c.name === name).map((c) => c.input as InputOf<K>);
  }

  /** Resolves once `probe` holds over the recorded calls (checked after every call), instead of sleeping. */
  until(
    probe: (fake: FakeActivities) => boolean,
    timeoutMs = 30_000,
    what = 'the expected activity calls',
  ): Promise<void> {
    if (probe(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`timed out after ${timeoutMs} ms waiting for ${what}; calls so far: ${this.names().join(', ')}`),
          ),
        timeoutMs,
      );
      this.waiters.push({
        probe: () => probe(this),
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  private record(name: string, input: unknown): void {
    this.calls.push({ name, input });
    for (const waiter of [...this.waiters]) {
      if (!waiter.probe()) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }
}
