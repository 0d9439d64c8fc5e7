/**
 * A stack of dense layers evaluated in plain JavaScript: what a Flywheel TF.js model is (training/model.ts builds only
 * `dense` layers with relu / tanh / sigmoid / elu, then linear or softmax). For a few rows, TF.js spends far more on
 * dispatch than on arithmetic — ~25 kernels, each with its tensor bookkeeping, for a 46 → 128 → 64 → 1 network whose
 * 14k multiply-adds take a few microseconds — so serving single-row requests this way costs a fraction of the CPU.
 *
 * The arithmetic is TF.js's: float32 weights and float32 values between layers, each dot product accumulated in double
 * precision (a closer sum than float32's; results agree with TF.js to ~1e-7 relative). Inputs that are exactly 0 (most
 * of a one-hot encoding) are skipped, which is exact because the weights are checked finite. A model with any other
 * layer, activation or shape is not supported: `denseNetworkOf` answers undefined and the caller keeps TF.js.
 */
import type { LayersModel } from '@tensorflow/tfjs';

export type DenseActivation = 'linear' | 'relu' | 'tanh' | 'sigmoid' | 'elu' | 'softmax';

const ACTIVATIONS: ReadonlySet<string> = new Set<DenseActivation>([
  'linear',
  'relu',
  'tanh',
  'sigmoid',
  'elu',
  'softmax',
]);

export interface DenseLayer {
  inputs: number;
  units: number;
  /** `inputs × units`, row-major (TF.js's kernel layout). */
  kernel: Float32Array;
  /** `units` values, or zeros for a layer without bias. */
  bias: Float32Array;
  activation: DenseActivation;
}

export class DenseNetwork {
  readonly inputs: number;
  readonly outputs: number;
  private readonly widest: number;

  constructor(readonly layers: readonly DenseLayer[]) {
    if (layers.length === 0) throw new Error('a dense network needs at least one layer');
    layers.forEach((layer, i) => {
      if (i > 0 && layer.inputs !== layers[i - 1]!.units)
        throw new Error(
          `dense layer ${i} takes ${layer.inputs} inputs, the layer before gives ${layers[i - 1]!.units}`,
        );
      if (layer.kernel.length !== layer.inputs * layer.units || layer.bias.length !== layer.units)
        throw new Error(`dense layer ${i}: kernel or bias does not match ${layer.inputs} × ${layer.units}`);
    });
    this.inputs = layers[0]!.inputs;
    this.outputs = layers[layers.length - 1]!.units;
    this.widest = Math.max(...layers.map((l) => Math.max(l.inputs, l.units)));
  }

  /** `rows × inputs` encoded values (row-major) → `rows × outputs`. */
  predict(encoded: Float32Array, rows: number): Float32Array {
    if (encoded.length !== rows * this.inputs)
      throw new Error(`expected ${rows} × ${this.inputs} encoded values, got ${encoded.length}`);
    const out = new Float32Array(rows * this.outputs);
    // Two float32 buffers between layers (TF.js rounds every layer's output to float32) and one double accumulator.
    let current = new Float32Array(this.widest);
    let next = new Float32Array(this.widest);
    const sums = new Float64Array(this.widest);
    for (let r = 0; r < rows; r++) {
      current.set(encoded.subarray(r * this.inputs, (r + 1) * this.inputs));
      for (const layer of this.layers) {
        forwardLayer(layer, current, sums);
        activate(layer.activation, sums, layer.units, next);
        [current, next] = [next, current];
      }
      out.set(current.subarray(0, this.outputs), r * this.outputs);
    }
    return out;
  }
}

function forwardLayer(layer: DenseLayer, input: Float32Array, sums: Float64Array): void {
  const { inputs, units, kernel, bias } = layer;
  for (let j = 0; j < units; j++) sums[j] = 0;
  for (let k = 0; k < inputs; k++) {
    const x = input[k]!;
    if (x === 0) continue;
    const row = k * units;
    for (let j = 0; j < units; j++) sums[j]! += x * kernel[row + j]!;
  }
  for (let j = 0; j < units; j++) sums[j]! += bias[j]!;
}

function activate(activation: DenseActivation, sums: Float64Array, units: number, out: Float32Array): void {
  // Each pre-activation is a float32 in TF.js: round before applying the function, as it does.
  switch (activation) {
    case 'linear':
      for (let j = 0; j < units; j++) out[j] = sums[j]!;
      return;
    case 'relu':
      for (let j = 0; j < units; j++) out[j] = Math.max(0, Math.fround(sums[j]!));
      return;
    case 'tanh':
      for (let j = 0; j < units; j++) out[j] = Math.tanh(Math.fround(sums[j]!));
      return;
    case 'sigmoid':
      for (let j = 0; j < units; j++) out[j] = 1 / (1 + Math.exp(-Math.fround(sums[j]!)));
      return;
    case 'elu':
      for (let j = 0; j < units; j++) {
        const v = Math.fround(sums[j]!);
        out[j] = v > 0 ? v : Math.expm1(v);
      }
      return;
    case 'softmax': {
      let max = -Infinity;
      for (let j = 0; j < units; j++) max = Math.max(max, Math.fround(sums[j]!));
      let total = 0;
      for (let j = 0; j < units; j++) total += sums[j] = Math.exp(Math.fround(sums[j]!) - max);
      for (let j = 0; j < units; j++) out[j] = sums[j]! / total;
      return;
    }
  }
}

interface LayerLike {
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): { shape: number[]; dataSync(): ArrayLike<number> }[];
}

/**
 * The model as a `DenseNetwork`, when it is one: only `Dense` layers (an `InputLayer` is skipped), each with a known
 * activation, 2-D kernels, finite float32 weights. Anything else: undefined.
 */
export function denseNetworkOf(model: Pick<LayersModel, 'layers'>): DenseNetwork | undefined {
  const layers: DenseLayer[] = [];
  if (!Array.isArray(model.layers)) return undefined;
  for (const layer of model.layers as unknown as LayerLike[]) {
    const kind = layer.getClassName();
    if (kind === 'InputLayer') continue;
    if (kind !== 'Dense') return undefined;
    const config = layer.getConfig();
    const activation = String(config.activation ?? 'linear');
    if (!ACTIVATIONS.has(activation)) return undefined;
    const weights = layer.getWeights();
    const kernel = weights[0];
    if (!kernel || kernel.shape.length !== 2) return undefined;
    const [inputs, units] = kernel.shape as [number, number];
    const useBias = config.useBias !== false;
    if (weights.length !== (useBias ? 2 : 1)) return undefined;
    const values = Float32Array.from(kernel.dataSync());
    const bias = useBias ? Float32Array.from(weights[1]!.dataSync()) : new Float32Array(units);
    if (bias.length !== units || !values.every(Number.isFinite) || !bias.every(Number.isFinite)) return undefined;
    layers.push({ inputs, units, kernel: values, bias, activation: activation as DenseActivation });
  }
  if (layers.length === 0) return undefined;
  try {
    return new DenseNetwork(layers);
  } catch {
    return undefined;
  }
}
