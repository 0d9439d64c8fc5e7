/**
 * Prediction log retention in the serving process: every `everyMs`, rows older than `days` leave the prediction log
 * tables (store/predictions.ts sweeps in bounded batches, one process at a time across all serving processes).
 */
import type { Db } from '../storage/db';
import { sweepRetention, type RetentionResult } from '../store/predictions';

const DAY_MS = 86_400_000;

export interface RetentionSettings {
  /**
   * Rows older than this many days are deleted; 0 keeps everything. @default 30 (FLYWHEEL_PREDICTIONS_RETENTION_DAYS)
   */
  days: number;
  /** Time between sweeps. @default 1 hour */
  everyMs?: number;
  /** Time before the first sweep, so a starting process answers first. @default 1 minute */
  firstAfterMs?: number;
}

export class PredictionRetention {
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<RetentionResult>;
  private readonly stopping = new AbortController();

  constructor(
    private readonly db: Db,
    private readonly settings: RetentionSettings,
  ) {}

  /** Schedules the sweeps; does nothing when retention is off (0 days). */
  start(): void {
    if (this.settings.days <= 0) return;
    const every = this.settings.everyMs ?? 3_600_000;
    const next = (delay: number) => {
      this.timer = setTimeout(
        () =>
          void this.sweep()
            .catch((error: unknown) => console.error(`prediction retention: sweep failed: ${(error as Error).message}`))
            .finally(() => {
              if (!this.stopping.signal.aborted) next(every);
            }),
        delay,
      );
      this.timer.unref();
    };
    next(this.settings.firstAfterMs ?? 60_000);
  }

  /** One sweep now (a sweep already running is joined, not doubled). */
  sweep(now = Date.now()): Promise<RetentionResult> {
    this.sweeping ??= sweepRetention(this.db, {
      olderThan: new Date(now - this.settings.days * DAY_MS),
      signal: this.stopping.signal,
    })
      .then((result) => {
        const total = Object.values(result.deleted).reduce((a, b) => a + b, 0);
        if (total > 0)
          console.log(
            `prediction retention: deleted ${Object.entries(result.deleted)
              .filter(([, n]) => n > 0)
              .map(([table, n]) => `${n} ${table}`)
              .join(', ')} older than ${this.settings.days} days`,
          );
        return result;
      })
      .finally(() => {
        this.sweeping = undefined;
      });
    return this.sweeping;
  }

  /** Ends the schedule; a sweep in progress stops after its current batch. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    await this.sweeping?.catch(() => undefined);
  }
}
