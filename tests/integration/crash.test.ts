/** Kill -9 the worker in the middle of training; a new worker finishes the same pipeline with no duplicates. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { and, desc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { datasetVersions } from '../../schema/datasets';
import { modelVersions } from '../../schema/models';
import { alerts, monitorChecks } from '../../schema/monitors';
import { runMetrics, runs } from '../../schema/runs';
import { externalServices, PROJECT_ROOT, readStackState, stateDirOf } from '../../config/env';
import { runIdFor } from '../../activities/train';
import { demandPipeline, eventually, startHarness, type Harness } from './harness';

let harness: Harness;
const children: ChildProcess[] = [];
beforeAll(async () => {
  harness = await startHarness({ workers: false });
});
afterAll(async () => {
  children.forEach((child) => child.kill('SIGKILL'));
  await harness?.stop();
});

function startWorkerProcess(): Promise<ChildProcess> {
  // node --import tsx (not the tsx CLI, which forks): the pid we kill is the worker itself.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(PROJECT_ROOT, 'tests', 'integration', 'workerProcess.ts')],
    {
      cwd: PROJECT_ROOT,
      env: { ...process.env, TEST_MAIN_QUEUE: harness.queues.main, TEST_TRAIN_QUEUE: harness.queues.trainCpu },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('worker ready') && resolve(child));
    child.once('exit', (code) => reject(new Error(`worker process exited early (${code})`)));
  });
}

it('completes after the worker is killed mid-training, with one dataset version, one run and one model version', async () => {
  const config = await demandPipeline(harness.workDir, {
    data: { stores: 10, items: 20, days: 120 },
    config: { deploy: { enabled: false } },
  });
  config.training.epochs = 12;
  const first = await startWorkerProcess();
  const { workflowId, result } = await harness.runPipeline(config);
  const runId = runIdFor(workflowId);
  const { db } = harness.services;

  const lastEpoch = async () =>
    (
      await db
        .select()
        .from(runMetrics)
        .where(and(eq(runMetrics.runId, runId), eq(runMetrics.key, 'loss')))
        .orderBy(desc(runMetrics.step))
        .limit(1)
    )[0]?.step;
  const killedAfter = await eventually(
    async () => ((await lastEpoch()) ?? 0) >= 3 && (await lastEpoch()),
    120_000,
    'three trained epochs',
  );
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  expect(killedAfter).toBeLessThan(config.training.epochs);

  await startWorkerProcess();
  const outcome = await result;
  expect(outcome.model?.version).toBe(1);
  const trained = await db.select().from(runs).where(eq(runs.workflowId, workflowId));
  expect(trained).toHaveLength(1);
  expect(trained[0]!.status).toBe('finished');
  expect(
    await db.select().from(datasetVersions).where(eq(datasetVersions.datasetName, config.data.dataset)),
  ).toHaveLength(1);
  expect(await db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model))).toHaveLength(1);
  const epochs = await db
    .select()
    .from(runMetrics)
    .where(and(eq(runMetrics.runId, runId), eq(runMetrics.key, 'loss')));
  expect(epochs.map((e) => e.step).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  // The retried attempt resumed from a checkpoint: at most the epoch in flight (plus one whose heartbeat lagged) is
  // redone.
  const resumed = outcome.stages.find((s) => s.name === 'train')!.summary!;
  const resumedAfter = Number(/resumed after epoch (\d+)/.exec(resumed)?.[1]);
  expect(resumedAfter).toBeGreaterThanOrEqual(killedAfter - 1);
});

it('finishes a sweep after the worker is killed mid-sweep, with every trial exactly once', async () => {
  const config = await demandPipeline(harness.workDir, {
    data: { stores: 6, items: 10, days: 120 },
    config: { deploy: { enabled: false } },
  });
  config.training.epochs = 6;
  config.training.sweep = {
    method: 'random',
    trials: 6,
    maxParallel: 2,
    maxFailed: 0,
    parameters: { learningRate: { min: 0.002, max: 0.02, scale: 'log' }, hiddenUnits: { values: [[16], [32, 16]] } },
  };
  const first = await startWorkerProcess();
  const { workflowId, result } = await harness.runPipeline(config);
  const sweepId = `${workflowId}-sweep`;
  const { db } = harness.services;
  const trialRuns = () => db.select().from(runs).where(eq(runs.sweepId, sweepId));
  // Kill it once some trials are done and one is in the middle of its epochs.
  await eventually(
    async () => {
      const rows = await trialRuns();
      const done = rows.filter((r) => r.status === 'finished').length;
      if (done < 2) return false;
      for (const r of rows.filter((r) => r.status === 'running')) {
        const steps = await db
          .select()
          .from(runMetrics)
          .where(and(eq(runMetrics.runId, r.id), eq(runMetrics.key, 'loss')));
        if (steps.length >= 2) return true;
      }
      return false;
    },
    120_000,
    'two finished trials and one mid-training',
  );
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));

  await startWorkerProcess();
  const outcome = await result;
  const rows = await trialRuns();
  expect(rows.map((r) => r.trial).sort()).toEqual([0, 1, 2, 3, 4, 5]);
  expect(rows.every((r) => r.status === 'finished')).toBe(true);
  expect(outcome.sweep!.trials.map((t) => t.status)).toEqual(new Array(6).fill('finished'));
  for (const r of rows) {
    const steps = (
      await db
        .select()
        .from(runMetrics)
        .where(and(eq(runMetrics.runId, r.id), eq(runMetrics.key, 'loss')))
    )
      .map((m) => m.step)
      .sort((a, b) => a - b);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
  }
  expect(await db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model))).toHaveLength(1);
});

// Restarts the local dev server, so it runs only when `flywheel up` started it (not against an external cluster).
it.runIf(!externalServices().temporal)(
  'finishes a sweep after the Temporal server is killed and started again mid-sweep',
  async () => {
    const state = readStackState(stateDirOf());
    if (!state.temporal?.pid)
      return expect.fail('no local Temporal dev server in .flywheel/stack.json; run `flywheel up --infra-only` first');
    const config = await demandPipeline(harness.workDir, {
      data: { stores: 6, items: 10, days: 120 },
      config: { deploy: { enabled: false } },
    });
    config.training.epochs = 5;
    config.training.sweep = {
      method: 'tpe',
      trials: 6,
      maxParallel: 2,
      maxFailed: 0,
      parameters: { learningRate: { min: 0.002, max: 0.02, scale: 'log' } },
    };
    await startWorkerProcess();
    const { workflowId, result } = await harness.runPipeline(config);
    const sweepId = `${workflowId}-sweep`;
    const { db } = harness.services;
    const trialRuns = () => db.select().from(runs).where(eq(runs.sweepId, sweepId));
    await eventually(
      async () => (await trialRuns()).filter((r) => r.status === 'finished').length >= 2,
      120_000,
      'two finished trials',
    );

    process.kill(state.temporal.pid, 'SIGKILL');
    await eventually(
      async () => {
        try {
          process.kill(state.temporal!.pid!, 0);
          return false;
        } catch {
          return true;
        }
      },
      10_000,
      'the server to die',
    );
    const restart = spawnSync(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'flywheel.js'), 'up', '--infra-only', '--quiet'],
      { cwd: PROJECT_ROOT, encoding: 'utf8' },
    );
    expect(restart.status, restart.stderr).toBe(0);
    expect(readStackState(stateDirOf()).temporal!.address).toBe(state.temporal.address);

    const outcome = await result;
    const rows = await trialRuns();
    expect(rows.map((r) => r.trial).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rows.every((r) => r.status === 'finished')).toBe(true);
    expect(outcome.sweep!.trials.every((t) => t.status === 'finished')).toBe(true);
    expect(await db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model))).toHaveLength(1);
  },
);

it.runIf(!externalServices().temporal)(
  'keeps a monitor running through a Temporal server restart: checks go on, one alert, not two',
  async () => {
    const config = await demandPipeline(harness.workDir, {
      config: { monitor: { interval: '2s', minWindowRows: 30, meanShiftThreshold: 0.05, retrainOnDrift: false } },
    });
    await startWorkerProcess();
    const outcome = await (await harness.runPipeline(config)).result;
    const monitorId = outcome.monitorWorkflowId!;
    const { db } = harness.services;
    const checks = async () => db.select().from(monitorChecks).where(eq(monitorChecks.monitorWorkflowId, monitorId));
    await eventually(async () => (await checks()).length >= 1, 30_000, 'a first check');

    const state = readStackState(stateDirOf());
    process.kill(state.temporal!.pid!, 'SIGKILL');
    await eventually(
      async () => {
        try {
          process.kill(state.temporal!.pid!, 0);
          return false;
        } catch {
          return true;
        }
      },
      10_000,
      'the server to die',
    );
    const restart = spawnSync(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'flywheel.js'), 'up', '--infra-only', '--quiet'],
      { cwd: PROJECT_ROOT, encoding: 'utf8' },
    );
    expect(restart.status, restart.stderr).toBe(0);
    const restartedAt = Date.now();

    // Upstream puts everything on deep promotion: predicted demand jumps, window after window.
    const drifted = Array.from({ length: 60 }, (_, i) => ({
      price: 1,
      promo: 1,
      is_holiday: 1,
      store_id: `S0${(i % 3) + 1}`,
      item_id: `I00${(i % 5) + 1}`,
      day_of_week: i % 7,
    }));
    const send = async () => {
      const response = await fetch(`${harness.servingUrl}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: config.model, instances: drifted }),
      });
      expect(response.status).toBe(200);
    };
    for (let window = 0; window < 3; window++) {
      await send();
      const before = (await checks()).filter((c) => c.windowEnd.getTime() > restartedAt).length;
      // The first check after a restart waits for the workers' pollers to find the server again (their backoff grows
      // with each restart the suite made): generous, as this asserts that checks go on, not how soon.
      await eventually(
        async () => (await checks()).filter((c) => c.windowEnd.getTime() > restartedAt).length > before,
        window === 0 ? 120_000 : 30_000,
        'a check after the restart',
      );
    }
    const raised = await db
      .select()
      .from(alerts)
      .where(and(eq(alerts.monitorWorkflowId, monitorId), eq(alerts.check, 'prediction_drift')));
    expect(raised).toHaveLength(1);
    expect((await harness.services.client.workflow.getHandle(monitorId).describe()).status.name).toBe('RUNNING');
    await harness.services.client.workflow.getHandle(monitorId).terminate('test done');
  },
  300_000,
);
