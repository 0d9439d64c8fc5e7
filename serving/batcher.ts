/**
 * Adaptive batching: requests for the same model that arrive in the same turn of the event loop (or while a batch
 * for that model runs) are predicted as one batch. A lone request is predicted at once, so batching adds no wait
 * under light load. Each request is validated and encoded alone first: one bad request never fails the others, and a
 * request the model answers NaN for fails alone.
 */
import {
  concatEncoded,
  describeNonFinite,
  firstNonFinite,
  NonFiniteOutputError,
  type EncodedRows,
  type ModelRunner,
} from '../inference/runner';
import type { LoadedModel } from './models';

export interface Prediction {
  values: (number | string)[];
  probabilities?: number[][];
  /** Numbers for the prediction log: the value, or the predicted class index. */
  logged: number[];
  /** Time the batch holding this request took to predict. */
  latencyMs: number;
}

/** Model outputs (n × width) to answers: values in the target's units, or class names with probabilities. */
export function decodeOutputs(runner: ModelRunner, outputs: Float64Array, rows: number): Omit<Prediction, 'latencyMs'> {
  const target = runner.target;
  if (target.task === 'regression') {
    const values = Array.from(outputs.subarray(0, rows));
    return { values, logged: values };
  }
  const classes = runner.width;
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

/** Answers for one request's outputs, or the error naming the version when the model answered NaN or ±Infinity. */
function answer(served: LoadedModel, outputs: Float64Array, rows: number, latencyMs: number): Prediction {
  const bad = firstNonFinite(outputs, served.runner.width);
  if (bad)
    throw new NonFiniteOutputError(
      served.name,
      served.version,
      describeNonFinite(served.runner, outputs, bad, `instance ${bad.row}`),
    );
  return { ...decodeOutputs(served.runner, outputs, rows), latencyMs };
}

/** One request's rows, predicted at once (no batching): the in-process path and the limit the benchmark measures. */
export async function predictNow(served: LoadedModel, instances: Record<string, unknown>[]): Promise<Prediction> {
  const started = performance.now();
  const outputs = await served.runner.predict(instances);
  return answer(served, outputs, instances.length, performance.now() - started);
}

interface Pending {
  encoded: EncodedRows;
  resolve(prediction: Prediction): void;
  reject(error: unknown): void;
}

export class PredictBatcher {
  private readonly queues = new Map<ModelRunner, { served: LoadedModel; pending: Pending[] }>();
  /** Models with a batch running: what arrives meanwhile waits for it and runs as the next batch. */
  private readonly busy = new Set<ModelRunner>();
  private scheduled = false;

  constructor(private readonly maxRows = 512) {}

  /** Throws `FeatureError` at once for a bad request; otherwise resolves when its batch has run. */
  predict(served: LoadedModel, instances: Record<string, unknown>[]): Promise<Prediction> {
    const encoded = served.runner.encode(instances);
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(served.runner);
      if (!queue) this.queues.set(served.runner, (queue = { served, pending: [] }));
      queue.pending.push({ encoded, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    for (const [runner, queue] of [...this.queues]) {
      if (this.busy.has(runner)) continue;
      this.queues.delete(runner);
      void this.drain(queue.served, queue.pending);
    }
  }

  private async drain(served: LoadedModel, pending: Pending[]): Promise<void> {
    this.busy.add(served.runner);
    try {
      for (let start = 0; start < pending.length;) {
        // Whole requests up to maxRows rows per batch (a single large request runs alone).
        let end = start,
          rows = 0;
        while (end < pending.length && (end === start || rows + pending[end]!.encoded.rows <= this.maxRows))
          rows += pending[end++]!.encoded.rows;
        await this.run(served, pending.slice(start, end));
        start = end;
      }
    } finally {
      this.busy.delete(served.runner);
      if (this.queues.has(served.runner)) this.schedule();
    }
  }

  private async run(served: LoadedModel, batch: Pending[]): Promise<void> {
    const { runner } = served;
    let outputs: Float64Array;
    let latencyMs: number;
    try {
      const started = performance.now();
      outputs = await runner.run(concatEncoded(batch.map((p) => p.encoded)));
      latencyMs = performance.now() - started;
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    let row = 0;
    for (const p of batch) {
      const rows = p.encoded.rows;
      try {
        p.resolve(answer(served, outputs.subarray(row * runner.width, (row + rows) * runner.width), rows, latencyMs));
      } catch (error) {
        p.reject(error);
      }
      row += rows;
    }
  }
}
