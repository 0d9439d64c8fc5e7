/** /api/v1 monitoring views for the UI: deployments with their monitors, and a model's monitor checks over time. */
import { z } from 'zod';
import { listMonitorChecks, listMonitoredDeployments } from '../../store/monitorChecks';
import { route, type RouteSpec } from '../route';

const tags = ['Monitors'];

export const monitorRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: '/api/v1/monitors',
    summary: 'Deployments (model@alias → version, endpoint) with the workflow id of the monitor watching each',
    tags,
    scope: 'read',
    query: z.object({ model: z.string().min(1).optional() }).strict(),
    handler: async ({ query, deps }) => ({ deployments: await listMonitoredDeployments(deps.db, query.model) }),
  }),
  route({
    method: 'get',
    path: '/api/v1/models/{name}/monitor-checks',
    summary:
      "A model's monitor checks, oldest first: per window the verdict, prediction PSI, per-feature drift against its threshold, quality, latency and error rate",
    tags,
    scope: 'read',
    params: z.object({ name: z.string().min(1) }).strict(),
    query: z
      .object({
        monitor: z
          .string()
          .min(1)
          .max(400)
          .optional()
          .describe("one monitor's workflow id; @default all of the model's"),
        limit: z.coerce.number().int().min(1).max(5000).optional().describe('the newest this many. @default 500'),
      })
      .strict(),
    handler: async ({ params, query, deps }) => ({
      modelName: params.name,
      checks: await listMonitorChecks(deps.db, {
        modelName: params.name,
        monitorWorkflowId: query.monitor,
        limit: query.limit,
      }),
    }),
  }),
];
