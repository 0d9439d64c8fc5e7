/**
 * /api/v1 queue waits across the fleet: the last N pipelines' histories folded per stage (activity type) and task
 * queue into how long tasks waited for a worker (p50, p95, max) and ran (p95) — where adding workers would help.
 */
import { isGrpcServiceError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { quantileSorted } from '../../ml/profiling/profile';
import { pipelineWorkflow } from '../../workflows/pipeline';
import { MODEL_KEY, PIPELINE_KEY } from '../../workflows/searchAttributes';
import { route, type RouteSpec } from '../route';
import { historySteps, type TimelineStep } from './timelines';

/** Pipelines read when the caller names no count, and the most one call reads. */
export const QUEUE_WAIT_PIPELINES = { default: 50, max: 500 } as const;

/** Histories fetched at once: enough to hide the round trips, few enough to leave Temporal's frontend to workers. */
const HISTORY_CONCURRENCY = 4;

export interface StageQueueWait {
  /** The activity type. */
  stage: string;
  taskQueue: string;
  /** Activities that started (and so have a queue wait). */
  count: number;
  /**
   * Of those, the ones retried: the history keeps only the last attempt's start, so their schedule → start spans the
   * earlier attempts and backoffs and is left out of the queue-wait figures.
   */
  retried: number;
  /** Schedule → start, over first attempts; null when every one was retried. */
  queueWaitP50Ms: number | null;
  queueWaitP95Ms: number | null;
  queueWaitMaxMs: number | null;
  /** Start → close of the last attempt, over the closed ones; null while none has closed. */
  runTimeP95Ms: number | null;
}

const quantile = (sorted: number[], q: number) => (sorted.length ? Math.round(quantileSorted(sorted, q)) : null);

/** Folds activity steps (any pipelines') into one row per activity type and task queue, in first-seen order. */
export function queueWaitsOf(steps: TimelineStep[]): StageQueueWait[] {
  type Samples = { stage: string; taskQueue: string; retried: number; waits: number[]; runs: number[] };
  const byStage = new Map<string, Samples>();
  for (const step of steps) {
    if (step.kind !== 'activity' || step.scheduledAt === null || step.startedAt === null) continue;
    const taskQueue = step.taskQueue ?? '';
    const key = `${step.name}\u0000${taskQueue}`;
    const samples = byStage.get(key) ?? { stage: step.name, taskQueue, retried: 0, waits: [], runs: [] };
    byStage.set(key, samples);
    if ((step.attempt ?? 1) > 1) samples.retried++;
    else samples.waits.push(Math.max(0, step.startedAt - step.scheduledAt));
    if (step.closedAt !== null) samples.runs.push(Math.max(0, step.closedAt - step.startedAt));
  }
  return [...byStage.values()].map(({ stage, taskQueue, retried, waits, runs }) => {
    waits.sort((a, b) => a - b);
    runs.sort((a, b) => a - b);
    return {
      stage,
      taskQueue,
      count: waits.length + retried,
      retried,
      queueWaitP50Ms: quantile(waits, 0.5),
      queueWaitP95Ms: quantile(waits, 0.95),
      queueWaitMaxMs: waits.length ? waits[waits.length - 1]! : null,
      runTimeP95Ms: quantile(runs, 0.95),
    };
  });
}

/** Runs `work` over `items`, at most `limit` at a time, keeping their order. */
async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

const quote = (value: string) => `'${value.replace(/[\\']/g, '\\$&')}'`;

/** The newest `count` pipelines (of a model or pipeline when named): their ids and start times, from visibility. */
async function recentPipelines(
  client: Client,
  filter: { count: number; model?: string; pipeline?: string },
): Promise<{ workflowId: string; runId: string; startedAt: Date }[]> {
  const clauses = [`WorkflowType = '${pipelineWorkflow.name}'`];
  if (filter.model) clauses.push(`${MODEL_KEY.name} = ${quote(filter.model)}`);
  if (filter.pipeline) clauses.push(`${PIPELINE_KEY.name} = ${quote(filter.pipeline)}`);
  const found = [];
  // Pages are fetched as the loop asks: it stops after `count`, whatever the namespace holds.
  for await (const w of client.workflow.list({ query: clauses.join(' AND '), pageSize: Math.min(filter.count, 100) })) {
    found.push({ workflowId: w.workflowId, runId: w.runId, startedAt: w.startTime });
    if (found.length >= filter.count) break;
  }
  return found;
}

export const queueWaitRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: '/api/v1/queue-waits',
    summary:
      "Queue wait (schedule → start: p50, p95, max) and run time (p95) per stage and task queue over the last N pipelines' histories",
    tags: ['Pipelines'],
    scope: 'read',
    query: z
      .object({
        pipelines: z.coerce.number().int().min(1).max(QUEUE_WAIT_PIPELINES.max).optional(),
        model: z.string().min(1).optional(),
        pipeline: z.string().min(1).optional(),
      })
      .strict(),
    handler: async ({ query, deps }) => {
      const client = await deps.temporal();
      const pipelines = await recentPipelines(client, {
        count: query.pipelines ?? QUEUE_WAIT_PIPELINES.default,
        model: query.model,
        pipeline: query.pipeline,
      });
      const histories = await mapLimited(pipelines, HISTORY_CONCURRENCY, (p) =>
        historySteps(client, p.workflowId, p.runId).catch((error: unknown) => {
          // NOT_FOUND: deleted (retention) between the listing and now, so nothing to count.
          if (isGrpcServiceError(error) && error.code === 5) return null;
          throw error;
        }),
      );
      const read = pipelines.filter((_, i) => histories[i] !== null);
      const starts = read.map((p) => p.startedAt.getTime());
      return {
        pipelines: read.length,
        oldestStartedAt: starts.length ? new Date(Math.min(...starts)) : null,
        newestStartedAt: starts.length ? new Date(Math.max(...starts)) : null,
        stages: queueWaitsOf(histories.flatMap((steps) => steps ?? [])),
      };
    },
  }),
];
