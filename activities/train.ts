/**
 * Train: one tracked run. Fits the preprocessing on the training split, trains a TF.js model epoch by epoch
 * (training/fit.ts), logs per-epoch metrics in one batched write per epoch, and checkpoints weights + optimizer
 * state every epoch so a retried attempt (after a crash or a lost worker) resumes where the last one stopped.
 * A sweep trial also applies the sweep's stopping rule after each epoch.
 */
import { createHash } from 'node:crypto';
import { activityInfo, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { lineChartSvg } from '../ml/evaluation/plot';
import { median } from '../training/sweep';
import { splitRows } from '../training/split';
import { writeMetrics } from '../store/metrics';
import {
  createPipelineRun,
  failRun,
  getRun,
  logBatch,
  markRunStarted,
  mergeRunMetrics,
  runSteps,
  sweepPeersAt,
} from '../store/runs';
import { loadTf, type BackendName } from '../training/backend';
import { fitModel, TrainingInputError, type TrainingParams } from '../training/fit';
import { checkpointOf, disposeModel, restoreCheckpoint, serializeModel, type Checkpoint } from '../training/model';
import { loadDatasetColumns } from './datasetColumns';
import { badInput, type ActivityDeps } from './deps';
export type { TrainingParams } from '../training/fit';

export interface TrialInfo {
  sweepId: string;
  index: number;
  /** Median stopping rule: after `graceEpochs`, stop a trial whose objective is worse than the median of the
   * other trials at the same epoch (Google Vizier's rule, as in Katib and W&B). */
  stopping?: { rule: 'median'; graceEpochs: number; minTrials: number };
}

export interface TrainInput {
  workflowId: string;
  pipelineName: string;
  modelName: string;
  datasetVersionId: string;
  params: TrainingParams;
  codeVersion?: string;
  /** Set when a GPU was asked for but no GPU worker took the task in time. */
  fellBackFromGpu?: boolean;
  /** @default the pipeline name */
  experiment?: string;
  tags?: Record<string, string>;
  trial?: TrialInfo;
}

export interface TrainResult {
  runId: string;
  artifactKey: string;
  backend: string;
  taskQueue: string;
  epochs: number;
  resumedFromEpoch?: number;
  finalLoss: number;
  /** The last validation loss (the training loss when there is no validation slice): what sweeps minimise. */
  objective: number;
  stoppedEarly: boolean;
}

export const lossPlotKey = (modelName: string, runId: string) => `models/${modelName}/${runId}/loss.svg`;

/** One run per workflow (or per sweep trial): the id derives from them, so a retried attempt finds its run. */
export function runIdFor(workflowId: string, trial?: number): string {
  return `run-${createHash('sha256')
    .update(trial === undefined ? workflowId : `${workflowId}#trial-${trial}`)
    .digest('hex')
    .slice(0, 20)}`;
}

/**
 * Records the run a training attempt works for (idempotent: its id derives from the workflow and trial). A retry
 * after the run finished (e.g. the completion was lost) gets the stored result back instead.
 */
export async function openPipelineRun(
  db: ActivityDeps['db'],
  input: TrainInput,
  extraTags: Record<string, string> = {},
): Promise<{ runId: string; experimentId: number; stored?: TrainResult }> {
  const runId = runIdFor(input.workflowId, input.trial?.index);
  const { params } = input;
  await createPipelineRun(db, {
    id: runId,
    workflowId: input.workflowId,
    pipelineName: input.pipelineName,
    experiment: input.experiment ?? input.pipelineName,
    tags: { ...(input.tags ?? {}), ...extraTags },
    sweepId: input.trial?.sweepId,
    trial: input.trial?.index,
    modelName: input.modelName,
    datasetVersionId: input.datasetVersionId,
    status: 'running',
    task: params.task,
    params: { ...params, fellBackFromGpu: input.fellBackFromGpu ?? false },
    seed: params.seed,
    codeVersion: input.codeVersion,
  });
  const run = await getRun(db, runId);
  if (!run) throw new Error(`run ${runId} vanished after it was recorded`);
  if (run.status !== 'finished' || !run.artifactKey) return { runId, experimentId: run.experimentId };
  const m = run.metrics ?? {};
  return {
    runId,
    experimentId: run.experimentId,
    stored: {
      runId,
      artifactKey: run.artifactKey,
      backend: run.backend ?? 'unknown',
      taskQueue: run.taskQueue ?? '',
      epochs: m.epochs ?? params.epochs,
      finalLoss: m.loss ?? NaN,
      objective: m.objective ?? NaN,
      stoppedEarly: m.stopped_early === 1,
    },
  };
}

export function createTrainActivities(
  { db, store }: ActivityDeps,
  options: { preferGpu?: boolean; pinBackend?: string; device?: string } = {},
) {
  return {
    async trainModel(input: TrainInput): Promise<TrainResult> {
      const info = activityInfo();
      const runId = runIdFor(input.workflowId, input.trial?.index);
      const { params } = input;
      const { stored } = await openPipelineRun(db, input);
      if (stored) return { ...stored, taskQueue: stored.taskQueue || info.taskQueue };
      const fail = async (message: string) => {
        await failRun(db, runId, message);
        return badInput('TrainingError', message);
      };

      // The GPU this worker owns (workers/gpuSlots.ts), on every attempt: a retry on another device overwrites it.
      if (options.device) await logBatch(db, runId, { tags: { 'flywheel.device': options.device } });
      const { tf, backend } = await loadTf({ preferGpu: options.preferGpu, pin: options.pinBackend });
      await markRunStarted(db, runId, { backend, taskQueue: info.taskQueue });
      const wanted = [...new Set([...params.features.numeric, ...params.features.categorical, params.target])];
      const { version, columns, rowCount } = await loadDatasetColumns(db, store, input.datasetVersionId, wanted).catch(
        async (error: unknown) => {
          // A missing column is the data's fault: the run fails with the reason, like any other bad input.
          if (error instanceof ApplicationFailure && error.nonRetryable) throw await fail(error.message);
          throw error;
        },
      );
      if (rowCount < 10) throw await fail(`dataset ${version.id} has ${rowCount} rows; training needs at least 10`);
      const split = splitRows(rowCount, params.holdoutFraction, params.seed, version.contentHash);

      const checkpointKey = `checkpoints/${runId}/latest.json`;
      let progress = { epoch: -1, checkpointKey: '' };
      let objective = NaN;
      let fit;
      try {
        fit = await fitModel(tf, columns, split, params, {
          // Heartbeat details lag (they are throttled); the checkpoint object, keyed by the run, is always the newest.
          restore: async (model) => {
            if (info.attempt === 1 || (await store.sizeOf(checkpointKey)) === undefined) return undefined;
            const checkpoint = await store.getJson<Checkpoint>(checkpointKey);
            await restoreCheckpoint(tf, model, checkpoint);
            progress = { epoch: checkpoint.epoch, checkpointKey };
            log.info('resuming training from checkpoint', { runId, epoch: checkpoint.epoch, attempt: info.attempt });
            return checkpoint.epoch;
          },
          onBatch: () => heartbeat(progress),
          onEpoch: async ({ epoch, loss, valLoss }, model) => {
            const step = epoch + 1;
            objective = valLoss ?? loss;
            const points = [{ key: 'loss', step, value: loss }];
            if (valLoss !== undefined) points.push({ key: 'val_loss', step, value: valLoss });
            await writeMetrics(db, runId, points);
            await store.putJson(checkpointKey, await checkpointOf(model, epoch));
            progress = { epoch, checkpointKey };
            heartbeat(progress);
            if (input.trial?.stopping && step > input.trial.stopping.graceEpochs && step < params.epochs) {
              const others = await sweepPeersAt(db, {
                sweepId: input.trial.sweepId,
                excludeRunId: runId,
                key: valLoss !== undefined ? 'val_loss' : 'loss',
                step,
              });
              if (others.length >= input.trial.stopping.minTrials && objective > median(others)) {
                log.info('median stopping rule: trial stopped', { runId, step, objective });
                return 'stop';
              }
            }
          },
        });
      } catch (error) {
        if (error instanceof TrainingInputError) throw await fail(`dataset ${version.id}: ${error.message}`);
        throw error;
      }
      // Restored best weights: the objective is that epoch's, not the last one's.
      if (fit.bestLoss !== undefined) objective = fit.bestLoss;
      try {
        const artifactKey = `models/${input.modelName}/${runId}/model.json`;
        await store.putJson(artifactKey, serializeModel(fit.model, fit.pre));
        // The loss curves as an image next to the model (all epochs, including those before a resume).
        const steps = await runSteps(db, runId);
        const series = ['loss', 'val_loss']
          .map((key) => ({
            name: key,
            points: steps
              .filter((m) => m.key === key)
              .sort((a, b) => a.step - b.step)
              .map((m) => ({ x: m.step, y: m.value })),
          }))
          .filter((line) => line.points.length > 0);
        await store.putBuffer(
          lossPlotKey(input.modelName, runId),
          lineChartSvg(`${runId} (${params.model.type}, lr ${params.learningRate})`, series, {
            x: 'epoch',
            y: 'loss (standardised)',
          }),
          'image/svg+xml',
        );
        await mergeRunMetrics(
          db,
          runId,
          {
            loss: fit.finalLoss,
            objective,
            epochs: fit.epochs,
            stopped_early: fit.stoppedEarly ? 1 : 0,
            ...(fit.bestEpoch !== undefined ? { best_epoch: fit.bestEpoch } : {}),
            train_rows: split.train.length,
            holdout_rows: split.holdout.length,
          },
          { artifactKey, backend },
        );
        return {
          runId,
          artifactKey,
          backend: backend satisfies BackendName,
          taskQueue: info.taskQueue,
          epochs: fit.epochs,
          resumedFromEpoch: fit.resumedFromEpoch,
          finalLoss: fit.finalLoss,
          objective,
          stoppedEarly: fit.stoppedEarly,
        };
      } finally {
        disposeModel(fit.model);
      }
    },
  };
}
