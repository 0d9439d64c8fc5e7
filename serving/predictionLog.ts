/** Buffers prediction records and writes them to Postgres in batches, for the monitors. */
import { inArray, sql } from 'drizzle-orm';
import { labels, predictions, requestErrors } from '../schema/deployments';
import type { Db } from '../storage/db';

export type PredictionRecord = typeof predictions.$inferInsert;

export class PredictionLog {
  private buffer: PredictionRecord[] = [];
  private errors: (typeof requestErrors.$inferInsert)[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly db: Db, private readonly maxBatch = 500, intervalMs = 250) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** A refused or failed request, counted by the monitors' error rate. */
  addError(modelName: string | undefined, status: number, message: string): void {
    this.errors.push({ modelName: modelName ?? '', status, message: message.slice(0, 500) });
    if (this.errors.length >= this.maxBatch) void this.flush();
  }

  add(records: PredictionRecord[]): void {
    this.buffer.push(...records);
    if (this.buffer.length >= this.maxBatch) void this.flush();
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.errors.length > 0) {
        const failed = this.errors.splice(0, this.errors.length);
        await this.db.insert(requestErrors).values(failed).catch((error: Error) => console.error(`prediction log: dropped ${failed.length} error records: ${error.message}`));
      }
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

  /**
   * Ground truth for logged predictions, by request id. Ids with no logged prediction are returned, not stored;
   * a label sent again replaces the earlier one.
   */
  async recordLabels(entries: { requestId: string; label: string }[]): Promise<{ accepted: number; unknown: string[] }> {
    await this.flush();
    const ids = [...new Set(entries.map((e) => e.requestId))];
    const known = new Map<string, string>();
    for (let i = 0; i < ids.length; i += 1000) {
      const rows = await this.db.select({ requestId: predictions.requestId, modelName: predictions.modelName }).from(predictions).where(inArray(predictions.requestId, ids.slice(i, i + 1000)));
      for (const row of rows) known.set(row.requestId, row.modelName);
    }
    const accepted = entries.filter((e) => known.has(e.requestId)).map((e) => ({ requestId: e.requestId, label: e.label, modelName: known.get(e.requestId)! }));
    if (accepted.length) {
      await this.db.insert(labels).values(accepted)
        .onConflictDoUpdate({ target: labels.requestId, set: { label: sql`excluded.label`, receivedAt: new Date() } });
    }
    return { accepted: accepted.length, unknown: ids.filter((id) => !known.has(id)) };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
