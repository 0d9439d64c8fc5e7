/**
 * /api/v1 pipelines (start, list, status, cancel — through Temporal) and alerts (list, acknowledge, resolve).
 * Anyone with a `write` token may start a pipeline; only an admin's run carries a release grant (store/grants.ts), so a
 * new version of a model that already exists is registered but not deployed unless an admin started it or approves it.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { INT32_MAX } from '../mlflow/wire';
import { ApiError, invalid, notFound } from '../../config/errors';
import { ConfigError, parsePipelineConfig, type PipelineConfig } from '../../config/pipeline';
import { getAlert, listAlerts, setAlertStatus } from '../../store/alerts';
import { issueGrant } from '../../store/grants';
import { latestEpoch } from '../../store/pipelines';
import { findRegisteredModel } from '../../store/registry';
import { failureMessage, pipelineWorkflowId, startPipeline, uiLink } from '../../storage/pipelines';
import { alertActionSignal } from '../../workflows/monitor';
import { pipelineWorkflow, progressQuery, type PipelineResult } from '../../workflows/pipeline';
import { PIPELINE_KEY, MODEL_KEY } from '../../workflows/searchAttributes';
import { sweepProgressQuery } from '../../workflows/sweep';
import { route, type RouteSpec } from '../route';

const tags = ['Pipelines'];
/** Temporal's status names as its API spells them (the TypeScript SDK writes CANCELLED). */
export const statusName = (name: string) => (name === 'CANCELLED' ? 'CANCELED' : name);
const workflowIdParam = z.object({ workflowId: z.string().min(1).max(400) });

/** A pipeline config sent over the API (`field` names it in errors); a source must be one the workers can reach. */
export function pipelineConfigOf(raw: unknown, field: string): PipelineConfig {
  let config;
  try {
    config = parsePipelineConfig(raw, field);
  } catch (error) {
    if (error instanceof ConfigError) throw new ApiError('INVALID_PARAMETER_VALUE', error.message, field);
    throw error;
  }
  const source = config.data.source;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !source.startsWith('/')) {
    throw invalid(
      `${field}.data.source`,
      `"${source}" is a relative path on your machine; the workers cannot read it: use an absolute path under the server's data roots, an s3:// or http(s):// URL`,
    );
  }
  return config;
}

export const pipelineRoutes: RouteSpec[] = [
  route({
    method: 'post',
    path: '/api/v1/pipelines',
    summary:
      "Start a pipeline from its config (the YAML as a JSON object); an admin's run may replace what an existing model serves",
    tags,
    scope: 'write',
    body: z
      .object({
        config: z.record(z.unknown()),
        workflowId: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/)
          .optional(),
        release: z
          .boolean()
          .optional()
          .describe(
            "true: refuse (403) unless the token is an admin's, whose run may deploy a new version of an existing model. @default false",
          ),
      })
      .strict(),
    handler: async ({ body, deps, principal }) => {
      const config = pipelineConfigOf(body.config, 'config');
      const admin = principal.scope === 'admin';
      if (body.release && !admin) {
        throw new ApiError(
          'PERMISSION_DENIED',
          `release: deploying a new version of an existing model needs an admin token (token "${principal.name}" has scope "${principal.scope}"); leave release out to register it without deploying`,
        );
      }
      const workflowId = body.workflowId ?? pipelineWorkflowId(config);
      // The workflow gets a signed release grant, never the bearer token; without one an existing model's new version
      // is only registered.
      const grant = admin
        ? issueGrant({
            actor: `token:${principal.name}`,
            scope: 'admin',
            model: config.model,
            action: 'release',
            workflowId,
          })
        : undefined;
      const existing = await findRegisteredModel(deps.db, config.model);
      const handle = await startPipeline(
        await deps.temporal(),
        deps.config,
        config,
        workflowId,
        { kind: 'api', reason: `pipeline ${config.name} started over the API by ${principal.name}` },
        grant,
      );
      // releaseGrant false and modelExists true: a new version will be registered, not deployed (unless an admin
      // approves it).
      return {
        workflowId: handle.workflowId,
        uiUrl: uiLink(deps.config, handle.workflowId),
        releaseGrant: grant !== undefined,
        modelExists: existing !== undefined,
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/pipelines',
    summary: 'Recent pipeline runs (newest first)',
    tags,
    scope: 'read',
    query: z
      .object({
        model: z.string().optional(),
        pipeline: z.string().optional(),
        limit: z.coerce.number().int().min(1).max(500).optional(),
      })
      .strict(),
    handler: async ({ query, deps }) => {
      const quote = (v: string) => `'${v.replace(/[\\']/g, '\\$&')}'`;
      const clauses = [`WorkflowType = '${pipelineWorkflow.name}'`];
      if (query.model) clauses.push(`${MODEL_KEY.name} = ${quote(query.model)}`);
      if (query.pipeline) clauses.push(`${PIPELINE_KEY.name} = ${quote(query.pipeline)}`);
      const out = [];
      for await (const w of (await deps.temporal()).workflow.list({
        query: clauses.join(' AND '),
        pageSize: query.limit ?? 50,
      })) {
        out.push({
          workflowId: w.workflowId,
          status: statusName(w.status.name),
          startedAt: w.startTime,
          closedAt: w.closeTime ?? null,
          model: w.typedSearchAttributes.get(MODEL_KEY) ?? null,
          pipeline: w.typedSearchAttributes.get(PIPELINE_KEY) ?? null,
          uiUrl: uiLink(deps.config, w.workflowId),
        });
        if (out.length >= (query.limit ?? 50)) break;
      }
      return { pipelines: out };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/pipelines/{workflowId}',
    summary: "A pipeline's status, stages, training progress (epoch, sweep trials) and result or failure",
    tags,
    scope: 'read',
    params: workflowIdParam,
    handler: async ({ params, deps }) => {
      const client = await deps.temporal();
      const handle = client.workflow.getHandle(params.workflowId);
      const description = await handle.describe().catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) throw notFound(`pipeline ${params.workflowId}`);
        throw error;
      });
      if (description.type !== pipelineWorkflow.name) throw notFound(`pipeline ${params.workflowId}`);
      const status = statusName(description.status.name);
      // Before a worker picks it up the query cannot be answered: no stages yet.
      const stages = await handle.query(progressQuery).catch(() => []);
      const training =
        stages.find((s) => s.name === 'train')?.status === 'running'
          ? await latestEpoch(deps.db, params.workflowId)
          : undefined;
      const trials = stages.some((s) => s.name === 'train' && s.status !== 'pending')
        ? await client.workflow
            .getHandle(`${params.workflowId}-sweep`)
            .query(sweepProgressQuery)
            .catch(() => undefined)
        : undefined;
      let result: PipelineResult | undefined, failure: string | undefined;
      if (status === 'COMPLETED') result = (await handle.result()) as PipelineResult;
      else if (status !== 'RUNNING')
        failure = await handle.result().then(
          () => undefined,
          (error: unknown) => failureMessage(error),
        );
      return {
        workflowId: params.workflowId,
        status,
        startedAt: description.startTime,
        closedAt: description.closeTime ?? null,
        model: description.typedSearchAttributes.get(MODEL_KEY) ?? null,
        pipeline: description.typedSearchAttributes.get(PIPELINE_KEY) ?? null,
        stages,
        ...(training ? { training } : {}),
        ...(trials ? { trials } : {}),
        ...(result ? { result } : {}),
        ...(failure ? { failure } : {}),
        uiUrl: uiLink(deps.config, params.workflowId),
      };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/pipelines/{workflowId}/cancel',
    summary: 'Cancel a running pipeline',
    tags,
    scope: 'write',
    params: workflowIdParam,
    handler: async ({ params, deps }) => {
      const handle = (await deps.temporal()).workflow.getHandle(params.workflowId);
      const description = await handle.describe().catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) return undefined;
        throw error;
      });
      if (!description || description.type !== pipelineWorkflow.name) throw notFound(`pipeline ${params.workflowId}`);
      if (description.status.name !== 'RUNNING')
        throw new ApiError('INVALID_STATE', `pipeline ${params.workflowId} is ${description.status.name}`);
      await handle.cancel();
      return { workflowId: params.workflowId, status: 'CANCEL_REQUESTED' };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/alerts',
    summary: 'Monitor alerts (open and acknowledged unless all=true)',
    tags: ['Alerts'],
    scope: 'read',
    query: z
      .object({
        all: z.enum(['true', 'false']).optional(),
        model: z.string().optional(),
        limit: z.coerce.number().int().min(1).max(5000).optional(),
      })
      .strict(),
    handler: async ({ query, deps }) => ({
      alerts: await listAlerts(deps.db, { all: query.all === 'true', model: query.model, limit: query.limit }),
    }),
  }),
  route({
    method: 'post',
    path: '/api/v1/alerts/{alertId}/{action}',
    summary: 'Acknowledge or resolve an alert (recorded by its monitor)',
    tags: ['Alerts'],
    scope: 'write',
    params: z.object({
      alertId: z.coerce.number().int().positive().max(INT32_MAX),
      action: z.enum(['acknowledge', 'resolve']),
    }),
    handler: async ({ params, deps, principal }) => {
      const alert = await getAlert(deps.db, params.alertId);
      const handle = (await deps.temporal()).workflow.getHandle(alert.monitorWorkflowId);
      const running = (await handle.describe().catch(() => undefined))?.status.name === 'RUNNING';
      if (running)
        await handle.signal(alertActionSignal, {
          alertId: alert.id,
          action: params.action,
          by: `token:${principal.name}`,
        });
      else await setAlertStatus(deps.db, alert.id, params.action);
      const want = params.action === 'resolve' ? 'resolved' : 'acknowledged';
      for (let i = 0; i < 50; i++) {
        const now = await getAlert(deps.db, alert.id);
        if (now.status === want || now.status === 'resolved') return { alert: now };
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new ApiError(
        'TEMPORARILY_UNAVAILABLE',
        `monitor ${alert.monitorWorkflowId} has not recorded the ${params.action} yet; is a worker running?`,
      );
    },
  }),
];
