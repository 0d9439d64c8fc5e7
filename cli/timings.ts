/**
 * Queue wait vs run time per step of a pipeline, for `flywheel status`: from the server's timeline
 * (`GET /api/v1/pipelines/{id}/timeline`, built from the Temporal history); and across the last N pipelines, for
 * `flywheel status --queues` (`GET /api/v1/queue-waits`).
 */
import { ConfigError } from '../config/pipeline';
import { QUEUE_WAIT_PIPELINES, type StageQueueWait } from '../server/api/queueWaits';
import { api } from './api';
import type { Say } from './output';
import { table, when } from './output';

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

/** `GET /api/v1/queue-waits` (times as ISO strings). */
export interface QueueWaitReport {
  pipelines: number;
  oldestStartedAt: string | null;
  newestStartedAt: string | null;
  stages: StageQueueWait[];
}

export function printQueueWaits(report: QueueWaitReport, say: Say): void {
  if (!report.pipelines) {
    say('no pipelines found');
    return;
  }
  say(
    `queue wait (schedule → start) and run time per stage over ${report.pipelines} pipeline${report.pipelines === 1 ? '' : 's'}` +
      ` started ${when(report.oldestStartedAt)} … ${when(report.newestStartedAt)} UTC:`,
  );
  table(
    [
      ['stage', 'queue', 'count', 'wait p50', 'wait p95', 'wait max', 'run p95'],
      ...report.stages.map((s) => [
        s.stage,
        s.taskQueue,
        `${s.count}${s.retried ? ` (${s.retried} retried)` : ''}`,
        formatMs(s.queueWaitP50Ms),
        formatMs(s.queueWaitP95Ms),
        formatMs(s.queueWaitMaxMs),
        formatMs(s.runTimeP95Ms),
      ]),
    ],
    say,
  );
  if (report.stages.some((s) => s.retried))
    say("  retried activities' waits are left out: the history keeps only their last attempt's start");
}

/** `flywheel status --queues` flags (`last` as typed). */
export interface QueueWaitOptions {
  last?: string;
  model?: string;
  pipeline?: string;
  json?: boolean;
}

/** `flywheel status --queues`: the table, or the API's JSON with `--json`. */
export async function showQueueWaits(options: QueueWaitOptions, say: Say): Promise<void> {
  const last = options.last === undefined ? undefined : Number(options.last);
  if (last !== undefined && !(Number.isInteger(last) && last >= 1 && last <= QUEUE_WAIT_PIPELINES.max))
    throw new ConfigError(`--last must be a whole number from 1 to ${QUEUE_WAIT_PIPELINES.max}, not "${options.last}"`);
  const report = await api<QueueWaitReport>('GET', '/api/v1/queue-waits', undefined, {
    pipelines: last,
    model: options.model,
    pipeline: options.pipeline,
  });
  if (options.json) say(JSON.stringify(report, null, 2));
  else printQueueWaits(report, say);
}
