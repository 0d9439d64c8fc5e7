/** Buffers prediction records and writes them to Postgres in batches, for the monitors. */
import { predictions } from '../schema/deployments';
import type { Db } from '../storage/db';

export type PredictionRecord = typeof predictions.$inferInsert;

export class PredictionLog {
  private buffer: PredictionRecord[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly db: Db, private readonly maxBatch = 500, intervalMs = 250) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  add(records: PredictionRecord[]): void {
    this.buffer.push(...records);
    if (this.buffer.length >= this.maxBatch) void this.flush();
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      while (this.buffer.length > 0) {
        const batch = this.buffer.splice(0, this.maxBatch);
        try {
          await this.db.insert(predictions).values(batch);
        } catch (error) {
          // The log must never take serving down; a failed batch is reported and dropped.
          console.error(`prediction log: dropped ${batch.length} records: ${(error as Error).message}`);
        }
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
