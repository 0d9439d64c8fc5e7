/** Sweeps and tracking on the real stack: trials as tracked runs, the best one released, failures bounded. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lossPlotKey } from '../../activities/train';
import { modelVersions } from '../../schema/models';
import { runMetrics, runs } from '../../schema/runs';
import { PROJECT_ROOT } from '../../config/env';
import type { ReproduceResult } from '../../workflows/reproduce';
import { demandPipeline, failureOf, startHarness, type Harness } from './harness';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.stop();
});

describe('sweeps', () => {
  it('runs a TPE sweep of 8 trials with the median stopping rule and releases the best trial', async () => {
    const config = await demandPipeline(harness.workDir, {
      config: { deploy: { enabled: false } },
    });
    config.training.epochs = 4;
    config.training.tags = { team: 'forecasting' };
    config.training.sweep = {
      method: 'tpe',
      trials: 8,
      maxParallel: 2,
      maxFailed: 0,
      earlyStopping: { rule: 'median', graceEpochs: 1, minTrials: 2 },
      parameters: { learningRate: { min: 0.001, max: 0.05, scale: 'log' }, hiddenUnits: { values: [[8], [32, 16]] } },
    };
    const { workflowId, result } = await harness.runPipeline(config);
    const outcome = await result;
    const { db } = harness.services;

    const trials = await db
      .select()
      .from(runs)
      .where(eq(runs.sweepId, `${workflowId}-sweep`));
    expect(trials.map((t) => t.trial).sort((a, b) => a! - b!)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(
      trials.every((t) => t.status === 'finished' && t.tags.team === 'forecasting' && t.experiment === config.name),
    ).toBe(true);
    const objectives = trials.map((t) => ({
      id: t.id,
      objective: t.metrics!.objective!,
      early: t.metrics!.stopped_early === 1,
    }));
    const fullyTrained = objectives.filter((o) => !o.early);
    const best = fullyTrained.reduce((a, b) => (b.objective < a.objective ? b : a));
    // TPE may propose the same point twice, and identical trials tie: the release is one of the best, by objective.
    const released = fullyTrained.find((o) => o.id === outcome.runId);
    expect(released?.objective).toBe(best.objective);
    expect(outcome.sweep!.trials).toHaveLength(8);
    const [model] = await db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model));
    expect(model!.runId).toBe(outcome.runId);
    // Params of the released model are the winning trial's.
    const winner = trials.find((t) => t.id === outcome.runId)!;
    expect(model!.params).toMatchObject({ learningRate: (winner.params as { learningRate: number }).learningRate });
    // Trials stopped early logged fewer epochs than asked for; the others all four.
    for (const t of trials) {
      const steps = await db.select().from(runMetrics).where(eq(runMetrics.runId, t.id));
      const losses = steps.filter((s) => s.key === 'loss').length;
      expect(losses).toBe(t.metrics!.stopped_early === 1 ? t.metrics!.epochs : 4);
    }
    const summary = outcome.stages.find((s) => s.name === 'train')!.summary!;
    expect(summary).toMatch(/^sweep of 8 trials \(\d+ stopped early, 0 failed\); best trial \d/);

    // Search, inspect and compare from the CLI.
    const cli = (...args: string[]) => {
      const out = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'flywheel.js'), ...args], {
        encoding: 'utf8',
      });
      expect(out.status, out.stderr).toBe(0);
      return out.stdout;
    };
    const listed = cli(
      'runs',
      'list',
      '--filter',
      `tags.team = 'forecasting' and (metrics.objective < 1000 or params.lr < 0) and sweep = '${workflowId}-sweep'`,
      '--order-by',
      'metrics.objective asc',
    );
    expect(listed).toContain('8 run(s)');
    const order = [...listed.matchAll(/^ {2}(run-[0-9a-f]+)/gm)].map((m) => m[1]!);
    const byObjective = trials
      .slice()
      .sort((a, b) => a.metrics!.objective! - b.metrics!.objective!)
      .map((t) => t.id);
    // Listed in ascending objective (ties, from identical trials, in either order), every trial once.
    const objectiveOf = new Map(trials.map((t) => [t.id, t.metrics!.objective!]));
    expect(order.slice().sort()).toEqual(byObjective.slice().sort());
    expect(order.map((id) => objectiveOf.get(id)!)).toEqual(byObjective.map((id) => objectiveOf.get(id)!));
    expect(cli('runs', 'show', outcome.runId)).toMatch(
      new RegExp(
        `experiment +${config.name}[\\s\\S]*learningRate[\\s\\S]*per epoch\\n {2}loss +[▁▂▃▄▅▆▇█]{4}[\\s\\S]*registered as ${config.model} v1`,
      ),
    );
    const plot = (await harness.services.store.getBuffer(lossPlotKey(config.model, outcome.runId))).toString();
    expect(plot).toMatch(/^<svg[\s\S]*<polyline[\s\S]*>loss<\/text>[\s\S]*>val_loss<\/text>/);
    const compared = cli('runs', 'compare', byObjective[0]!, byObjective[7]!);
    expect(compared).toMatch(/\* learningRate/);
    expect(compared).toMatch(/loss per epoch\n +[\d.]+ │/);
    const bad = spawnSync(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'flywheel.js'), 'runs', 'list', '--filter', 'metrics.rmse <'],
      { encoding: 'utf8' },
    );
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/expected a number or a quoted string, found the end of the filter at position 15/);

    // Reproduce the winner: same dataset version, params and seed give bit-identical metrics on this backend.
    const again = (await harness.services.client.workflow.execute('reproduceWorkflow', {
      workflowId: `${workflowId}-reproduce`,
      taskQueue: harness.queues.main,
      args: [{ runId: outcome.runId, queues: { trainCpu: harness.queues.trainCpu } }],
    })) as ReproduceResult;
    expect(again.sameBackend).toBe(true);
    expect(again.reproduced).toEqual(again.original);
    expect(again.identical).toBe(true);
    expect(Object.keys(again.original)).toEqual(expect.arrayContaining(['holdout_rmse', 'holdout_r2', 'loss']));
  });

  it('fails the sweep, naming the trials, when more than maxFailed trials fail', async () => {
    const config = await demandPipeline(harness.workDir, { config: { deploy: { enabled: false } } });
    config.training.epochs = 3;
    config.training.optimizer = 'sgd';
    config.training.sweep = {
      method: 'grid',
      trials: 8,
      maxParallel: 1,
      maxFailed: 0,
      parameters: { learningRate: { values: [1e6, 0.01] } },
    };
    const { workflowId, result } = await harness.runPipeline(config);
    const message = await failureOf(result);
    expect(message).toMatch(
      /1 trials failed, more than maxFailed 0 \(trial 0: dataset .*: training diverged: loss is (NaN|Infinity) at epoch \d/,
    );
    expect(
      await harness.services.db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model)),
    ).toHaveLength(0);
    const trials = await harness.services.db
      .select()
      .from(runs)
      .where(eq(runs.sweepId, `${workflowId}-sweep`));
    expect(trials.map((t) => t.status)).toEqual(['failed']);
  });
});

describe('early stopping', () => {
  it('stops a single run when the validation loss stops improving and keeps the best epoch', async () => {
    const config = await demandPipeline(harness.workDir, { config: { deploy: { enabled: false } } });
    Object.assign(config.training, {
      epochs: 60,
      learningRate: 0.05,
      earlyStopping: { patience: 2, restoreBest: true },
    });
    const outcome = await (await harness.runPipeline(config)).result;
    const [run] = await harness.services.db.select().from(runs).where(eq(runs.id, outcome.runId));
    const m = run!.metrics!;
    expect(m.stopped_early).toBe(1);
    expect(m.epochs).toBeLessThan(60);
    const vals = (await harness.services.db.select().from(runMetrics).where(eq(runMetrics.runId, outcome.runId)))
      .filter((p) => p.key === 'val_loss')
      .sort((a, b) => a.step - b.step);
    expect(vals).toHaveLength(m.epochs!);
    const bestStep = vals.reduce((a, b) => (b.value < a.value ? b : a));
    // Stopped `patience` epochs after the best one, and released with the best epoch's weights.
    expect(m.epochs).toBe(bestStep.step + 2);
    expect(m.best_epoch).toBe(bestStep.step);
    expect(m.objective).toBe(bestStep.value);
  });
});

describe('training input that no retry can fix fails the run fast, with the reason', () => {
  async function failure(
    config: Awaited<ReturnType<typeof demandPipeline>>,
  ): Promise<{ message: string; workflowId: string }> {
    const { workflowId, result } = await harness.runPipeline(config);
    return { message: await failureOf(result), workflowId };
  }

  it('a target column the data does not have', async () => {
    const config = await demandPipeline(harness.workDir, { config: { schema: undefined, deploy: { enabled: false } } });
    config.training.target = 'revenue';
    const { message, workflowId } = await failure(config);
    expect(message).toMatch(
      /\[TrainingError\] train failed: dataset .* has no column\(s\) "revenue"; it has: date, store_id/,
    );
    expect(await harness.services.db.select().from(runs).where(eq(runs.workflowId, workflowId))).toEqual([
      expect.objectContaining({ status: 'failed' }),
    ]);
  });

  it('an empty training split', async () => {
    const config = await demandPipeline(harness.workDir, {
      data: { stores: 1, items: 1, days: 12 },
      config: { deploy: { enabled: false }, validation: { drift: { enabled: false } } },
    });
    config.training.holdoutFraction = 0.96;
    const { message, workflowId } = await failure(config);
    expect(message).toMatch(/the training split is empty \(holdoutFraction 0.96\)/);
    const [run] = await harness.services.db.select().from(runs).where(eq(runs.workflowId, workflowId));
    expect(run).toMatchObject({ status: 'failed' });
    expect(run!.error).toMatch(/training split is empty/);
  });

  it('a diverging loss, after one attempt', async () => {
    const config = await demandPipeline(harness.workDir, { config: { deploy: { enabled: false } } });
    Object.assign(config.training, { optimizer: 'sgd', learningRate: 9 });
    const { message, workflowId } = await failure(config);
    expect(message).toMatch(
      /training diverged: loss is (NaN|Infinity) at epoch \d; lower training.learningRate \(now 9\)/,
    );
    const history = await harness.services.client.workflow.getHandle(workflowId).fetchHistory();
    const attempts = history
      .events!.filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    expect(attempts.every((a) => a === 1)).toBe(true);
  });
});
