/**
 * Adaptive batching: requests for the same model that arrive in the same turn of the event loop (or while a batch
 * runs) are predicted as one tensor. A lone request is predicted at once, so batching adds no wait under light load.
 * Each request is validated and encoded alone first: one bad request never fails the others.
 */
import { decodeRegression, featureWidth, type Preprocessor } from '../ml/preprocess';
import { encodeInstances, outputUnits, predictEncoded } from '../training/model';
import type { TfModule } from '../training/backend';
import type { LoadedModel } from './models';

export interface Prediction {
  values: (number | string)[];
  probabilities?: number[][];
  /** Numbers for the prediction log: the value, or the predicted class index. */
  logged: number[];
  /** Time the batch holding this request took to predict. */
  latencyMs: number;
}

/** Model outputs (n × units) to answers: values in the target's units, or class names with probabilities. */
export function decodeOutputs(pre: Preprocessor, outputs: Float32Array, rows: number): Omit<Prediction, 'latencyMs'> {
  const target = pre.target;
  if (target.task === 'regression') {
    const values = Array.from(outputs.subarray(0, rows), (v) => decodeRegression(pre, v));
    return { values, logged: values };
  }
  const classes = outputUnits(pre);
  const values: string[] = [];
  const logged: number[] = [];
  const probabilities: number[][] = [];
  for (let i = 0; i < rows; i++) {
    const row = Array.from(outputs.subarray(i * classes, (i + 1) * classes));
    let best = 0;
    for (let k = 1; k < classes; k++) if (row[k]! > row[best]!) best = k;
    values.push(target.classes[best]!);
    logged.push(best);
    probabilities.push(row);
  }
  return { values, probabilities, logged };
}

/** One request's rows, predicted at once (no batching): the in-process path and the limit the benchmark measures. */
export function predictNow(tf: TfModule, served: LoadedModel, instances: Record<string, unknown>[]): Prediction {
  const started = performance.now();
  const pre = served.preprocessor;
  const outputs = predictEncoded(
    tf,
    served.model,
    encodeInstances(pre, instances),
    instances.length,
    featureWidth(pre),
  );
  return { ...decodeOutputs(pre, outputs, instances.length), latencyMs: performance.now() - started };
}

interface Pending {
  encoded: Float32Array;
  rows: number;
  resolve(prediction: Prediction): void;
  reject(error: unknown): void;
}

export class PredictBatcher {
  private readonly queues = new Map<LoadedModel['model'], { served: LoadedModel; pending: Pending[] }>();
  private scheduled = false;

  constructor(
    private readonly tf: () => TfModule,
    private readonly maxRows = 512,
  ) {}

  /** Throws `FeatureError` at once for a bad request; otherwise resolves when its batch has run. */
  predict(served: LoadedModel, instances: Record<string, unknown>[]): Promise<Prediction> {
    const encoded = encodeInstances(served.preprocessor, instances);
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(served.model);
      if (!queue) this.queues.set(served.model, (queue = { served, pending: [] }));
      queue.pending.push({ encoded, rows: instances.length, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const queues = [...this.queues.values()];
    this.queues.clear();
    for (const { served, pending } of queues) {
      for (let start = 0; start < pending.length;) {
        // Whole requests up to maxRows rows per batch (a single large request runs alone).
        let end = start,
          rows = 0;
        while (end < pending.length && (end === start || rows + pending[end]!.rows <= this.maxRows))
          rows += pending[end++]!.rows;
        this.run(served, pending.slice(start, end), rows);
        start = end;
      }
    }
  }

  private run(served: LoadedModel, batch: Pending[], rows: number): void {
    const pre = served.preprocessor;
    const width = featureWidth(pre);
    try {
      const started = performance.now();
      let encoded: Float32Array;
      if (batch.length === 1) encoded = batch[0]!.encoded;
      else {
        encoded = new Float32Array(rows * width);
        let offset = 0;
        for (const p of batch) {
          encoded.set(p.encoded, offset);
          offset += p.encoded.length;
        }
      }
      const outputs = predictEncoded(this.tf(), served.model, encoded, rows, width);
      const latencyMs = performance.now() - started;
      const units = outputUnits(pre);
      let row = 0;
      for (const p of batch) {
        p.resolve({ ...decodeOutputs(pre, outputs.subarray(row * units, (row + p.rows) * units), p.rows), latencyMs });
        row += p.rows;
      }
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }
}
