/** Buffers prediction records and writes them to Postgres in batches, for the monitors. */
import { inArray, sql } from 'drizzle-orm';
import { labels, predictions, requestErrors, shadowPredictions } from '../schema/deployments';
import type { Db } from '../storage/db';

export type PredictionRecord = typeof predictions.$inferInsert;

/**
 * One JSON parameter per batch, unpacked by Postgres: building a drizzle multi-row INSERT cost ~13 µs a row on the
 * event loop (a 500-row flush blocked serving for ~7 ms); `JSON.stringify` costs well under 1 µs a row.
 */
const INSERT_PREDICTIONS = `INSERT INTO predictions (request_id, model_name, model_version, inputs, prediction, latency_ms)
  SELECT request_id, model_name, model_version, inputs, prediction, latency_ms
  FROM jsonb_to_recordset($1::jsonb) AS t(request_id text, model_name text, model_version int, inputs jsonb, prediction float8, latency_ms real)`;

const predictionRow = (r: PredictionRecord) => ({
  request_id: r.requestId, model_name: r.modelName, model_version: r.modelVersion, inputs: r.inputs, prediction: r.prediction, latency_ms: r.latencyMs,
});

export class PredictionLog {
  private buffer: PredictionRecord[] = [];
  private errors: (typeof requestErrors.$inferInsert)[] = [];
  private shadows: (typeof shadowPredictions.$inferInsert)[] = [];
  /** Records given up on: Postgres stayed unreachable while more than `maxBuffered` waited. */
  dropped = 0;
  written = 0;
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly db: Db, private readonly maxBatch = 500, intervalMs = 250, private readonly maxBuffered = 200_000) {
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
  addShadow(records: (typeof shadowPredictions.$inferInsert)[]): void {
    for (const record of records) this.shadows.push(record);
    if (this.shadows.length >= this.maxBatch) void this.flush();
  }

  /**
   * Writes what is buffered. A batch Postgres refuses goes back to the front and is retried on the next tick, so a
   * database restart loses nothing; only past `maxBuffered` waiting records are the oldest dropped (and counted).
   */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      await this.drain(this.errors, (batch) => this.db.insert(requestErrors).values(batch), 'error records');
      await this.drain(this.shadows, (batch) => this.db.insert(shadowPredictions).values(batch), 'shadow predictions');
      this.written += await this.drain(this.buffer, (batch) => this.db.$client.query(INSERT_PREDICTIONS, [JSON.stringify(batch.map(predictionRow))]), 'predictions');
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
        const code = String((error as { code?: unknown; cause?: { code?: unknown } }).cause?.code ?? (error as { code?: unknown }).code ?? '');
        if (/^2[23]/.test(code)) {
          // A data error (say a NUL byte in a string) is in some record: write the others one by one, drop that one.
          for (const record of batch) {
            try {
              await insert([record]);
              written++;
            } catch (single) {
              this.dropped++;
              console.error(`prediction log: dropped one of the ${what} Postgres refuses: ${(single as Error).message}`);
            }
          }
          continue;
        }
        queue.unshift(...batch);
        const over = queue.length - this.maxBuffered;
        if (over > 0) {
          queue.splice(0, over);
          this.dropped += over;
          console.error(`prediction log: dropped the ${over} oldest ${what}; Postgres refuses writes: ${(error as Error).message}`);
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
