/** /api/v1 runs and experiments: create, log, search with the filter language and order_by, paginated. */
import { z } from 'zod';
import { createExperiment, searchExperiments } from '../../store/experiments';
import { versionsFrom } from '../../store/registry';
import { createRun, findRun, logBatch, metricSeries, searchRuns, updateRun } from '../../store/runs';
import { route, type RouteSpec } from '../route';

const tags = ['Runs'];
const scalar = z.union([z.string(), z.number(), z.boolean()]);
const metricPoint = z
  .object({
    key: z.string(),
    value: z.number(),
    step: z.number().int().optional(),
    timestamp: z.number().int().optional(),
  })
  .strict();

export const runRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: '/api/v1/experiments',
    summary: 'Experiments',
    tags,
    scope: 'read',
    query: z
      .object({
        filter: z.string().optional(),
        limit: z.coerce.number().int().min(1).max(10_000).optional(),
        pageToken: z.string().optional(),
      })
      .strict(),
    handler: async ({ query, deps }) =>
      searchExperiments(deps.db, { filter: query.filter, maxResults: query.limit, pageToken: query.pageToken }),
  }),
  route({
    method: 'post',
    path: '/api/v1/experiments',
    summary: 'Create an experiment',
    tags,
    scope: 'write',
    body: z.object({ name: z.string(), tags: z.record(z.string()).optional() }).strict(),
    handler: async ({ body, deps }) => ({ experiment: await createExperiment(deps.db, body) }),
  }),
  route({
    method: 'get',
    path: '/api/v1/runs',
    summary:
      'Search runs: filter language (metrics., params., tags., attributes; and / or / parentheses), order_by, pages',
    tags,
    scope: 'read',
    query: z
      .object({
        filter: z.string().optional(),
        orderBy: z.string().optional(),
        experiment: z.union([z.string(), z.array(z.string())]).optional(),
        limit: z.coerce.number().int().min(1).max(50_000).optional(),
        pageToken: z.string().optional(),
        view: z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).optional(),
      })
      .strict(),
    handler: async ({ query, deps }) =>
      searchRuns(deps.db, {
        experimentNames: query.experiment === undefined ? undefined : [query.experiment].flat(),
        filter: query.filter,
        orderBy: query.orderBy,
        maxResults: query.limit ?? 100,
        pageToken: query.pageToken,
        viewType: query.view,
      }),
  }),
  route({
    method: 'post',
    path: '/api/v1/runs',
    summary: 'Start a run (the experiment is created when missing)',
    tags,
    scope: 'write',
    body: z
      .object({
        experiment: z.string().optional(),
        name: z.string().optional(),
        tags: z.record(z.string()).optional(),
        startTime: z.number().int().min(-8.64e15).max(8.64e15).optional(),
      })
      .strict(),
    handler: async ({ body, deps, principal }) => ({
      run: await createRun(deps.db, {
        experimentName: body.experiment ?? 'Default',
        name: body.name,
        tags: body.tags,
        startTime: body.startTime,
        userId: principal.name,
      }),
    }),
  }),
  route({
    method: 'get',
    path: '/api/v1/runs/{runId}',
    summary: 'A run (by id or unique id prefix)',
    tags,
    scope: 'read',
    params: z.object({ runId: z.string() }),
    handler: async ({ params, deps }) => ({ run: await findRun(deps.db, params.runId) }),
  }),
  route({
    method: 'patch',
    path: '/api/v1/runs/{runId}',
    summary: 'End or rename a run',
    tags,
    scope: 'write',
    params: z.object({ runId: z.string() }),
    body: z
      .object({
        status: z.enum(['running', 'finished', 'failed', 'killed']).optional(),
        name: z.string().optional(),
        endTime: z.number().int().min(-8.64e15).max(8.64e15).optional(),
      })
      .strict(),
    handler: async ({ params, body, deps }) => ({ run: await updateRun(deps.db, params.runId, body) }),
  }),
  route({
    method: 'post',
    path: '/api/v1/runs/{runId}/log',
    summary: 'Log params, metric points and tags in one transaction',
    tags,
    scope: 'write',
    params: z.object({ runId: z.string() }),
    body: z
      .object({
        params: z.record(scalar).optional(),
        metrics: z.array(metricPoint).max(1000).optional(),
        tags: z.record(z.string()).optional(),
      })
      .strict(),
    handler: async ({ params, body, deps }) => {
      const now = Date.now();
      await logBatch(deps.db, params.runId, {
        params: body.params && Object.fromEntries(Object.entries(body.params).map(([k, v]) => [k, String(v)])),
        metrics: body.metrics?.map((m) => ({
          key: m.key,
          value: m.value,
          step: m.step ?? 0,
          timestamp: m.timestamp ?? now,
        })),
        tags: body.tags,
      });
      return {};
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/runs/{runId}/metrics',
    summary: "Every step of a run's metrics, by key (for curves)",
    tags,
    scope: 'read',
    params: z.object({ runId: z.string() }),
    handler: async ({ params, deps }) => {
      const run = await findRun(deps.db, params.runId);
      const series: Record<string, { step: number; value: number | string; timestamp: number }[]> = {};
      for (const point of await metricSeries(deps.db, [run.id])) {
        (series[point.key] ??= []).push({
          step: point.step,
          value: Number.isFinite(point.value) ? point.value : String(point.value),
          timestamp: point.timestamp,
        });
      }
      return { runId: run.id, series };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/runs/{runId}/model-versions',
    summary: 'The model versions registered from a run',
    tags,
    scope: 'read',
    params: z.object({ runId: z.string() }),
    handler: async ({ params, deps }) => {
      const run = await findRun(deps.db, params.runId);
      return {
        modelVersions: (await versionsFrom(deps.db, { runId: run.id })).map((v) => ({
          name: v.modelName,
          version: v.version,
        })),
      };
    },
  }),
];
