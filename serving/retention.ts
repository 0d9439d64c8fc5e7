/**
 * Retention in the serving process: every `everyMs`, rows older than `days` leave the prediction log tables
 * (store/predictions.ts sweeps in bounded batches, one process at a time across all serving processes), and ended
 * runs' training checkpoints older than `checkpoints.days` leave the object store (training/checkpointRetention.ts).
 */
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';
import { sweepRetention, type RetentionResult } from '../store/predictions';
import { sweepCheckpoints, type CheckpointSweepResult } from '../training/checkpointRetention';
import { componentLogger } from '../observability/log';

const DAY_MS = 86_400_000;
const log = componentLogger('retention');

export interface RetentionSettings {
  /**
   * Rows older than this many days are deleted; 0 keeps everything. @default 30 (FLYWHEEL_PREDICTIONS_RETENTION_DAYS)
   */
  days: number;
  /**
   * Checkpoints of runs that ended more than `days` days ago are deleted from `objects`; 0 (or none given) keeps them.
   * @default 7 days in the serving process (FLYWHEEL_CHECKPOINT_RETENTION_DAYS)
   */
  checkpoints?: { days: number; objects: ObjectStore };
  /** Time between sweeps. @default 1 hour */
  everyMs?: number;
  /** Time before the first sweep, so a starting process answers first. @default 1 minute */
  firstAfterMs?: number;
}

export interface SweepResult extends RetentionResult {
  /** Absent when checkpoint retention is off. */
  checkpoints?: CheckpointSweepResult;
}

export class PredictionRetention {
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<SweepResult>;
  private readonly stopping = new AbortController();

  constructor(
    private readonly db: Db,
    private readonly settings: RetentionSettings,
  ) {}

  private get checkpointDays(): number {
    return this.settings.checkpoints?.days ?? 0;
  }

  /** Schedules the sweeps; does nothing when both retentions are off (0 days). */
  start(): void {
    if (this.settings.days <= 0 && this.checkpointDays <= 0) return;
    const every = this.settings.everyMs ?? 3_600_000;
    const next = (delay: number) => {
      this.timer = setTimeout(
        () =>
          void this.sweep()
            .catch((error: unknown) =>
              log.error({ err: error }, `retention: sweep failed: ${(error as Error).message}`),
            )
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
  sweep(now = Date.now()): Promise<SweepResult> {
    this.sweeping ??= this.sweepOnce(now).finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepOnce(now: number): Promise<SweepResult> {
    const result: SweepResult =
      this.settings.days > 0
        ? await sweepRetention(this.db, {
            olderThan: new Date(now - this.settings.days * DAY_MS),
            signal: this.stopping.signal,
          })
        : { deleted: {} as RetentionResult['deleted'] };
    const deleted = Object.entries(result.deleted).filter(([, n]) => n > 0);
    if (deleted.length)
      log.info(
        { deleted: result.deleted, days: this.settings.days },
        `prediction retention: deleted ${deleted.map(([table, n]) => `${n} ${table}`).join(', ')} older than ${this.settings.days} days`,
      );
    const { checkpoints } = this.settings;
    if (checkpoints && checkpoints.days > 0 && !this.stopping.signal.aborted) {
      result.checkpoints = await sweepCheckpoints(this.db, checkpoints.objects, {
        olderThan: new Date(now - checkpoints.days * DAY_MS),
        signal: this.stopping.signal,
      });
      if (result.checkpoints.runs > 0)
        log.info(
          { ...result.checkpoints, days: checkpoints.days },
          `checkpoint retention: deleted ${result.checkpoints.objects} checkpoint objects of ${result.checkpoints.runs} runs that ended more than ${checkpoints.days} days ago`,
        );
    }
    return result;
  }

  /** Ends the schedule; a sweep in progress stops after its current batch. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    await this.sweeping?.catch(() => undefined);
  }
}
