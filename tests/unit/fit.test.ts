import { describe, expect, it } from 'vitest';
import { splitRows } from '../../training/split';
import { loadTf } from '../../training/backend';
import { fitModel, TrainingInputError, type TrainingParams } from '../../training/fit';
import { disposeModel } from '../../training/model';

const n = 400;
const columns = {
  x: Array.from({ length: n }, (_, i) => String(i % 17)),
  c: Array.from({ length: n }, (_, i) => `k${i % 3}`),
  y: Array.from({ length: n }, (_, i) => String((i % 17) * 2 + (i % 3))),
};
const params: TrainingParams = {
  task: 'regression',
  target: 'y',
  features: { numeric: ['x'], categorical: ['c'] },
  model: { type: 'mlp', hiddenUnits: [8], activation: 'relu' },
  epochs: 3,
  batchSize: 64,
  learningRate: 0.01,
  optimizer: 'adam',
  seed: 1,
  holdoutFraction: 0.2,
};

describe('fitModel', () => {
  it('trains deterministically and frees every tensor, optimizer state included', async () => {
    const { tf } = await loadTf({ pin: 'cpu' });
    const before = tf.memory().numTensors;
    const losses: number[][] = [];
    for (let round = 0; round < 2; round++) {
      const seen: number[] = [];
      const fit = await fitModel(tf, columns, splitRows(n, 0.2, 1, 'hash'), params, {
        onEpoch: async ({ loss }) => {
          seen.push(loss);
        },
      });
      expect(fit.epochs).toBe(3);
      disposeModel(fit.model);
      losses.push(seen);
    }
    expect(losses[1]).toEqual(losses[0]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names an empty training split', async () => {
    const { tf } = await loadTf({ pin: 'cpu' });
    const split = splitRows(n, 0.2, 1, 'hash');
    await expect(fitModel(tf, columns, { ...split, train: new Uint32Array(0) }, params)).rejects.toThrow(
      TrainingInputError,
    );
  });
});
