/**
 * /api/v1 features: the feature store over HTTP — register views (their definitions as JSON, checked by the same
 * schema as `defineFeatureView`), list and show them with per-feature statistics, load and materialise them (workflows
 * the caller follows), materialise on a Temporal Schedule, and look one entity's online values up.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { z } from 'zod';
import { durationMs } from '../../config/duration';
import { ApiError } from '../../config/errors';
import { featureViewSchema, outputFeatures } from '../../features/define';
import { servedView, viewRef } from '../../features/sql';
import { LookupError, withOnlineFeatures } from '../../features/online';
import {
  featureStatistics,
  findFeatureView,
  listFeatureViews,
  registerFeatureView,
  type FeatureViewRow,
} from '../../features/store';
import { uiLink } from '../../storage/pipelines';
import { loadFeatureViewWorkflow, materializeWorkflow, type MaterializeInput } from '../../features/workflow';
import type { ServerDeps } from '../deps';
import { route, type RouteSpec } from '../route';
import { describeJob } from './jobs';

const BASE = '/api/v1/features';
const tags = ['Features'];

const viewParams = z.object({ view: z.string().describe('name (its latest version) or name@version') }).strict();
const duration = z.string().refine((text) => {
  try {
    return durationMs(text) > 0;
  } catch {
    return false;
  }
}, 'must be a positive duration such as "6h" or "1d"');

/** A registered version as the API shows it. */
function viewJson(row: FeatureViewRow) {
  return {
    ref: viewRef(row.name, row.version),
    name: row.name,
    version: row.version,
    definition: row.definition,
    offlineTable: row.offlineTable,
    loadedFrom: row.loadedFrom,
    loadedAt: row.loadedAt,
    rowCount: row.rowCount,
    materializedUntil: row.materializedUntil,
    createdAt: row.createdAt,
  };
}

/** Workflow ids say what they do to which view: `materialize-<name>-v<version>-<time>`. */
const jobId = (verb: string, ref: string) => `${verb}-${ref.replace(/@/g, '-v')}-${Date.now().toString(36)}`;

async function startJob(deps: ServerDeps, workflowId: string, start: (client: Client) => Promise<unknown>) {
  await start(await deps.temporal());
  return { workflowId, uiUrl: uiLink(deps.config, workflowId) };
}

export const featureRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: BASE,
    summary:
      'Registered feature views (every version): entities, features, TTL, offline rows, materialisation watermark',
    tags,
    scope: 'read',
    handler: async ({ deps }) => ({ views: (await listFeatureViews(deps.db)).map(viewJson) }),
  }),
  route({
    method: 'post',
    path: BASE,
    summary: 'Register feature views: a changed definition becomes a new version, the same one again changes nothing',
    tags,
    scope: 'write',
    body: z
      .object({
        views: z.array(featureViewSchema).min(1).max(100).describe('definitions as `defineFeatureView` takes them'),
      })
      .strict(),
    handler: async ({ body, deps }) => {
      const names = body.views.map((v) => v.name);
      const twice = names.find((name, i) => names.indexOf(name) !== i);
      if (twice)
        throw new ApiError(
          'INVALID_PARAMETER_VALUE',
          `feature view "${twice}" is declared twice`,
          `body.views[${names.lastIndexOf(twice)}].name`,
        );
      const registered = [];
      for (const view of body.views) {
        const { row, created } = await registerFeatureView(deps.db, view);
        registered.push({
          ref: viewRef(row.name, row.version),
          created,
          entities: view.entities,
          features: outputFeatures(view),
          ttl: view.ttl,
        });
      }
      return { views: registered };
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/{view}`,
    summary:
      'A view: its definition, offline table and watermark, and per-feature statistics of the offline rows once loaded',
    tags,
    scope: 'read',
    params: viewParams,
    handler: async ({ params, deps }) => {
      const row = await findFeatureView(deps.db, params.view, 'path.view');
      return { ...viewJson(row), statistics: row.loadedAt ? await featureStatistics(deps.db, row) : null };
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/{view}/load`,
    summary: "Load the view's source into its offline table (a workflow; follow it at the returned id)",
    tags,
    scope: 'write',
    params: viewParams,
    handler: async ({ params, deps }) => {
      const row = await findFeatureView(deps.db, params.view, 'path.view');
      // The version found now is the one loaded, whatever is registered meanwhile.
      const ref = viewRef(row.name, row.version);
      const workflowId = jobId('load', ref);
      return startJob(deps, workflowId, (client) =>
        client.workflow.start(loadFeatureViewWorkflow, {
          workflowId,
          taskQueue: deps.config.taskQueues.main,
          args: [{ view: ref }],
        }),
      );
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/{view}/materialize`,
    summary:
      'Load, then write the latest values per entity into the online store, window by window from the watermark (a workflow)',
    tags,
    scope: 'write',
    params: viewParams,
    body: z
      .object({
        until: z
          .string()
          .refine((t) => !Number.isNaN(Date.parse(t)), 'must be an ISO 8601 time')
          .optional()
          .describe('event time to materialise up to. @default now'),
        window: duration.optional().describe('event time per activity. @default 1d'),
        full: z.boolean().optional().describe('clear the online rows and start from the oldest event'),
        load: z.boolean().optional().describe('reload the offline table first. @default true'),
      })
      .strict(),
    handler: async ({ params, body, deps }) => {
      await findFeatureView(deps.db, params.view, 'path.view');
      const workflowId = jobId('materialize', params.view);
      const input: MaterializeInput = { view: params.view, ...body };
      return startJob(deps, workflowId, (client) =>
        client.workflow.start(materializeWorkflow, {
          workflowId,
          taskQueue: deps.config.taskQueues.main,
          args: [input],
        }),
      );
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/{view}/jobs/{workflowId}`,
    summary: "A load's or materialisation's status, progress (rows) and result, or its failure",
    tags,
    scope: 'read',
    params: z.object({ view: z.string(), workflowId: z.string().min(1).max(400) }).strict(),
    handler: async ({ params, deps }) =>
      describeJob(
        deps,
        params.workflowId,
        [loadFeatureViewWorkflow.name, materializeWorkflow.name],
        `feature job ${params.workflowId}`,
      ),
  }),
  route({
    method: 'post',
    path: `${BASE}/{view}/schedules`,
    summary: 'Materialise the view on a Temporal Schedule (a slow run is never doubled: the next one waits)',
    tags,
    scope: 'write',
    params: viewParams,
    body: z
      .object({
        every: z.string().regex(/^\d+(s|m|h|d)$/, 'must be a duration such as 15m or 1h'),
        id: z
          .string()
          .regex(
            /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,254}$/,
            'must be 1-255 letters, digits or ._:@+=- starting with a letter or digit',
          )
          .optional()
          .describe('@default materialize-<name>[-v<version>]'),
        window: duration.optional().describe('event time per activity'),
      })
      .strict(),
    handler: async ({ params, body, deps }) => {
      await findFeatureView(deps.db, params.view, 'path.view');
      const scheduleId = body.id ?? `materialize-${params.view.replace(/@/g, '-v')}`;
      const input: MaterializeInput = { view: params.view, window: body.window };
      try {
        await (
          await deps.temporal()
        ).schedule.create({
          scheduleId,
          spec: { intervals: [{ every: body.every }] },
          action: {
            type: 'startWorkflow',
            workflowType: materializeWorkflow,
            taskQueue: deps.config.taskQueues.main,
            args: [input],
          },
          // The watermark makes a waiting run pick up where the slow one ended.
          policies: { overlap: ScheduleOverlapPolicy.BUFFER_ONE },
          // What `flywheel schedule describe` shows as its calendar.
          memo: { cron: `every ${body.every}`, view: params.view },
        });
      } catch (error) {
        if (error instanceof ScheduleAlreadyRunning)
          throw new ApiError(
            'RESOURCE_ALREADY_EXISTS',
            `schedule "${scheduleId}" already exists (delete it first, or pass another id)`,
            'body.id',
          );
        throw error;
      }
      return { scheduleId, view: params.view, every: body.every };
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/{view}/online`,
    summary: "One entity's online values, fresh within the view's TTL: its keys as query parameters (store_id=S2)",
    tags,
    scope: 'read',
    params: viewParams,
    query: z.record(z.string()),
    handler: async ({ params, query, deps }) => {
      const row = await findFeatureView(deps.db, params.view, 'path.view');
      const view = servedView(row);
      try {
        const [values] = await withOnlineFeatures(deps.db, [view], new Set(view.entities), [query]);
        return { view: view.ref, values };
      } catch (error) {
        if (!(error instanceof LookupError)) throw error;
        // The lookup names the request's instance; here the keys are the query's.
        const message = error.message.replace(/^instances\[0\]\.?/, 'query.').replace(/^query\.: /, '');
        throw new ApiError(error.status === 404 ? 'RESOURCE_DOES_NOT_EXIST' : 'INVALID_PARAMETER_VALUE', message);
      }
    },
  }),
];
