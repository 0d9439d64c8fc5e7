/**
 * Train: fits the preprocessing transform on the training split, trains a TF.js model epoch by epoch,
 * logs per-epoch metrics, and checkpoints weights + optimizer state every epoch so a retried attempt
 * (after a crash or a lost worker) resumes where the last one stopped.
 */
import { createHash } from 'node:crypto';
import { activityInfo, heartbeat, log } from '@temporalio/activity';
import { eq, sql } from 'drizzle-orm';
import { encodeColumns, encodeTarget, featureWidth, fitPreprocessor, FeatureError, type Preprocessor } from '../ml/preprocess';
import { seededRandom, shuffledIndices } from '../ml/random';
import { splitRows } from '../ml/split';
import { runMetrics, runs } from '../schema/runs';
import { loadTf, type BackendName } from '../training/backend';
import { buildModel, checkpointOf, restoreCheckpoint, serializeModel, type Checkpoint, type ModelSpec } from '../training/model';
import { loadDatasetColumns } from './datasetColumns';
import { badInput, type ActivityDeps } from './deps';

export interface TrainingParams {
  task: 'regression' | 'classification';
  target: string;
  features: { numeric: string[]; categorical: string[] };
  model: { type: 'linear' | 'mlp'; hiddenUnits: number[]; activation: 'relu' | 'tanh' | 'sigmoid' | 'elu' };
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: 'adam' | 'sgd' | 'rmsprop';
  seed: number;
  holdoutFraction: number;
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
}

export interface TrainResult {
  runId: string;
  artifactKey: string;
  backend: string;
  taskQueue: string;
  epochs: number;
  resumedFromEpoch?: number;
  finalLoss: number;
}

interface Progress { epoch: number; checkpointKey: string }

/** One run per pipeline workflow: the id derives from the workflow id, so a retried attempt finds its run. */
export function runIdFor(workflowId: string): string {
  return `run-${createHash('sha256').update(workflowId).digest('hex').slice(0, 20)}`;
}

export function createTrainActivities({ db, store }: ActivityDeps, options: { preferGpu?: boolean; pinBackend?: string } = {}) {
  return {
    async trainModel(input: TrainInput): Promise<TrainResult> {
      const info = activityInfo();
      const runId = runIdFor(input.workflowId);
      const { params } = input;
      await db.insert(runs).values({
        id: runId,
        workflowId: input.workflowId,
        pipelineName: input.pipelineName,
        modelName: input.modelName,
        datasetVersionId: input.datasetVersionId,
        status: 'running',
        task: params.task,
        params: { ...params, fellBackFromGpu: input.fellBackFromGpu ?? false },
        seed: params.seed,
        codeVersion: input.codeVersion,
      }).onConflictDoNothing();
      const [run] = await db.select().from(runs).where(eq(runs.id, runId));
      // A retry after the run finished (e.g. the completion was lost) returns the stored result.
      if (run?.status === 'finished' && run.artifactKey) {
        return { runId, artifactKey: run.artifactKey, backend: run.backend ?? 'unknown', taskQueue: run.taskQueue ?? info.taskQueue, epochs: params.epochs, finalLoss: run.metrics?.loss ?? NaN };
      }

      const fail = async (message: string) => {
        await db.update(runs).set({ status: 'failed', error: message, endedAt: new Date() }).where(eq(runs.id, runId));
        return badInput('TrainingError', message);
      };

      const { tf, backend } = await loadTf({ preferGpu: options.preferGpu, pin: options.pinBackend });
      await db.update(runs).set({ backend, taskQueue: info.taskQueue, status: 'running' }).where(eq(runs.id, runId));

      const wanted = [...new Set([...params.features.numeric, ...params.features.categorical, params.target])];
      const { version, columns, rowCount } = await loadDatasetColumns(db, store, input.datasetVersionId, wanted);
      if (rowCount < 10) throw await fail(`dataset ${version.id} has ${rowCount} rows; training needs at least 10`);
      const split = splitRows(rowCount, params.holdoutFraction, params.seed, version.contentHash);
      if (split.train.length === 0) throw await fail(`the training split of ${version.id} is empty (holdoutFraction ${params.holdoutFraction})`);

      let pre: Preprocessor;
      try {
        pre = fitPreprocessor(columns, split.train, { task: params.task, target: params.target, numeric: params.features.numeric, categorical: params.features.categorical });
      } catch (error) {
        if (error instanceof FeatureError) throw await fail(error.message);
        throw error;
      }
      const width = featureWidth(pre);
      const xTrain = tf.tensor2d(encodeColumns(pre, columns, split.train), [split.train.length, width]);
      const yTrain = tf.tensor2d(encodeTarget(pre, columns, split.train), [split.train.length, 1]);
      const validation = split.validation.length > 0
        ? [tf.tensor2d(encodeColumns(pre, columns, split.validation), [split.validation.length, width]), tf.tensor2d(encodeTarget(pre, columns, split.validation), [split.validation.length, 1])] as const
        : undefined;

      const spec: ModelSpec = { ...params.model, optimizer: params.optimizer, learningRate: params.learningRate, seed: params.seed };
      const model = buildModel(tf, pre, spec);
      const checkpointKey = `checkpoints/${runId}/latest.json`;
      let startEpoch = 0;
      let resumedFromEpoch: number | undefined;
      // Heartbeat details lag (they are throttled); the checkpoint object, keyed by the run, is always the newest.
      if (info.attempt > 1 && (await store.sizeOf(checkpointKey)) !== undefined) {
        const checkpoint = await store.getJson<Checkpoint>(checkpointKey);
        await restoreCheckpoint(tf, model, checkpoint);
        startEpoch = checkpoint.epoch + 1;
        resumedFromEpoch = checkpoint.epoch;
        log.info('resuming training from checkpoint', { runId, epoch: checkpoint.epoch, attempt: info.attempt });
      }

      let finalLoss = NaN;
      let lastProgress: Progress = resumedFromEpoch !== undefined ? { epoch: resumedFromEpoch, checkpointKey } : { epoch: -1, checkpointKey: '' };
      try {
        for (let epoch = startEpoch; epoch < params.epochs; epoch++) {
          // Shuffle with a per-epoch seed: a resumed run sees the same batches as an uninterrupted one.
          const order = tf.tensor1d(Int32Array.from(shuffledIndices(split.train.length, seededRandom(params.seed * 7919 + epoch))), 'int32');
          const x = tf.gather(xTrain, order);
          const y = tf.gather(yTrain, order);
          order.dispose();
          const history = await model.fit(x, y, {
            epochs: 1,
            batchSize: params.batchSize,
            shuffle: false,
            verbose: 0,
            validationData: validation ? [validation[0], validation[1]] : undefined,
            callbacks: { onBatchEnd: async () => heartbeat(lastProgress) },
          });
          x.dispose();
          y.dispose();
          const loss = Number(history.history.loss?.[0]);
          const valLoss = history.history.val_loss ? Number(history.history.val_loss[0]) : undefined;
          if (!Number.isFinite(loss)) throw await fail(`training diverged: loss is ${loss} at epoch ${epoch + 1}; lower training.learningRate (now ${params.learningRate})`);
          finalLoss = loss;
          const rows = [{ runId, key: 'loss', step: epoch + 1, value: loss }];
          if (valLoss !== undefined && Number.isFinite(valLoss)) rows.push({ runId, key: 'val_loss', step: epoch + 1, value: valLoss });
          await db.insert(runMetrics).values(rows).onConflictDoUpdate({ target: [runMetrics.runId, runMetrics.key, runMetrics.step], set: { value: sql`excluded.value` } });
          await store.putJson(checkpointKey, await checkpointOf(model, epoch));
          lastProgress = { epoch, checkpointKey };
          heartbeat(lastProgress);
        }
        const artifactKey = `models/${input.modelName}/${runId}/model.json`;
        await store.putJson(artifactKey, serializeModel(model, pre));
        await db.update(runs).set({
          status: 'finished', artifactKey, endedAt: new Date(), backend,
          metrics: { loss: finalLoss, train_rows: split.train.length, holdout_rows: split.holdout.length },
        }).where(eq(runs.id, runId));
        return { runId, artifactKey, backend: backend satisfies BackendName, taskQueue: info.taskQueue, epochs: params.epochs, resumedFromEpoch, finalLoss };
      } finally {
        xTrain.dispose();
        yTrain.dispose();
        validation?.forEach((t) => t.dispose());
        model.dispose();
      }
    },
  };
}
