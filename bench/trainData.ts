/**
 * bench:train, the shared problem: a deterministic synthetic regression table and the one set of training
 * parameters every side uses. bench/train.ts (the parent, which also writes the encoded matrices for PyTorch) and
 * bench/trainChild.ts (one TF.js backend per process) both import it, so each regenerates exactly the same table.
 */
import type { RawColumns } from '../training/preprocess';
import { normal, seededRandom } from '../ml/random';
import { splitRows, type Split } from '../training/split';
import type { TrainingParams } from '../training/fit';

export const FEATURES = Array.from({ length: 20 }, (_, i) => `x${String(i + 1).padStart(2, '0')}`);
export const TARGET = 'y';
export const DATA_SEED = 20240611;
/** Stands in for the dataset version's content hash, which seeds the split together with params.seed. */
export const DATASET_HASH = 'bench-train-synthetic-v1';

export function trainingParams(epochs: number): TrainingParams {
  return {
    task: 'regression',
    target: TARGET,
    features: { numeric: [...FEATURES], categorical: [] },
    model: { type: 'mlp', hiddenUnits: [64, 64], activation: 'relu' },
    epochs,
    batchSize: 256,
    learningRate: 0.001,
    optimizer: 'adam',
    seed: 42,
    holdoutFraction: 0.2,
  };
}

/**
 * `rows` rows of raw strings, as CSV would deliver them: 20 numeric features on different scales (normal or
 * uniform, 4 decimals) and a target that is linear in all of them plus a few nonlinear terms and noise, so the MLP
 * has something to learn. Same rows and seed → byte-identical columns.
 */
export function generateColumns(rows: number, seed = DATA_SEED): RawColumns {
  const random = seededRandom(seed);
  const scales = FEATURES.map((_, j) => ({ mean: (j % 5) * 10 - 20, spread: 0.5 + (j % 7), isNormal: j % 3 !== 2 }));
  const weights = FEATURES.map(() => 2 * random() - 1);
  const columns: RawColumns = Object.fromEntries([...FEATURES, TARGET].map((name) => [name, new Array<string>(rows)]));
  const z = new Float64Array(FEATURES.length);
  for (let r = 0; r < rows; r++) {
    let y = 0;
    for (let j = 0; j < FEATURES.length; j++) {
      const { mean, spread, isNormal } = scales[j]!;
      z[j] = isNormal ? normal(random) : Math.sqrt(3) * (2 * random() - 1);
      columns[FEATURES[j]!]![r] = (mean + spread * z[j]!).toFixed(4);
      y += weights[j]! * z[j]!;
    }
    y +=
      1.5 * Math.sin(2 * z[0]!) +
      z[1]! * z[2]! -
      0.5 * Math.abs(z[3]!) +
      0.8 * Math.max(0, z[4]! * z[5]!) +
      0.3 * normal(random);
    columns[TARGET]![r] = (100 + 10 * y).toFixed(4);
  }
  return columns;
}

export function benchSplit(rows: number, params: TrainingParams): Split {
  return splitRows(rows, params.holdoutFraction, params.seed, DATASET_HASH);
}
