/**
 * /api/v1 a pipeline's timeline for the UI, from its Temporal history: each activity and child workflow with when it
 * was scheduled, started (queue wait = started − scheduled) and closed (run time = closed − started), per stage.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { notFound } from '../../config/errors';
import { uiLink } from '../../storage/pipelines';
import { pipelineWorkflow, progressQuery } from '../../workflows/pipeline';
import { route, type RouteSpec } from '../route';
import { statusName } from './pipelines';

interface TimelineStep {
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

/** Folds the history's activity and child-workflow events into one step per scheduled activity or started child. */
export function timelineOf(events: HistoryEvent[]): TimelineStep[] {
  const steps = new Map<string, TimelineStep>();
  const at = (event: HistoryEvent) => millis(event.eventTime);
  const close = (id: unknown, event: HistoryEvent, status: TimelineStep['status']) => {
    const step = steps.get(String(id));
    if (step) Object.assign(step, { closedAt: at(event), status });
  };
  for (const event of events) {
    const id = String(event.eventId);
    const a = (name: string) => event[name] as Attributes | null | undefined;
    if (a('activityTaskScheduledEventAttributes')) {
      const attrs = a('activityTaskScheduledEventAttributes')!;
      steps.set(id, {
        kind: 'activity',
        name: attrs.activityType?.name ?? 'activity',
        taskQueue: attrs.taskQueue?.name ?? null,
        scheduledAt: at(event),
        startedAt: null,
        closedAt: null,
        status: 'scheduled',
        attempt: null,
      });
    } else if (a('activityTaskStartedEventAttributes')) {
      const attrs = a('activityTaskStartedEventAttributes')!;
      const step = steps.get(String(attrs.scheduledEventId));
      if (step) Object.assign(step, { startedAt: at(event), status: 'running', attempt: attrs.attempt ?? null });
    } else if (a('activityTaskCompletedEventAttributes'))
      close(a('activityTaskCompletedEventAttributes')!.scheduledEventId, event, 'completed');
    else if (a('activityTaskFailedEventAttributes'))
      close(a('activityTaskFailedEventAttributes')!.scheduledEventId, event, 'failed');
    else if (a('activityTaskTimedOutEventAttributes'))
      close(a('activityTaskTimedOutEventAttributes')!.scheduledEventId, event, 'timed_out');
    else if (a('activityTaskCanceledEventAttributes'))
      close(a('activityTaskCanceledEventAttributes')!.scheduledEventId, event, 'canceled');
    else if (a('startChildWorkflowExecutionInitiatedEventAttributes')) {
      const attrs = a('startChildWorkflowExecutionInitiatedEventAttributes')!;
      steps.set(id, {
        kind: 'child',
        name: attrs.workflowType?.name ?? 'workflow',
        taskQueue: attrs.taskQueue?.name ?? null,
        scheduledAt: at(event),
        startedAt: null,
        closedAt: null,
        status: 'scheduled',
        attempt: null,
      });
    } else {
      const child = (
        [
          ['childWorkflowExecutionStartedEventAttributes', 'running'],
          ['childWorkflowExecutionCompletedEventAttributes', 'completed'],
          ['childWorkflowExecutionFailedEventAttributes', 'failed'],
          ['childWorkflowExecutionTimedOutEventAttributes', 'timed_out'],
          ['childWorkflowExecutionCanceledEventAttributes', 'canceled'],
          ['childWorkflowExecutionTerminatedEventAttributes', 'terminated'],
        ] as const
      ).find(([name]) => a(name));
      if (!child) continue;
      const initiated = a(child[0])!.initiatedEventId;
      if (child[1] === 'running') {
        const step = steps.get(String(initiated));
        if (step) Object.assign(step, { startedAt: at(event), status: 'running' });
      } else close(initiated, event, child[1]);
    }
  }
  return [...steps.values()];
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
      const handle = (await deps.temporal()).workflow.getHandle(params.workflowId);
      const description = await handle.describe().catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) throw notFound(`pipeline ${params.workflowId}`);
        throw error;
      });
      if (description.type !== pipelineWorkflow.name) throw notFound(`pipeline ${params.workflowId}`);
      const [stages, history] = await Promise.all([handle.query(progressQuery).catch(() => []), handle.fetchHistory()]);
      return {
        workflowId: params.workflowId,
        status: statusName(description.status.name),
        startedAt: description.startTime,
        closedAt: description.closeTime ?? null,
        stages,
        steps: timelineOf((history.events ?? []) as HistoryEvent[]),
        uiUrl: uiLink(deps.config, params.workflowId),
      };
    },
  }),
];
