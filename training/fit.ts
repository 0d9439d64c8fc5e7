/**
 * The training loop itself, free of Temporal, Postgres and S3: fit the preprocessing on the training split, build
 * the model, train epoch by epoch with a per-epoch seeded shuffle, and report each epoch to the caller (which
 * checkpoints, logs metrics, heartbeats, or stops early). Used by the train activity, sweeps and benchmarks.
 */
import type { Sequential } from '@tensorflow/tfjs';
import {
  encodeColumns,
  encodeTarget,
  featureWidth,
  fitPreprocessor,
  FeatureError,
  type Preprocessor,
  type RawColumns,
} from './preprocess';
import { seededRandom, shuffledIndices } from '../ml/random';
import type { Split } from './split';
import type { TfModule } from './backend';
import { buildModel, disposeModel, type ModelSpec } from './model';

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
  /**
   * Stop when the validation loss has not improved for `patience` epochs; `restoreBest` keeps the best epoch's weights.
   */
  earlyStopping?: { patience: number; restoreBest: boolean };
  /** Who trains (config `training.runner`). @default 'tfjs' */
  runner?: 'tfjs' | 'python' | 'import';
  /** A Python step: the user's function and its parameters (`ctx.params`; a sweep varies these). */
  python?: { entrypoint: string; params: Record<string, unknown> };
  /** An imported ONNX model: where the file is, and its signature (flywheel-onnx-v1). */
  imported?: { source: string; signature: Record<string, unknown> };
}

/** A training problem that no retry can fix (bad features, empty split, diverging loss). */
export class TrainingInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingInputError';
  }
}

export interface EpochReport {
  epoch: number;
  loss: number;
  valLoss?: number;
}

export interface FitHooks {
  /** Restores weights and optimizer state; returns the epoch (0-based) to continue after, or undefined. */
  restore?(model: Sequential): Promise<number | undefined>;
  /** After every epoch; return 'stop' to end training early (e.g. a sweep's stopping rule). */
  onEpoch?(report: EpochReport, model: Sequential): Promise<void | 'stop'>;
  onBatch?(): void | Promise<void>;
}

export interface FitResult {
  model: Sequential;
  pre: Preprocessor;
  finalLoss: number;
  /** Epochs trained in total, counting those before a resume. */
  epochs: number;
  resumedFromEpoch?: number;
  stoppedEarly: boolean;
  /** Set when early stopping restored the weights of an earlier epoch (1-based), with that epoch's watched loss. */
  bestEpoch?: number;
  bestLoss?: number;
}

/** Trains; the caller disposes `model`. Throws TrainingInputError for problems in the data or parameters. */
export async function fitModel(
  tf: TfModule,
  columns: RawColumns,
  split: Split,
  params: TrainingParams,
  hooks: FitHooks = {},
): Promise<FitResult> {
  if (split.train.length === 0)
    throw new TrainingInputError(`the training split is empty (holdoutFraction ${params.holdoutFraction})`);
  let pre: Preprocessor;
  try {
    pre = fitPreprocessor(columns, split.train, {
      task: params.task,
      target: params.target,
      numeric: params.features.numeric,
      categorical: params.features.categorical,
    });
  } catch (error) {
    if (error instanceof FeatureError) throw new TrainingInputError(error.message);
    throw error;
  }
  const width = featureWidth(pre);
  const xTrain = tf.tensor2d(encodeColumns(pre, columns, split.train), [split.train.length, width]);
  const yTrain = tf.tensor2d(encodeTarget(pre, columns, split.train), [split.train.length, 1]);
  const validation =
    split.validation.length > 0
      ? ([
          tf.tensor2d(encodeColumns(pre, columns, split.validation), [split.validation.length, width]),
          tf.tensor2d(encodeTarget(pre, columns, split.validation), [split.validation.length, 1]),
        ] as const)
      : undefined;
  const spec: ModelSpec = {
    ...params.model,
    optimizer: params.optimizer,
    learningRate: params.learningRate,
    seed: params.seed,
  };
  const model = buildModel(tf, pre, spec);
  try {
    const resumedFromEpoch = await hooks.restore?.(model);
    let finalLoss = NaN;
    let epochs = resumedFromEpoch === undefined ? 0 : resumedFromEpoch + 1;
    let stoppedEarly = false;
    // Early stopping on the validation loss (the training loss without a validation slice). After a resume the
    // watch starts again from the restored epoch.
    let best = { loss: Infinity, epoch: -1, weights: undefined as ReturnType<Sequential['getWeights']> | undefined };
    const keep = (epoch: number, loss: number) => {
      best.weights?.forEach((t) => t.dispose());
      best = {
        loss,
        epoch,
        weights: params.earlyStopping?.restoreBest ? model.getWeights().map((t) => t.clone()) : undefined,
      };
    };
    for (let epoch = epochs; epoch < params.epochs; epoch++) {
      // Shuffle with a per-epoch seed: a resumed run sees the same batches as an uninterrupted one.
      const order = tf.tensor1d(
        Int32Array.from(shuffledIndices(split.train.length, seededRandom(params.seed * 7919 + epoch))),
        'int32',
      );
      const x = tf.gather(xTrain, order);
      const y = tf.gather(yTrain, order);
      order.dispose();
      const history = await model.fit(x, y, {
        epochs: 1,
        batchSize: params.batchSize,
        shuffle: false,
        verbose: 0,
        validationData: validation ? [validation[0], validation[1]] : undefined,
        callbacks: hooks.onBatch
          ? {
              onBatchEnd: async () => {
                await hooks.onBatch!();
              },
            }
          : undefined,
      });
      x.dispose();
      y.dispose();
      const loss = Number(history.history.loss?.[0]);
      const rawVal = history.history.val_loss ? Number(history.history.val_loss[0]) : undefined;
      if (!Number.isFinite(loss)) {
        throw new TrainingInputError(
          `training diverged: loss is ${loss} at epoch ${epoch + 1}; lower training.learningRate (now ${params.learningRate})`,
        );
      }
      finalLoss = loss;
      epochs = epoch + 1;
      const valLoss = rawVal !== undefined && Number.isFinite(rawVal) ? rawVal : undefined;
      const watched = valLoss ?? loss;
      if (params.earlyStopping && watched < best.loss) keep(epoch, watched);
      const patienceOut = params.earlyStopping !== undefined && epoch - best.epoch >= params.earlyStopping.patience;
      const verdict = await hooks.onEpoch?.({ epoch, loss, valLoss }, model);
      if (verdict === 'stop' || patienceOut) {
        stoppedEarly = epochs < params.epochs;
        break;
      }
    }
    let restored: Pick<FitResult, 'bestEpoch' | 'bestLoss'> = {};
    if (best.weights && best.epoch + 1 < epochs) {
      model.setWeights(best.weights);
      restored = { bestEpoch: best.epoch + 1, bestLoss: best.loss };
    }
    best.weights?.forEach((t) => t.dispose());
    return { model, pre, finalLoss, epochs, resumedFromEpoch, stoppedEarly, ...restored };
  } catch (error) {
    disposeModel(model);
    throw error;
  } finally {
    xTrain.dispose();
    yTrain.dispose();
    validation?.forEach((t) => t.dispose());
  }
}
