/** Buffers prediction records and writes them to Postgres in batches, for the monitors. */
import type { Db } from '../storage/db';
import {
  insertPredictions,
  insertRequestErrors,
  insertShadowPredictions,
  recordLabels,
  type PredictionRecord,
  type RequestErrorRecord,
  type ShadowRecord,
} from '../store/predictions';
import { componentLogger } from '../observability/log';

const log = componentLogger('prediction-log');

export type { PredictionRecord } from '../store/predictions';

export class PredictionLog {
  private buffer: PredictionRecord[] = [];
  private errors: RequestErrorRecord[] = [];
  private shadows: ShadowRecord[] = [];
  /** Records given up on: Postgres stayed unreachable while more than `maxBuffered` waited. */
  dropped = 0;
  written = 0;
  /** Records buffered and not yet written (the `flywheel_prediction_log_backlog` gauge). */
  get backlog(): number {
    return this.buffer.length + this.errors.length + this.shadows.length;
  }
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly maxBatch = 500,
    intervalMs = 250,
    private readonly maxBuffered = 200_000,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** A refused or failed request, counted by the monitors' error rate. */
  addError(modelName: string | undefined, status: number, message: string, modelVersion?: number): void {
    this.errors.push({ modelName: modelName ?? '', status, message: message.slice(0, 500), modelVersion });
    if (this.errors.length >= this.maxBatch) void this.flush();
  }

  add(records: PredictionRecord[]): void {
    for (const record of records) this.buffer.push(record);
    // Traffic faster than Postgres takes it for long: memory stays bounded, and what is given up is counted.
    const over = this.buffer.length - this.maxBuffered;
    if (over > 0) {
      this.buffer.splice(0, over);
      this.dropped += over;
    }
    if (this.buffer.length >= this.maxBatch) void this.flush();
  }

  /** What a shadow model answered for requests the served model answered. */
  addShadow(records: ShadowRecord[]): void {
    for (const record of records) this.shadows.push(record);
    if (this.shadows.length >= this.maxBatch) void this.flush();
  }

  /**
   * Writes what is buffered. A batch Postgres refuses goes back to the front and is retried on the next tick, so a
   * database restart loses nothing; only past `maxBuffered` waiting records are the oldest dropped (and counted).
   */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      await this.drain(this.errors, (batch) => insertRequestErrors(this.db, batch), 'error records');
      await this.drain(this.shadows, (batch) => insertShadowPredictions(this.db, batch), 'shadow predictions');
      this.written += await this.drain(this.buffer, (batch) => insertPredictions(this.db, batch), 'predictions');
    });
    return this.flushing;
  }

  private async drain<T>(queue: T[], insert: (batch: T[]) => Promise<unknown>, what: string): Promise<number> {
    let written = 0;
    while (queue.length > 0) {
      const batch = queue.splice(0, this.maxBatch);
      try {
        await insert(batch);
        written += batch.length;
      } catch (error) {
        const code = String(
          (error as { code?: unknown; cause?: { code?: unknown } }).cause?.code ??
            (error as { code?: unknown }).code ??
            '',
        );
        if (/^2[23]/.test(code)) {
          // A data error (say a NUL byte in a string) is in some record: write the others one by one, drop that one.
          for (const record of batch) {
            try {
              await insert([record]);
              written++;
            } catch (single) {
              this.dropped++;
              log.error(`prediction log: dropped one of the ${what} Postgres refuses: ${(single as Error).message}`);
            }
          }
          continue;
        }
        queue.unshift(...batch);
        const over = queue.length - this.maxBuffered;
        if (over > 0) {
          queue.splice(0, over);
          this.dropped += over;
          log.error(
            `prediction log: dropped the ${over} oldest ${what}; Postgres refuses writes: ${(error as Error).message}`,
          );
        }
        break;
      }
    }
    return written;
  }

  /**
   * Ground truth for logged predictions, by request id. Ids with no logged prediction are returned, not stored;
   * a label sent again replaces the earlier one.
   */
  async recordLabels(
    entries: { requestId: string; label: string }[],
  ): Promise<{ accepted: number; unknown: string[] }> {
    // Labels join predictions by request id: write what is buffered first.
    await this.flush();
    return recordLabels(this.db, entries);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
