/**
 * Queue wait vs run time per step of a pipeline, for `flywheel status`: from the server's timeline
 * (`GET /api/v1/pipelines/{id}/timeline`, built from the Temporal history).
 */
import type { Say } from './output';
import { table } from './output';

/** One activity or child workflow of the timeline (times in ms since the epoch). */
export interface TimelineStep {
  kind: 'activity' | 'child';
  name: string;
  taskQueue: string | null;
  scheduledAt: number | null;
  startedAt: number | null;
  closedAt: number | null;
  status: string;
}

export interface StepTiming {
  name: string;
  taskQueue: string;
  /** Scheduled → started, summed over the step's scheduled tasks; null while none has started. */
  queueWaitMs: number | null;
  /** Started → closed (or → `now` while running), summed. */
  runMs: number | null;
  /** How many times it was scheduled (a retried activity keeps one entry; a step called twice has two). */
  count: number;
  status: string;
}

/** Folds timeline steps into one line per step name and queue, in first-scheduled order. */
export function stepTimings(steps: TimelineStep[], now = Date.now()): StepTiming[] {
  const byStep = new Map<string, StepTiming>();
  const add = (total: number | null, ms: number | null) => (ms === null ? total : (total ?? 0) + Math.max(0, ms));
  for (const step of steps) {
    const key = `${step.name}\u0000${step.taskQueue ?? ''}`;
    const timing = byStep.get(key) ?? {
      name: step.name,
      taskQueue: step.taskQueue ?? '',
      queueWaitMs: null,
      runMs: null,
      count: 0,
      status: step.status,
    };
    timing.count++;
    timing.status = step.status;
    if (step.scheduledAt !== null && step.startedAt !== null)
      timing.queueWaitMs = add(timing.queueWaitMs, step.startedAt - step.scheduledAt);
    if (step.startedAt !== null) timing.runMs = add(timing.runMs, (step.closedAt ?? now) - step.startedAt);
    byStep.set(key, timing);
  }
  return [...byStep.values()];
}

/** `1.234s`, `87ms`, or `-` when not known yet. */
export function formatMs(ms: number | null): string {
  if (ms === null) return '-';
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 3 : 1)}s`;
}

export function printTimings(timings: StepTiming[], say: Say): void {
  if (!timings.length) return;
  say('  queue wait vs run time per step (from the Temporal history):');
  table(
    [
      ['  step', 'queue', 'queue wait', 'run time', 'status'],
      ...timings.map((t) => [
        `  ${t.name}${t.count > 1 ? ` ×${t.count}` : ''}`,
        t.taskQueue,
        formatMs(t.queueWaitMs),
        formatMs(t.runMs),
        t.status,
      ]),
    ],
    say,
  );
}
