/** The deterministic train / validation / holdout split shared by training and evaluation. */
import { seededRandom, seedFromString, shuffledIndices } from '../ml/random';

export interface Split {
  train: Uint32Array;
  validation: Uint32Array;
  holdout: Uint32Array;
}

/**
 * Same rows, seed and dataset hash → the same split, on every worker and every retry.
 * The validation slice (10 % of the non-holdout rows) drives per-epoch val_loss; the holdout is evaluation's alone.
 */
export function splitRows(rowCount: number, holdoutFraction: number, seed: number, datasetHash: string): Split {
  const order = shuffledIndices(rowCount, seededRandom(seed ^ seedFromString(datasetHash)));
  const holdoutSize = Math.max(1, Math.round(rowCount * holdoutFraction));
  const rest = rowCount - holdoutSize;
  const validationSize = rest >= 20 ? Math.round(rest * 0.1) : 0;
  return {
    holdout: order.slice(0, holdoutSize),
    validation: order.slice(holdoutSize, holdoutSize + validationSize),
    train: order.slice(holdoutSize + validationSize),
  };
}
