/**
 * Worker versioning (Temporal Worker Deployments) on the real dev server: a pipeline started on build a stays pinned
 * to build a after build b is promoted (a rolling upgrade never replays its history on b's code), new pipelines run
 * on b, and the monitor (AUTO_UPGRADE) moves to b. The real workflows with fake activities, each build its own worker
 * and its own record of calls; `flywheel workers promote|list` drive and show the deployment.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Worker,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, PROJECT_ROOT } from '../../config/env';
import { parsePipelineConfig, type PipelineConfig } from '../../config/pipeline';
import { connectWorker, temporalClient } from '../../storage/temporal';
import { deploymentOptions, describeDeployment, promoteBuild } from '../../workers/versioning';
import { monitorWorkflow, stopMonitorSignal } from '../../workflows/monitor';
import { approveUpdate, pipelineWorkflow, progressQuery, type PipelineInput } from '../../workflows/pipeline';
import { FakeActivities } from './fakeActivities';
import { eventually, terminateWorkflowsOn, unique } from './harness';

const require = createRequire(import.meta.url);
/** temporal.api.enums.v1.VersioningBehavior */
const PINNED = 1;
const AUTO_UPGRADE = 2;

let client: Client;
let connection: NativeConnection;
let workflowBundle: WorkflowBundleWithSourceMap;
const deploymentName = unique('flywheel-test');
const taskQueue = unique('versioning');
const builds: { worker: Worker; running: Promise<void> }[] = [];

beforeAll(async () => {
  const { temporal } = loadConfig();
  client = await temporalClient(temporal);
  connection = await connectWorker(temporal);
  workflowBundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows/index.ts'),
    logger: new DefaultLogger('WARN'),
  });
});

afterAll(async () => {
  if (client) await terminateWorkflowsOn(client, [taskQueue]);
  builds.forEach(({ worker }) => worker.shutdown());
  await Promise.all(builds.map(({ running }) => running));
  await connection?.close();
  await client?.connection.close();
});

/** A worker of one build on the test's queue, versioned the way workers/wiring.ts versions the real ones. */
async function startBuild(buildId: string): Promise<FakeActivities> {
  const fake = new FakeActivities();
  const worker = await Worker.create({
    connection,
    namespace: client.options.namespace,
    taskQueue,
    workflowBundle,
    activities: fake.activities(),
    workerDeploymentOptions: deploymentOptions({ name: deploymentName, buildId }),
    shutdownGraceTime: '1s',
    workflowFailureErrorTypes: { '*': ['NondeterminismError'] } as never,
  });
  builds.push({ worker, running: worker.run() });
  // A build becomes a version of the deployment when its worker first polls.
  await eventually(
    async () =>
      (await describeDeployment(client, deploymentName).catch(() => undefined))?.versions.some(
        (v) => v.buildId === buildId,
      ),
    30_000,
    `build ${buildId} to register`,
  );
  return fake;
}

function pipelineInput(overrides: Record<string, unknown> = {}): PipelineInput {
  const name = unique('versioned');
  const config: PipelineConfig = parsePipelineConfig({
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
  return {
    config,
    trigger: { kind: 'test' },
    servingUrl: 'http://127.0.0.1:9',
    queues: { trainCpu: taskQueue, trainGpu: taskQueue },
  };
}

/** The workflow's versioning as Temporal records it: its behavior and the build its last task ran on. */
async function versioningOf(handle: WorkflowHandle) {
  const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
  return { behavior: info?.behavior, buildId: info?.deploymentVersion?.buildId };
}

/** The build of every completed workflow task in the history. */
async function taskBuildsOf(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((event) =>
    event.workflowTaskCompletedEventAttributes
      ? [event.workflowTaskCompletedEventAttributes.deploymentVersion?.buildId ?? 'unversioned']
      : [],
  );
}

function flywheel(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'flywheel.js'), ...args],
      { timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    ),
  );
}

describe('worker versioning with build ids', () => {
  it('no build id: no deployment options, the workers stay unversioned', () => {
    expect(deploymentOptions({ name: 'flywheel' })).toBeUndefined();
    expect(loadConfig({ ...process.env, FLYWHEEL_WORKER_BUILD_ID: '' }).temporal.deployment).toEqual({
      name: 'flywheel',
      buildId: undefined,
    });
    expect(
      loadConfig({ ...process.env, FLYWHEEL_WORKER_BUILD_ID: 'v2', FLYWHEEL_WORKER_DEPLOYMENT: 'ml' }).temporal
        .deployment,
    ).toEqual({ name: 'ml', buildId: 'v2' });
  });

  it('a pipeline started on build a finishes on a after b is promoted; new work runs on b', async () => {
    const a = await startBuild('build-a');
    await eventually(
      () => promoteBuild(client, deploymentName, 'build-a').then(() => true),
      30_000,
      'build-a to be promoted',
    );

    const waiting = await client.workflow.start(pipelineWorkflow, {
      taskQueue,
      workflowId: unique('pinned-pipeline'),
      args: [pipelineInput({ deploy: { approval: { required: true, timeout: '10m', onTimeout: 'reject' } } })],
    });
    await eventually(
      async () =>
        (await waiting.query(progressQuery)).find((st) => st.name === 'approve')?.summary?.startsWith('waiting for'),
      30_000,
      'the approval to open',
    );
    const monitor = await client.workflow.start(monitorWorkflow, {
      taskQueue,
      workflowId: unique('upgrading-monitor'),
      args: [
        {
          modelName: 'demand',
          alias: 'champion',
          pipelineName: 'demand-pipeline',
          settings: {
            interval: '1h',
            minWindowRows: 50,
            predictionPsiThreshold: 0.2,
            meanShiftThreshold: 0.05,
            retrainOnDrift: false,
            retrainCooldown: '1h',
          },
        },
      ],
    });
    await eventually(async () => (await versioningOf(monitor)).buildId === 'build-a', 30_000, 'the monitor on a');
    expect(await versioningOf(waiting)).toEqual({ behavior: PINNED, buildId: 'build-a' });
    expect(await versioningOf(monitor)).toEqual({ behavior: AUTO_UPGRADE, buildId: 'build-a' });

    // The rolling upgrade: build b starts beside a and the operator promotes it.
    const b = await startBuild('build-b');
    const promoted = await flywheel(['workers', 'promote', 'build-b', '--deployment', deploymentName]);
    expect(promoted.stderr).toBe('');
    expect(promoted.stdout).toContain(`deployment ${deploymentName}: build build-b is current (was build-a`);
    const listed = await flywheel(['workers', 'list', '--deployment', deploymentName]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`deployment ${deploymentName}: current build build-b`);
    expect(listed.stdout).toMatch(new RegExp(`build-a\\s+draining\\s+\\S+ .*${taskQueue} \\(workflow\\)\\s+\\S+@`));
    expect(listed.stdout).toMatch(new RegExp(`build-b\\s+current\\s+.*${taskQueue} \\(workflow\\)\\s+\\S+@`));

    // The waiting pipeline is decided after the promotion: its tasks and activities still go to build a.
    await waiting.executeUpdate(approveUpdate, { args: [{ version: 2, approved: true }] });
    const pinnedResult = await waiting.result();
    expect(pinnedResult.deployment).not.toBeNull();
    expect(a.names()).toEqual(expect.arrayContaining(['openApproval', 'closeApproval', 'deployModelVersion']));
    expect(b.names()).not.toContain('closeApproval');
    expect(new Set(await taskBuildsOf(waiting))).toEqual(new Set(['build-a']));
    expect(await versioningOf(waiting)).toEqual({ behavior: PINNED, buildId: 'build-a' });

    // A pipeline started now runs on b from its first task.
    const fresh = await client.workflow.start(pipelineWorkflow, {
      taskQueue,
      workflowId: unique('new-pipeline'),
      args: [pipelineInput()],
    });
    expect((await fresh.result()).deployment).not.toBeNull();
    expect(new Set(await taskBuildsOf(fresh))).toEqual(new Set(['build-b']));
    expect(b.names()).toEqual(expect.arrayContaining(['trainModel', 'deployModelVersion']));

    // The monitor moves: its next task (the stop signal) runs on b.
    await monitor.signal(stopMonitorSignal);
    expect(await monitor.result()).toBe('stopped');
    expect(await versioningOf(monitor)).toEqual({ behavior: AUTO_UPGRADE, buildId: 'build-b' });
    expect(await taskBuildsOf(monitor)).toEqual(['build-a', 'build-b']);
  });
});
