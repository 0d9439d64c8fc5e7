/**
 * Profiles canonical CSV on worker threads, each taking a share of the columns, while the calling thread keeps
 * parsing, hashing and writing. Same result as `ProfileBuilder` on one thread (columns sample independently).
 */
import { Worker } from 'node:worker_threads';
import type { ColumnProfile } from './profile';

const IN_FLIGHT = 32;

/** A record whose field count differs from the header's, found on a profiling thread. */
export class RecordWidthError extends Error {
  constructor(
    readonly line: number,
    readonly fields: number,
    readonly width: number,
  ) {
    super(`line ${line} has ${fields} fields, the header has ${width}`);
    this.name = 'RecordWidthError';
  }
}

export class ParallelProfiler {
  private readonly workers: Worker[] = [];
  private readonly results: ColumnProfile[][] = [];
  private readonly groups: number[][] = [];
  private inFlight = 0;
  private failure: Error | undefined;
  private waiting: (() => void) | undefined;
  private finished: Promise<void>[] = [];
  /** Per thread: settles once it has loaded (or exited). Terminating a thread still loading aborts the process. */
  private readonly loaded: Promise<void>[] = [];

  constructor(names: string[], threads: number) {
    const count = Math.max(1, Math.min(threads, names.length));
    for (let w = 0; w < count; w++) this.groups.push(names.map((_, i) => i).filter((i) => i % count === w));
    for (const [w, group] of this.groups.entries()) {
      const worker = new Worker(new URL('./profileWorker.mjs', import.meta.url), {
        workerData: { names: group.map((i) => names[i]), positions: group, width: names.length },
      });
      this.workers.push(worker);
      let loaded!: () => void;
      this.loaded.push(new Promise<void>((resolve) => (loaded = resolve)));
      this.finished.push(
        new Promise<void>((resolve, reject) => {
          type Reply =
            | { type: 'ready' }
            | { type: 'ack' }
            | { type: 'done'; profiles: ColumnProfile[] }
            | { type: 'error'; message: string }
            | { type: 'width'; line: number; fields: number };
          worker.on('message', (message: Reply) => {
            if (message.type === 'ack') {
              this.inFlight--;
              if (this.inFlight <= IN_FLIGHT * count && this.waiting) {
                const go = this.waiting;
                this.waiting = undefined;
                go();
              }
            } else if (message.type === 'done') {
              this.results[w] = message.profiles;
              resolve();
            } else if (message.type === 'ready') loaded();
            else if (message.type === 'width')
              this.fail(new RecordWidthError(message.line, message.fields, names.length), reject);
            else this.fail(new Error(`profiling thread: ${message.message}`), reject);
          });
          worker.on('error', (error) => this.fail(error, reject));
          worker.on('exit', (code) => {
            loaded();
            if (!this.results[w])
              this.fail(new Error(`profiling thread exited (code ${code}) before it finished`), reject);
          });
        }),
      );
    }
    // Settled before use; keeps an early failure from being an unhandled rejection.
    for (const done of this.finished) done.catch(() => undefined);
  }

  private fail(error: Error, reject: (error: Error) => void): void {
    this.failure ??= error;
    reject(error);
    const go = this.waiting;
    this.waiting = undefined;
    go?.();
  }

  /**
   * Hands a chunk of canonical CSV (header included, in order) to every thread. `firstLine` > 0 marks lines nobody
   * parsed yet: the threads check their width and report the file line of a ragged one.
   */
  feed(chunk: Buffer, firstLine = 0): void {
    if (this.failure) throw this.failure;
    const shared = new SharedArrayBuffer(chunk.length);
    new Uint8Array(shared).set(chunk);
    for (const worker of this.workers) {
      worker.postMessage({ type: 'chunk', data: shared, length: chunk.length, firstLine });
      this.inFlight++;
    }
  }

  /** Resolves once the threads have caught up enough: keeps memory bounded when they are slower than the reader. */
  ready(): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.inFlight <= IN_FLIGHT * this.workers.length) return undefined;
    return new Promise<void>((resolve) => (this.waiting = resolve));
  }

  async finish(): Promise<ColumnProfile[]> {
    for (const worker of this.workers) worker.postMessage({ type: 'end' });
    try {
      await Promise.all(this.finished);
    } finally {
      await this.close();
    }
    const out: ColumnProfile[] = [];
    this.groups.forEach((group, w) => group.forEach((column, k) => (out[column] = this.results[w]![k]!)));
    return out;
  }

  /** Ends the threads, each once it has loaded: an early failure of the input can come within milliseconds. */
  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker, w) => {
        await this.loaded[w];
        await worker.terminate();
      }),
    );
  }
}
