/**
 * /api/v1 schedules: the Temporal Schedules that start pipelines on a calendar — create (from a pipeline config sent as
 * JSON), list, describe, pause, resume, trigger, backfill, delete. Scheduled runs carry no release grant: a new version
 * of an existing model is registered, and deployed only if an admin approves it.
 */
import {
  isGrpcServiceError,
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleHandle,
} from '@temporalio/client';
import { z } from 'zod';
import { ApiError, invalid, notFound } from '../../config/errors';
import { durationMs } from '../../config/duration';
import { pipelineInput } from '../../storage/pipelines';
import { pipelineWorkflow } from '../../workflows/pipeline';
import { MODEL_KEY, PIPELINE_KEY } from '../../workflows/searchAttributes';
import type { ServerDeps } from '../deps';
import { route, type RouteSpec } from '../route';
import { pipelineConfigOf } from './pipelines';

const BASE = '/api/v1/schedules';
const tags = ['Schedules'];

/** Ids the CLI gives schedules (a pipeline name, or `--id`): kept to what Temporal and a URL carry without surprise. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Shown in Temporal's UI and the CLI; gRPC refuses text that is not valid Unicode. */
const note = z
  .string()
  .max(1000)
  .refine(
    (text) => !LONE_SURROGATE.test(text) && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text),
    'must be printable Unicode text',
  );

const scheduleParams = z
  .object({
    scheduleId: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,254}$/,
        'must be 1-255 letters, digits or ._:@+=- starting with a letter or digit',
      ),
  })
  .strict();

const scheduleId = scheduleParams.shape.scheduleId;
const duration = z.string().refine((text) => {
  try {
    return durationMs(text) > 0;
  } catch {
    return false;
  }
}, 'must be a duration such as 90s, 30m, 1h or 1d');

export const OVERLAP_POLICIES = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'buffer-all': ScheduleOverlapPolicy.BUFFER_ALL,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER,
  'terminate-other': ScheduleOverlapPolicy.TERMINATE_OTHER,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
} as const;

/** A schedule as `flywheel schedule describe` shows it; times as ISO strings. */
function scheduleJson(scheduleId: string, d: ScheduleDescription) {
  return {
    scheduleId,
    /** Temporal turns cron text into calendars; the memo keeps what was written. */
    cron: typeof d.memo?.cron === 'string' ? d.memo.cron : null,
    paused: d.state.paused,
    note: d.state.note ?? null,
    workflowType: d.action.workflowType,
    overlap: String(d.policies.overlap),
    catchupWindowMs: Number(d.policies.catchupWindow),
    nextActionTimes: d.info.nextActionTimes.map((t) => t.toISOString()),
    numActionsTaken: d.info.numActionsTaken,
    numActionsSkippedOverlap: d.info.numActionsSkippedOverlap,
    recentActions: d.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt.toISOString(),
      takenAt: a.takenAt.toISOString(),
      workflowId: a.action.workflow.workflowId,
    })),
    createdAt: d.info.createdAt.toISOString(),
  };
}

/** A schedule's handle, or a 404 naming it. */
async function withSchedule<T>(
  deps: ServerDeps,
  scheduleId: string,
  act: (handle: ScheduleHandle) => Promise<T>,
): Promise<T> {
  const handle = (await deps.temporal()).schedule.getHandle(scheduleId);
  try {
    return await act(handle);
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) throw notFound(`schedule "${scheduleId}"`);
    throw error;
  }
}

async function pipelineSchedules(client: Client) {
  const out = [];
  for await (const entry of client.schedule.list()) {
    if (entry.action?.workflowType !== pipelineWorkflow.name) continue;
    // The list's memo and note can lag behind; describe is authoritative.
    const description = await client.schedule
      .getHandle(entry.scheduleId)
      .describe()
      .catch((error: unknown) => {
        if (error instanceof ScheduleNotFoundError) return undefined;
        throw error;
      });
    if (description) out.push(scheduleJson(entry.scheduleId, description));
  }
  return out;
}

const by = (principal: { name: string }, verb: string) => `${verb} over the API by ${principal.name}`;

export const scheduleRoutes: RouteSpec[] = [
  route({
    method: 'post',
    path: BASE,
    summary: 'Create a schedule that starts a pipeline (its config as a JSON object) on a cron calendar',
    tags,
    scope: 'write',
    body: z
      .object({
        config: z.record(z.unknown()),
        cron: z.string().min(1).max(200).describe('e.g. "0 3 * * *"'),
        scheduleId: scheduleId.optional().describe('@default the pipeline name'),
        overlap: z
          .enum(Object.keys(OVERLAP_POLICIES) as [keyof typeof OVERLAP_POLICIES])
          .optional()
          .describe('when a run is still going. @default skip'),
        catchup: duration
          .optional()
          .describe('runs missed while the server was down within this window still happen. @default 1h'),
        paused: z.boolean().optional().describe('create it paused. @default false'),
      })
      .strict(),
    handler: async ({ body, principal, c, deps }) => {
      const config = pipelineConfigOf(body.config, 'config');
      const id = body.scheduleId ?? config.name;
      if (!scheduleParams.safeParse({ scheduleId: id }).success)
        throw invalid('body.scheduleId', `the pipeline name "${id}" is not a usable schedule id: give scheduleId`);
      const client = await deps.temporal();
      try {
        await client.schedule.create({
          scheduleId: id,
          spec: { cronExpressions: [body.cron] },
          action: {
            type: 'startWorkflow',
            workflowType: pipelineWorkflow,
            taskQueue: deps.config.taskQueues.main,
            args: [pipelineInput(config, deps.config, { kind: 'schedule' })],
            typedSearchAttributes: [
              { key: MODEL_KEY, value: config.model },
              { key: PIPELINE_KEY, value: config.name },
            ],
          },
          policies: { overlap: OVERLAP_POLICIES[body.overlap ?? 'skip'], catchupWindow: body.catchup ?? '1h' },
          // Temporal turns cron text into calendars; the memo keeps it readable in `list`.
          memo: { cron: body.cron },
          state: { paused: body.paused ?? false, note: body.paused ? by(principal, 'created paused') : undefined },
        });
      } catch (error) {
        if (error instanceof ScheduleAlreadyRunning)
          throw new ApiError('RESOURCE_ALREADY_EXISTS', `schedule "${id}" already exists`, 'body.scheduleId');
        // INVALID_ARGUMENT: Temporal could not read the calendar.
        const grpc = [error, (error as Error).cause].find(isGrpcServiceError);
        if (grpc?.code === 3) throw invalid('body.cron', grpc.details);
        throw error;
      }
      return c.json(scheduleJson(id, await client.schedule.getHandle(id).describe()), 201);
    },
  }),
  route({
    method: 'get',
    path: BASE,
    summary: 'Schedules that start pipelines: cron, state, next runs',
    tags,
    scope: 'read',
    handler: async ({ deps }) => ({ schedules: await pipelineSchedules(await deps.temporal()) }),
  }),
  route({
    method: 'get',
    path: `${BASE}/{scheduleId}`,
    summary: 'A schedule: cron, state, policies, next and recent runs',
    tags,
    scope: 'read',
    params: scheduleParams,
    handler: async ({ params, deps }) =>
      withSchedule(deps, params.scheduleId, async (handle) => scheduleJson(params.scheduleId, await handle.describe())),
  }),
  route({
    method: 'post',
    path: `${BASE}/{scheduleId}/pause`,
    summary: 'Pause a schedule (with a note saying why)',
    tags,
    scope: 'write',
    params: scheduleParams,
    body: z.object({ note: note.optional() }).strict(),
    handler: async ({ params, body, principal, deps }) =>
      withSchedule(deps, params.scheduleId, async (handle) => {
        await handle.pause(body.note ?? by(principal, 'paused'));
        return { scheduleId: params.scheduleId, paused: true };
      }),
  }),
  route({
    method: 'post',
    path: `${BASE}/{scheduleId}/resume`,
    summary: 'Resume a paused schedule',
    tags,
    scope: 'write',
    params: scheduleParams,
    body: z.object({ note: note.optional() }).strict(),
    handler: async ({ params, body, principal, deps }) =>
      withSchedule(deps, params.scheduleId, async (handle) => {
        await handle.unpause(body.note ?? by(principal, 'resumed'));
        return { scheduleId: params.scheduleId, paused: false };
      }),
  }),
  route({
    method: 'post',
    path: `${BASE}/{scheduleId}/trigger`,
    summary: "Start the schedule's pipeline now",
    tags,
    scope: 'write',
    params: scheduleParams,
    handler: async ({ params, deps }) =>
      withSchedule(deps, params.scheduleId, async (handle) => {
        await handle.trigger();
        return { scheduleId: params.scheduleId, triggered: true };
      }),
  }),
  route({
    method: 'post',
    path: `${BASE}/{scheduleId}/backfill`,
    summary: 'Take the actions the calendar had between two times (after an outage longer than the catch-up window)',
    tags,
    scope: 'write',
    params: scheduleParams,
    body: z
      .object({
        from: z.string().datetime({ offset: true }),
        to: z.string().datetime({ offset: true }),
        overlap: z
          .enum(Object.keys(OVERLAP_POLICIES) as [keyof typeof OVERLAP_POLICIES])
          .optional()
          .describe('@default buffer-all'),
      })
      .strict(),
    handler: async ({ params, body, deps }) => {
      const start = new Date(body.from),
        end = new Date(body.to);
      if (end <= start) throw invalid('body.to', 'must be after from');
      return withSchedule(deps, params.scheduleId, async (handle) => {
        await handle.backfill([{ start, end, overlap: OVERLAP_POLICIES[body.overlap ?? 'buffer-all'] }]);
        return { scheduleId: params.scheduleId, from: start.toISOString(), to: end.toISOString() };
      });
    },
  }),
  route({
    method: 'delete',
    path: `${BASE}/{scheduleId}`,
    summary: 'Delete a schedule (runs it started go on)',
    tags,
    scope: 'write',
    params: scheduleParams,
    handler: async ({ params, deps }) =>
      withSchedule(deps, params.scheduleId, async (handle) => {
        await handle.delete();
        return { scheduleId: params.scheduleId, deleted: true };
      }),
  }),
];
