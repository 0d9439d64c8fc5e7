/**
 * /api/v1 pipelines (start, list, status, cancel — through Temporal) and alerts (list, acknowledge, resolve).
 * Releasing a new version of a model that already exists needs an admin token: a `write` token may train and
 * register new models, not replace what serves an existing one.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { INT32_MAX } from '../mlflow/wire';
import { ApiError, invalid, notFound } from '../../config/errors';
import { ConfigError, parsePipelineConfig } from '../../config/pipeline';
import { registeredModels } from '../../schema/models';
import { getAlert, listAlerts, setAlertStatus } from '../../store/alerts';
import { issueGrant } from '../../store/grants';
import { failureMessage, pipelineWorkflowId, startPipeline, uiLink } from '../../storage/pipelines';
import { alertActionSignal } from '../../workflows/monitor';
import { progressQuery, type PipelineResult } from '../../workflows/pipeline';
import { PIPELINE_KEY, MODEL_KEY } from '../../workflows/searchAttributes';
import { eq } from 'drizzle-orm';
import { route, type RouteSpec } from '../route';

const tags = ['Pipelines'];
/** Temporal's status names as its API spells them (the TypeScript SDK writes CANCELLED). */
const statusName = (name: string) => (name === 'CANCELLED' ? 'CANCELED' : name);
const workflowIdParam = z.object({ workflowId: z.string().min(1).max(400) });

export const pipelineRoutes: RouteSpec[] = [
  route({
    method: 'post', path: '/api/v1/pipelines', summary: 'Start a pipeline from its config (the YAML as a JSON object)', tags, scope: 'write',
    body: z.object({ config: z.record(z.unknown()), workflowId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/).optional() }).strict(),
    handler: async ({ body, deps, principal }) => {
      let config;
      try {
        config = parsePipelineConfig(body.config, 'config');
      } catch (error) {
        if (error instanceof ConfigError) throw new ApiError('INVALID_PARAMETER_VALUE', error.message, 'config');
        throw error;
      }
      const source = config.data.source;
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !source.startsWith('/')) {
        throw invalid('config.data.source', `"${source}" is a relative path on your machine; the workers cannot read it: use an absolute path under the server's data roots, an s3:// or http(s):// URL`);
      }
      const [existing] = await deps.db.select({ name: registeredModels.name }).from(registeredModels).where(eq(registeredModels.name, config.model));
      if (existing && principal.scope !== 'admin') {
        throw new ApiError('PERMISSION_DENIED', `model "${config.model}" exists: releasing a new version of it needs an admin token (token "${principal.name}" has scope "${principal.scope}")`);
      }
      const workflowId = body.workflowId ?? pipelineWorkflowId(config);
      // An admin's run may replace what the model serves: the workflow gets a signed release grant, never the bearer token.
      const grant = principal.scope === 'admin' ? issueGrant({ actor: `token:${principal.name}`, scope: 'admin', model: config.model, action: 'release', workflowId }) : undefined;
      const handle = await startPipeline(await deps.temporal(), deps.config, config, workflowId, { kind: 'api', reason: `pipeline ${config.name} started over the API by ${principal.name}` }, grant);
      return { workflowId: handle.workflowId, uiUrl: uiLink(deps.config, handle.workflowId) };
    },
  }),
  route({
    method: 'get', path: '/api/v1/pipelines', summary: 'Recent pipeline runs (newest first)', tags, scope: 'read',
    query: z.object({ model: z.string().optional(), pipeline: z.string().optional(), limit: z.coerce.number().int().min(1).max(500).optional() }).strict(),
    handler: async ({ query, deps }) => {
      const quote = (v: string) => `'${v.replace(/[\\']/g, '\\$&')}'`;
      const clauses = ["WorkflowType = 'pipelineWorkflow'"];
      if (query.model) clauses.push(`${MODEL_KEY.name} = ${quote(query.model)}`);
      if (query.pipeline) clauses.push(`${PIPELINE_KEY.name} = ${quote(query.pipeline)}`);
      const out = [];
      for await (const w of (await deps.temporal()).workflow.list({ query: clauses.join(' AND '), pageSize: query.limit ?? 50 })) {
        out.push({
          workflowId: w.workflowId, status: statusName(w.status.name), startedAt: w.startTime, closedAt: w.closeTime ?? null,
          model: w.typedSearchAttributes.get(MODEL_KEY) ?? null, pipeline: w.typedSearchAttributes.get(PIPELINE_KEY) ?? null, uiUrl: uiLink(deps.config, w.workflowId),
        });
        if (out.length >= (query.limit ?? 50)) break;
      }
      return { pipelines: out };
    },
  }),
  route({
    method: 'get', path: '/api/v1/pipelines/{workflowId}', summary: "A pipeline's status, stages and result or failure", tags, scope: 'read', params: workflowIdParam,
    handler: async ({ params, deps }) => {
      const handle = (await deps.temporal()).workflow.getHandle(params.workflowId);
      const description = await handle.describe().catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) throw notFound(`pipeline ${params.workflowId}`);
        throw error;
      });
      if (description.type !== 'pipelineWorkflow') throw notFound(`pipeline ${params.workflowId}`);
      const stages = await handle.query(progressQuery).catch(() => []);
      const status = statusName(description.status.name);
      let result: PipelineResult | undefined, failure: string | undefined;
      if (status === 'COMPLETED') result = (await handle.result()) as PipelineResult;
      else if (status !== 'RUNNING') failure = await handle.result().then(() => undefined, (error: unknown) => failureMessage(error));
      return {
        workflowId: params.workflowId, status, startedAt: description.startTime, closedAt: description.closeTime ?? null, stages,
        ...(result ? { result } : {}), ...(failure ? { failure } : {}), uiUrl: uiLink(deps.config, params.workflowId),
      };
    },
  }),
  route({
    method: 'post', path: '/api/v1/pipelines/{workflowId}/cancel', summary: 'Cancel a running pipeline', tags, scope: 'write', params: workflowIdParam,
    handler: async ({ params, deps }) => {
      const handle = (await deps.temporal()).workflow.getHandle(params.workflowId);
      const description = await handle.describe().catch(() => undefined);
      if (!description || description.type !== 'pipelineWorkflow') throw notFound(`pipeline ${params.workflowId}`);
      if (description.status.name !== 'RUNNING') throw new ApiError('INVALID_STATE', `pipeline ${params.workflowId} is ${description.status.name}`);
      await handle.cancel();
      return { workflowId: params.workflowId, status: 'CANCEL_REQUESTED' };
    },
  }),
  route({
    method: 'get', path: '/api/v1/alerts', summary: 'Monitor alerts (open and acknowledged unless all=true)', tags: ['Alerts'], scope: 'read',
    query: z.object({ all: z.enum(['true', 'false']).optional(), model: z.string().optional(), limit: z.coerce.number().int().min(1).max(5000).optional() }).strict(),
    handler: async ({ query, deps }) => ({ alerts: await listAlerts(deps.db, { all: query.all === 'true', model: query.model, limit: query.limit }) }),
  }),
  route({
    method: 'post', path: '/api/v1/alerts/{alertId}/{action}', summary: 'Acknowledge or resolve an alert (recorded by its monitor)', tags: ['Alerts'], scope: 'write',
    params: z.object({ alertId: z.coerce.number().int().positive().max(INT32_MAX), action: z.enum(['acknowledge', 'resolve']) }),
    handler: async ({ params, deps, principal }) => {
      const alert = await getAlert(deps.db, params.alertId);
      const handle = (await deps.temporal()).workflow.getHandle(alert.monitorWorkflowId);
      const running = (await handle.describe().catch(() => undefined))?.status.name === 'RUNNING';
      if (running) await handle.signal(alertActionSignal, { alertId: alert.id, action: params.action, by: `token:${principal.name}` });
      else await setAlertStatus(deps.db, alert.id, params.action);
      const want = params.action === 'resolve' ? 'resolved' : 'acknowledged';
      for (let i = 0; i < 50; i++) {
        const now = await getAlert(deps.db, alert.id);
        if (now.status === want || now.status === 'resolved') return { alert: now };
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new ApiError('TEMPORARILY_UNAVAILABLE', `monitor ${alert.monitorWorkflowId} has not recorded the ${params.action} yet; is a worker running?`);
    },
  }),
];
