import type { Tensor } from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { denseNetworkOf } from '../../inference/dense';
import { DENSE_JS_MAX_ROWS, TfjsRunner } from '../../inference/tfjs';
import { loadTf, type TfModule } from '../../training/backend';
import { buildModel } from '../../training/model';
import type { Preprocessor } from '../../training/preprocess';

let tf: TfModule;
beforeAll(async () => {
  ({ tf } = await loadTf({ pin: 'wasm' }));
});

/** Rows like an encoded request: a few standardised numbers, then one-hot blocks (mostly exact zeros). */
function encodedRows(rows: number, width: number, seed: number): Float32Array {
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 1;
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < 3; k++) out[r * width + k] = random() * 6 - 3;
    out[r * width + 3 + Math.floor(random() * (width - 3))] = 1;
  }
  return out;
}

function tfPredict(model: { predict(x: Tensor): Tensor | Tensor[] }, x: Float32Array, rows: number, width: number) {
  return tf.tidy(() => (model.predict(tf.tensor2d(x, [rows, width])) as Tensor).dataSync() as Float32Array);
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++)
    expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected[i]!)));
}

describe('dense network in plain JS', () => {
  for (const activation of ['relu', 'tanh', 'sigmoid', 'elu'] as const)
    for (const last of ['linear', 'softmax'] as const)
      it(`answers what TF.js answers: ${activation} hidden layers, ${last} output`, () => {
        const width = 23;
        const model = tf.sequential();
        model.add(tf.layers.dense({ units: 16, activation, inputShape: [width], biasInitializer: 'randomNormal' }));
        model.add(tf.layers.dense({ units: 8, activation, useBias: false }));
        model.add(tf.layers.dense({ units: last === 'softmax' ? 4 : 1, activation: last }));
        const network = denseNetworkOf(model);
        expect(network).toBeDefined();
        expect([network!.inputs, network!.outputs]).toEqual([width, last === 'softmax' ? 4 : 1]);
        for (const rows of [1, 3, 50]) {
          const x = encodedRows(rows, width, rows * 7 + 1);
          expectClose(network!.predict(x, rows), tfPredict(model, x, rows, width));
        }
        model.dispose();
      });

  it('takes a linear model (no hidden layer) and refuses a wrong input size', () => {
    const model = tf.sequential();
    model.add(tf.layers.dense({ units: 1, inputShape: [5] }));
    const network = denseNetworkOf(model)!;
    const x = encodedRows(4, 5, 3);
    expectClose(network.predict(x, 4), tfPredict(model, x, 4, 5));
    expect(() => network.predict(x, 3)).toThrow(/3 × 5 encoded values, got 20/);
    model.dispose();
  });

  it('leaves any other network to TF.js', () => {
    const withDropout = tf.sequential();
    withDropout.add(tf.layers.dense({ units: 4, inputShape: [3] }));
    withDropout.add(tf.layers.dropout({ rate: 0.5 }));
    withDropout.add(tf.layers.dense({ units: 1 }));
    expect(denseNetworkOf(withDropout)).toBeUndefined();

    const selu = tf.sequential();
    selu.add(tf.layers.dense({ units: 4, inputShape: [3], activation: 'selu' }));
    expect(denseNetworkOf(selu)).toBeUndefined();

    // A NaN weight: skipping zero inputs would hide it (0 × NaN is NaN), so TF.js keeps such a model.
    const broken = tf.sequential();
    broken.add(tf.layers.dense({ units: 2, inputShape: [2] }));
    broken.setWeights([tf.tensor2d([1, Number.NaN, 0, 1], [2, 2]), tf.zeros([2])]);
    expect(denseNetworkOf(broken)).toBeUndefined();

    expect(denseNetworkOf({ layers: undefined } as never)).toBeUndefined();
    [withDropout, selu, broken].forEach((m) => m.dispose());
  });
});

describe('TF.js runner', () => {
  const pre: Preprocessor = {
    numeric: [
      { name: 'price', mean: 10, std: 2 },
      { name: 'promo', mean: 0.2, std: 0.4 },
    ],
    categorical: [{ name: 'store_id', vocabulary: ['S1', 'S2', 'S3'] }],
    target: { name: 'units', task: 'regression', mean: 40, std: 12 },
  } as Preprocessor;

  it('answers a small request in JS and a large batch in TF.js with the same numbers', async () => {
    const model = buildModel(tf, pre, {
      type: 'mlp',
      hiddenUnits: [32, 16],
      activation: 'relu',
      optimizer: 'adam',
      learningRate: 0.01,
      seed: 7,
    });
    const runner = new TfjsRunner(tf, model, pre);
    const instances = Array.from({ length: 40 }, (_, i) => ({
      price: 6 + (i % 13),
      promo: i % 2,
      store_id: `S${1 + (i % 3)}`,
    }));
    const batch = await runner.predict(instances); // > DENSE_JS_MAX_ROWS rows: TF.js
    for (let i = 0; i < instances.length; i += DENSE_JS_MAX_ROWS) {
      const small = await runner.predict(instances.slice(i, i + DENSE_JS_MAX_ROWS));
      small.forEach((value, k) => expect(Math.abs(value - batch[i + k]!)).toBeLessThan(1e-4 * Math.abs(batch[i + k]!)));
    }
    runner.dispose();
  });
});
