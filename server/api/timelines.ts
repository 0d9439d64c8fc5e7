/**
 * /api/v1 a pipeline's timeline for the UI, from its Temporal history: each activity and child workflow with when it
 * was scheduled, started (queue wait = started − scheduled) and closed (run time = closed − started), per stage.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { notFound } from '../../config/errors';
import { uiLink } from '../../storage/pipelines';
import { pipelineWorkflow, progressQuery } from '../../workflows/pipeline';
import { route, type RouteSpec } from '../route';
import { statusName } from './pipelines';

export interface TimelineStep {
  kind: 'activity' | 'child';
  /** The activity type or child workflow type. */
  name: string;
  taskQueue: string | null;
  scheduledAt: number | null;
  startedAt: number | null;
  closedAt: number | null;
  status: 'scheduled' | 'running' | 'completed' | 'failed' | 'timed_out' | 'canceled' | 'terminated';
  attempt: number | null;
}

/** Event attributes as the history's protobuf objects carry them (ids may be Longs: compared as strings). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Attributes = Record<string, any>;

/** A protobuf Timestamp: `seconds` a Long in histories from the server (a number in tests). */
type Timestamp = { seconds?: number | { toString(): string } | null; nanos?: number | null };

type HistoryEvent = {
  eventId?: { toString(): string } | number | null;
  eventTime?: Timestamp | null;
  [attributes: string]: unknown;
};

const millis = (ts: Timestamp | null | undefined): number | null =>
  ts ? Number(String(ts.seconds ?? 0)) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6) : null;

/** The events that open a step: an activity scheduled, a child workflow initiated. */
const OPENS = [
  ['activityTaskScheduledEventAttributes', 'activity', 'activityType'],
  ['startChildWorkflowExecutionInitiatedEventAttributes', 'child', 'workflowType'],
] as const;

/** The events that move an open step on, the attribute naming the event that opened it, and the status they set. */
const MOVES = [
  ['activityTaskStartedEventAttributes', 'scheduledEventId', 'running'],
  ['activityTaskCompletedEventAttributes', 'scheduledEventId', 'completed'],
  ['activityTaskFailedEventAttributes', 'scheduledEventId', 'failed'],
  ['activityTaskTimedOutEventAttributes', 'scheduledEventId', 'timed_out'],
  ['activityTaskCanceledEventAttributes', 'scheduledEventId', 'canceled'],
  ['childWorkflowExecutionStartedEventAttributes', 'initiatedEventId', 'running'],
  ['childWorkflowExecutionCompletedEventAttributes', 'initiatedEventId', 'completed'],
  ['childWorkflowExecutionFailedEventAttributes', 'initiatedEventId', 'failed'],
  ['childWorkflowExecutionTimedOutEventAttributes', 'initiatedEventId', 'timed_out'],
  ['childWorkflowExecutionCanceledEventAttributes', 'initiatedEventId', 'canceled'],
  ['childWorkflowExecutionTerminatedEventAttributes', 'initiatedEventId', 'terminated'],
] as const;

/** Folds the history's activity and child-workflow events into one step per scheduled activity or started child. */
export function timelineOf(events: HistoryEvent[]): TimelineStep[] {
  const steps = new Map<string, TimelineStep>();
  for (const event of events) {
    const at = millis(event.eventTime);
    const opens = OPENS.find(([key]) => event[key]);
    if (opens) {
      const [key, kind, type] = opens;
      const attrs = event[key] as Attributes;
      steps.set(String(event.eventId), {
        kind,
        name: attrs[type]?.name ?? (kind === 'activity' ? 'activity' : 'workflow'),
        taskQueue: attrs.taskQueue?.name ?? null,
        scheduledAt: at,
        startedAt: null,
        closedAt: null,
        status: 'scheduled',
        attempt: null,
      });
      continue;
    }
    const moves = MOVES.find(([key]) => event[key]);
    if (!moves) continue;
    const [key, openedBy, status] = moves;
    const attrs = event[key] as Attributes;
    const step = steps.get(String(attrs[openedBy]));
    if (!step) continue;
    if (status === 'running') Object.assign(step, { startedAt: at, status, attempt: attrs.attempt ?? null });
    else Object.assign(step, { closedAt: at, status });
  }
  return [...steps.values()];
}

/** A workflow's timeline steps, from its whole history (every page); its latest run unless `runId` names one. */
export async function historySteps(client: Client, workflowId: string, runId?: string): Promise<TimelineStep[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return timelineOf((history.events ?? []) as HistoryEvent[]);
}

export const timelineRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: '/api/v1/pipelines/{workflowId}/timeline',
    summary:
      "A pipeline's stages and, from its history, each activity and child workflow: scheduled, started and closed times (queue wait vs run time)",
    tags: ['Pipelines'],
    scope: 'read',
    params: z.object({ workflowId: z.string().min(1).max(400) }).strict(),
    handler: async ({ params, deps }) => {
      const client = await deps.temporal();
      const handle = client.workflow.getHandle(params.workflowId);
      const description = await handle.describe().catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) throw notFound(`pipeline ${params.workflowId}`);
        throw error;
      });
      if (description.type !== pipelineWorkflow.name) throw notFound(`pipeline ${params.workflowId}`);
      const [stages, steps] = await Promise.all([
        handle.query(progressQuery).catch(() => []),
        historySteps(client, params.workflowId),
      ]);
      return {
        workflowId: params.workflowId,
        status: statusName(description.status.name),
        startedAt: description.startTime,
        closedAt: description.closeTime ?? null,
        stages,
        steps,
        uiUrl: uiLink(deps.config, params.workflowId),
      };
    },
  }),
];
