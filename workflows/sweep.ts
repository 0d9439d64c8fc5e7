/**
 * A hyper-parameter sweep as a durable workflow: trials (each a tracked training run) in parallel up to
 * `maxParallel`, proposed by grid, random or TPE from the results so far; more than `maxFailed` failures end it.
 * Trial ids derive from the sweep's workflow id and the trial number, so a restarted worker or server resumes the
 * sweep without losing or repeating a trial.
 */
import {
  ApplicationFailure,
  defineQuery,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { TrainInput, TrainResult } from '../activities/index';
import { rootCause } from '../config/errors';
import type { SweepConfig } from '../config/pipeline';
import { gridPoints, propose, type Observation, type Point } from '../training/sweep';
import { STAGE_KEY } from './searchAttributes';
import { trainRouted, type TrainingRoute } from './training';

export interface SweepInput {
  /** The training input every trial starts from; a trial overrides the swept parameters. */
  base: Omit<TrainInput, 'workflowId' | 'trial'>;
  sweep: SweepConfig;
  route: TrainingRoute;
}

export interface TrialResult {
  index: number;
  params: Point;
  status: 'pending' | 'running' | 'finished' | 'failed';
  runId?: string;
  objective?: number;
  epochs?: number;
  stoppedEarly?: boolean;
  error?: string;
}

export interface SweepResult {
  best: TrainResult & { trial: number; params: Point };
  trials: TrialResult[];
}

export const sweepProgressQuery = defineQuery<TrialResult[]>('trials');

/** Applies a proposed point to the training parameters (model-level names go under `model`). */
export function applyPoint(params: TrainInput['params'], point: Point): TrainInput['params'] {
  // A Python step's sweep varies the user's own parameters.
  if (params.python) return { ...params, python: { ...params.python, params: { ...params.python.params, ...point } } };
  const next = { ...params, model: { ...params.model } };
  for (const [name, value] of Object.entries(point)) {
    if (name === 'activation' || name === 'hiddenUnits' || name === 'type')
      (next.model as Record<string, unknown>)[name] = value;
    else (next as Record<string, unknown>)[name] = value;
  }
  return next;
}

export async function sweepWorkflow(input: SweepInput): Promise<SweepResult> {
  const { sweep } = input;
  const sweepId = workflowInfo().workflowId;
  const total = sweep.method === 'grid' ? gridPoints(sweep.parameters).length : sweep.trials;
  const trials: TrialResult[] = [];
  setHandler(sweepProgressQuery, () => trials);
  upsertSearchAttributes([{ key: STAGE_KEY, value: 'sweep' }]);
  const history: Observation[] = [];
  const results = new Map<number, TrainResult>();
  const running = new Map<number, Promise<void>>();
  let failed = 0;
  let next = 0;
  const startup = Math.max(2, Math.min(5, Math.ceil(total / 4)));

  const launch = (index: number) => {
    const params = propose(sweep.method, sweep.parameters, index, input.base.params.seed, history, startup);
    const trial: TrialResult = { index, params, status: 'running' };
    trials[index] = trial;
    const stopping = sweep.earlyStopping
      ? {
          rule: 'median' as const,
          graceEpochs: sweep.earlyStopping.graceEpochs,
          minTrials: sweep.earlyStopping.minTrials,
        }
      : undefined;
    const work = trainRouted(
      {
        ...input.base,
        workflowId: sweepId,
        params: applyPoint(input.base.params, params),
        tags: { ...input.base.tags, sweep: sweepId, trial: String(index) },
        trial: { sweepId, index, stopping },
      },
      input.route,
    )
      .then(
        (result) => {
          results.set(index, result);
          history.push({ params, objective: result.objective });
          Object.assign(trial, {
            status: 'finished',
            runId: result.runId,
            objective: result.objective,
            epochs: result.epochs,
            stoppedEarly: result.stoppedEarly,
          });
        },
        (error: unknown) => {
          failed++;
          Object.assign(trial, {
            status: 'failed',
            error: (rootCause(error) as { message?: string } | undefined)?.message ?? String(error),
          });
        },
      )
      .finally(() => running.delete(index));
    running.set(index, work);
  };

  while (next < total || running.size > 0) {
    while (next < total && running.size < sweep.maxParallel && failed <= sweep.maxFailed) launch(next++);
    if (running.size === 0) break;
    await Promise.race(running.values());
    if (failed > sweep.maxFailed) {
      await Promise.allSettled(running.values());
      const reasons = trials
        .filter((t) => t.status === 'failed')
        .map((t) => `trial ${t.index}: ${t.error}`)
        .join('; ');
      throw ApplicationFailure.nonRetryable(
        `sweep ${sweepId}: ${failed} trials failed, more than maxFailed ${sweep.maxFailed} (${reasons})`,
        'SweepFailedError',
      );
    }
  }
  const finished = trials.filter((t) => t.status === 'finished' && Number.isFinite(t.objective));
  if (finished.length === 0)
    throw ApplicationFailure.nonRetryable(`sweep ${sweepId}: no trial finished`, 'SweepFailedError');
  // Trials stopped early are worse than the median by construction; the best is among those that ran out (or, if
  // every trial was stopped, among all). A stopped trial can still report a lower loss than one that ran out (it
  // stopped before it could overfit, or the median it lost to came from faster trials): it is not released.
  const ranOut = finished.filter((t) => !t.stoppedEarly);
  const best = (ranOut.length ? ranOut : finished).reduce((a, b) =>
    b.objective! < a.objective! || (b.objective === a.objective && b.index < a.index) ? b : a,
  );
  return { best: { ...results.get(best.index)!, trial: best.index, params: best.params }, trials };
}
