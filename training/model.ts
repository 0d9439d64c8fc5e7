/** Builds TF.js models from the pipeline config and (de)serialises them, with their preprocessing, as one artifact. */
import type { LayersModel, Sequential, Tensor } from '@tensorflow/tfjs';
import { encodeInstance, featureWidth, type Preprocessor } from './preprocess';
import type { TfModule } from './backend';

export interface ModelSpec {
  type: 'linear' | 'mlp';
  hiddenUnits: number[];
  activation: 'relu' | 'tanh' | 'sigmoid' | 'elu';
  optimizer: 'adam' | 'sgd' | 'rmsprop';
  learningRate: number;
  seed: number;
}

interface SerializedTensor {
  name: string;
  shape: number[];
  data: string;
}

/** Everything serving needs: topology, weights and the fitted preprocessing transform. */
export interface ModelArtifact {
  format: 'flywheel-tfjs-v1';
  topology: unknown;
  weights: SerializedTensor[];
  preprocessor: Preprocessor;
}

export function outputUnits(pre: Preprocessor): number {
  return pre.target.task === 'regression' ? 1 : pre.target.classes.length;
}

export function buildModel(tf: TfModule, pre: Preprocessor, spec: ModelSpec): Sequential {
  const model = tf.sequential();
  const hidden = spec.type === 'mlp' ? spec.hiddenUnits : [];
  let seed = spec.seed;
  hidden.forEach((units, i) => {
    model.add(
      tf.layers.dense({
        units,
        activation: spec.activation,
        inputShape: i === 0 ? [featureWidth(pre)] : undefined,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
      }),
    );
  });
  const classes = outputUnits(pre);
  model.add(
    tf.layers.dense({
      units: classes,
      activation: pre.target.task === 'regression' ? 'linear' : 'softmax',
      inputShape: hidden.length === 0 ? [featureWidth(pre)] : undefined,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
    }),
  );
  const optimizer =
    spec.optimizer === 'adam'
      ? tf.train.adam(spec.learningRate)
      : spec.optimizer === 'rmsprop'
        ? tf.train.rmsprop(spec.learningRate)
        : tf.train.sgd(spec.learningRate);
  model.compile({
    optimizer,
    loss: pre.target.task === 'regression' ? 'meanSquaredError' : 'sparseCategoricalCrossentropy',
  });
  return model;
}

function encodeTensors(tensors: { name: string; tensor: Tensor }[]): SerializedTensor[] {
  return tensors.map(({ name, tensor }) => {
    const values = tensor.dataSync() as Float32Array;
    return {
      name,
      shape: tensor.shape,
      data: Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64'),
    };
  });
}

function decodeTensors(tf: TfModule, serialized: SerializedTensor[]): Tensor[] {
  return serialized.map((t) => {
    const bytes = Buffer.from(t.data, 'base64');
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return tf.tensor(values, t.shape, 'float32');
  });
}

export function serializeModel(model: LayersModel, pre: Preprocessor): ModelArtifact {
  return {
    format: 'flywheel-tfjs-v1',
    topology: model.toJSON(undefined, false),
    weights: encodeTensors(model.getWeights().map((tensor, i) => ({ name: `w${i}`, tensor }))),
    preprocessor: pre,
  };
}

export async function deserializeModel(tf: TfModule, artifact: ModelArtifact): Promise<LayersModel> {
  if (artifact.format !== 'flywheel-tfjs-v1')
    throw new Error(`unsupported model artifact format "${String(artifact.format)}"`);
  const model = await tf.models.modelFromJSON(artifact.topology as never);
  const weights = decodeTensors(tf, artifact.weights);
  model.setWeights(weights);
  weights.forEach((w) => w.dispose());
  return model;
}

/** Checkpoint = model weights + optimizer state, so a resumed attempt continues the same trajectory. */
export interface Checkpoint {
  epoch: number;
  weights: SerializedTensor[];
  optimizer: SerializedTensor[];
}

export async function checkpointOf(model: Sequential, epoch: number): Promise<Checkpoint> {
  const optimizerWeights = await model.optimizer.getWeights();
  return {
    epoch,
    weights: encodeTensors(model.getWeights().map((tensor, i) => ({ name: `w${i}`, tensor }))),
    optimizer: encodeTensors(optimizerWeights.map(({ name, tensor }) => ({ name, tensor }))),
  };
}

export async function restoreCheckpoint(tf: TfModule, model: Sequential, checkpoint: Checkpoint): Promise<void> {
  const weights = decodeTensors(tf, checkpoint.weights);
  model.setWeights(weights);
  weights.forEach((w) => w.dispose());
  if (checkpoint.optimizer.length > 0) {
    const state = decodeTensors(tf, checkpoint.optimizer).map((tensor, i) => ({
      name: checkpoint.optimizer[i]!.name,
      tensor,
    }));
    await model.optimizer.setWeights(state);
  }
}

/** Predicts a batch of already-encoded rows; returns n × outputUnits values. */
export function predictEncoded(
  tf: TfModule,
  model: LayersModel,
  encoded: Float32Array,
  rows: number,
  width: number,
): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor2d(encoded, [rows, width])) as Tensor).dataSync() as Float32Array);
}

/** Validates and encodes request instances; throws FeatureError naming the field. */
export function encodeInstances(pre: Preprocessor, instances: Record<string, unknown>[]): Float32Array {
  const width = featureWidth(pre);
  const out = new Float32Array(instances.length * width);
  instances.forEach((instance, i) => out.set(encodeInstance(pre, instance, `instances[${i}]`), i * width));
  return out;
}

/**
 * Frees a model and its optimizer state: `LayersModel.dispose()` leaves the optimizer's moment variables behind
 * (Adam: two per weight), which a long-lived training worker would accumulate run after run.
 */
export function disposeModel(model: LayersModel): void {
  const optimizer = (model as { optimizer?: { dispose(): void } }).optimizer;
  model.dispose();
  optimizer?.dispose();
}
