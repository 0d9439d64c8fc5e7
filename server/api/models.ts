/**
 * Flywheel's registry API (/api/v1/models): models with their aliases and rollouts, versions with lineage, gate
 * verdicts
 * and approvals, audited alias moves and version tags; and releases (admin) that run as workflows — rollbacks,
 * rollouts, approvals — each given a release grant signed for that one move (store/grants.ts), never the caller's
 * token.
 * camelCase JSON; the registry store does the work.
 */
import { WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { INT32_MAX } from '../mlflow/wire';
import { ApiError, invalid, notFound } from '../../config/errors';
import { parseRolloutStrategy } from '../../config/pipeline';
import { durationMs } from '../../config/duration';
import { listTrafficRoutes, type TrafficRoute } from '../../store/deployments';
import { issueGrant, type GrantAction } from '../../store/grants';
import {
  archiveModelVersion,
  createModelVersion,
  deleteAlias,
  getModelVersion,
  getRegisteredModel,
  listAliasEvents,
  listApprovals,
  listModelVersions,
  rollbackTarget,
  searchRegisteredModels,
  setAlias,
  setModelVersionTags,
  type AliasEvent,
  type Approval,
  type ModelVersion,
  type RegisteredModel,
} from '../../store/registry';
import { failureMessage, uiLink } from '../../storage/pipelines';
import { approveUpdate, type ApprovalDecision } from '../../workflows/pipeline';
import {
  aliasWorkflow,
  rolloutStatusQuery,
  rolloutWorkflow,
  type AliasInput,
  type AliasResult,
  type RolloutInput,
  type RolloutResult,
} from '../../workflows/release';
import { MODEL_KEY } from '../../workflows/searchAttributes';
import type { Principal } from '../auth';
import type { ServerDeps } from '../deps';
import { route, type RouteSpec } from '../route';
import { statusName } from './pipelines';

const BASE = '/api/v1/models';
const tags = ['Models'];

const modelParams = z.object({ name: z.string().min(1) }).strict();
const versionNumber = z
  .string()
  .regex(/^[1-9]\d{0,9}$/, 'must be a version number')
  .transform(Number)
  .refine((v) => v <= INT32_MAX, 'must be a version number');
const versionParams = z.object({ name: z.string().min(1), version: versionNumber }).strict();
const aliasParams = z.object({ name: z.string().min(1), alias: z.string().min(1) }).strict();
const tagMap = z.record(z.string().min(1, 'tag keys must not be empty').max(250), z.string().max(5000));

const rolloutJson = (r: TrafficRoute | undefined) =>
  r
    ? {
        mode: r.mode,
        baseVersion: r.baseVersion,
        candidateVersion: r.candidateVersion,
        weight: r.weight,
        workflowId: r.workflowId,
      }
    : null;

const summary = (model: RegisteredModel, route?: TrafficRoute) => ({
  name: model.name,
  task: model.task,
  description: model.description,
  tags: model.tags,
  aliases: model.aliases,
  versionCount: model.versionCount,
  latestVersion: model.latestVersions[0]?.version ?? null,
  createdAt: model.createdAt,
  updatedAt: model.updatedAt,
  /** The rollout (canary, A/B, shadow) splitting its traffic now, if any. */
  rollout: rolloutJson(route),
});

const routesByModel = async (deps: ServerDeps) =>
  new Map((await listTrafficRoutes(deps.db)).map((r) => [r.modelName, r]));

const versionSummary = (v: ModelVersion) => ({
  version: v.version,
  status: v.status,
  gate: v.tags.gate ?? null,
  aliases: v.aliases,
  metrics: v.metrics,
  tags: v.tags,
  runId: v.runId,
  source: v.source,
  description: v.description,
  createdAt: v.createdAt,
});

const aliasEventJson = (e: AliasEvent) => ({
  alias: e.alias,
  fromVersion: e.fromVersion,
  toVersion: e.toVersion,
  actor: e.actor,
  reason: e.reason,
  workflowId: e.workflowId,
  at: e.at,
});

const approvalJson = (a: Approval) => ({
  status: a.status,
  actor: a.actor,
  comment: a.comment,
  workflowId: a.workflowId,
});

const versionDetail = (v: ModelVersion, events: AliasEvent[], approvals: Approval[] = []) => ({
  modelName: v.modelName,
  ...versionSummary(v),
  userId: v.userId,
  params: v.params,
  updatedAt: v.updatedAt,
  lineage: {
    runId: v.runId,
    datasetVersionId: v.datasetVersionId,
    workflowId: v.workflowId,
    source: v.source,
    codeVersion: v.codeVersion,
  },
  evaluation: v.evaluation,
  servable: v.artifactKey !== null,
  aliasEvents: events.map(aliasEventJson),
  approvals: approvals.map(approvalJson),
});

const releaseId = (kind: string, ...parts: (string | number)[]) =>
  `${kind}-${parts.join('-')}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;

/** A grant for one release workflow, made from the caller's admin token (checked by the route's scope). */
const grantFor = (
  principal: Principal,
  request: { model: string; action: GrantAction; workflowId: string; alias?: string; version?: number },
) => issueGrant({ ...request, actor: `token:${principal.name}`, scope: 'admin' });

/** How long a route waits for a short release workflow (an alias move) before answering 503 (it goes on). */
const SHORT_RELEASE_MS = 60_000;

/** The result of a short workflow; its failure as a 409 naming it; a 503 when no worker finished it in time. */
async function awaitRelease<T>(client: Client, deps: ServerDeps, workflowId: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ApiError(
            'TEMPORARILY_UNAVAILABLE',
            `workflow ${workflowId} has not finished in ${SHORT_RELEASE_MS / 1000} s; is a worker running? It goes on: ${uiLink(deps.config, workflowId)}`,
          ),
        ),
      SHORT_RELEASE_MS,
    );
  });
  try {
    return await Promise.race([client.workflow.getHandle(workflowId).result() as Promise<T>, late]);
  } catch (error) {
    if (error instanceof WorkflowFailedError)
      throw new ApiError('INVALID_STATE', `workflow ${workflowId} failed: ${failureMessage(error)}`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

const duration = (what: string) =>
  z.string().refine((text) => {
    try {
      return durationMs(text) > 0;
    } catch {
      return false;
    }
  }, `${what} must be a duration such as 90s, 5m or 1h`);
const rolloutStrategy = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('canary'),
      steps: z
        .array(z.number().gt(0).max(100))
        .min(1)
        .refine((steps) => steps[steps.length - 1] === 100, 'must be percentages ending at 100')
        .optional()
        .describe('@default [5, 25, 50, 100]'),
      stepDuration: duration('stepDuration').optional().describe('@default 5m'),
      maxErrorRate: z
        .number()
        .min(0)
        .max(1)
        .optional()
        .describe("the health gate on the candidate's error rate. @default 0.05"),
    })
    .strict(),
  z
    .object({
      kind: z.literal('ab'),
      split: z.number().gt(0).lt(1).optional().describe('share of keys sent to the candidate. @default 0.5'),
      duration: duration('duration').optional().describe('@default 1h'),
    })
    .strict(),
  z.object({ kind: z.literal('shadow'), duration: duration('duration').optional().describe('@default 1h') }).strict(),
]);

/** The API's flat canary body (`maxErrorRate`) in the config's shape; the config's schema fills the defaults. */
function strategyOf(body: z.infer<typeof rolloutStrategy>): RolloutInput['strategy'] {
  const raw =
    body.kind === 'canary'
      ? (({ maxErrorRate, ...rest }) => ({ ...rest, health: maxErrorRate === undefined ? {} : { maxErrorRate } }))(body)
      : body;
  const { strategy, problems } = parseRolloutStrategy(raw);
  if (problems) throw invalid('strategy', problems.join('; '));
  return strategy;
}

export const modelRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: BASE,
    summary: 'Registered models with their aliases and version counts',
    tags,
    scope: 'read',
    query: z
      .object({
        filter: z.string().optional(),
        pageToken: z.string().optional(),
        maxResults: z.coerce.number().int().min(1).max(1000).optional(),
      })
      .strict(),
    handler: async ({ query, deps }) => {
      const found = await searchRegisteredModels(deps.db, {
        filter: query.filter,
        pageToken: query.pageToken,
        maxResults: query.maxResults,
      });
      const routes = await routesByModel(deps);
      return {
        models: found.models.map((m) => summary(m, routes.get(m.name))),
        ...(found.nextPageToken ? { nextPageToken: found.nextPageToken } : {}),
      };
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/{name}`,
    summary: 'A model: its versions (gate verdict, metrics, aliases) and recent alias moves',
    tags,
    scope: 'read',
    params: modelParams,
    handler: async ({ params, deps }) => {
      const model = await getRegisteredModel(deps.db, params.name);
      const versions = await listModelVersions(deps.db, params.name);
      const events = await listAliasEvents(deps.db, { modelName: params.name, limit: 20 });
      return {
        ...summary(model, (await routesByModel(deps)).get(model.name)),
        versions: versions.map(versionSummary),
        aliasEvents: events.map(aliasEventJson),
      };
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/{name}/versions/{version}`,
    summary: 'A model version with its lineage, evaluation and alias history',
    tags,
    scope: 'read',
    params: versionParams,
    handler: async ({ params, deps }) => {
      const found = await getModelVersion(deps.db, params.name, params.version);
      return versionDetail(
        found,
        await listAliasEvents(deps.db, { modelName: params.name, version: params.version, oldestFirst: true }),
        await listApprovals(deps.db, params.name, params.version),
      );
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/{name}/versions`,
    summary: 'Register a version from a run and/or a source URI (creates the model if needed)',
    tags,
    scope: 'write',
    params: modelParams,
    body: z
      .object({
        runId: z.string().min(1).optional(),
        source: z.string().min(1).optional(),
        tags: tagMap.optional(),
        description: z.string().optional(),
      })
      .strict(),
    handler: async ({ params, body, principal, c, deps }) => {
      const created = await createModelVersion(deps.db, {
        modelName: params.name,
        ...body,
        userId: principal.name,
        createModel: true,
      });
      return c.json(versionDetail(created, []), 201);
    },
  }),
  route({
    method: 'patch',
    path: `${BASE}/{name}/versions/{version}/tags`,
    summary: "Set (string) or remove (null) a version's tags",
    tags,
    scope: 'write',
    params: versionParams,
    body: z
      .object({
        tags: z.record(z.string().min(1, 'tag keys must not be empty').max(250), z.string().max(5000).nullable()),
      })
      .strict(),
    handler: async ({ params, body, deps }) => {
      await setModelVersionTags(deps.db, params.name, params.version, body.tags);
      const updated = await getModelVersion(deps.db, params.name, params.version);
      return versionDetail(
        updated,
        await listAliasEvents(deps.db, { modelName: params.name, version: params.version, oldestFirst: true }),
      );
    },
  }),
  route({
    method: 'put',
    path: `${BASE}/{name}/aliases/{alias}`,
    summary: 'Point an alias at a version (audited; moves what serving answers with)',
    tags,
    scope: 'admin',
    params: aliasParams,
    body: z
      .object({ version: z.number().int().positive(), reason: z.string().min(1, 'say why (kept in the audit trail)') })
      .strict(),
    handler: async ({ params, body, principal, deps }) => {
      const move = await setAlias(deps.db, {
        modelName: params.name,
        alias: params.alias,
        version: body.version,
        actor: principal.name,
        reason: body.reason,
      });
      return { modelName: params.name, alias: params.alias, ...move, actor: principal.name };
    },
  }),
  route({
    method: 'delete',
    path: `${BASE}/{name}/aliases/{alias}`,
    summary: 'Delete an alias (audited; refused while it is deployed)',
    tags,
    scope: 'admin',
    params: aliasParams,
    body: z.object({ reason: z.string().min(1).optional() }).strict(),
    handler: async ({ params, body, principal, deps }) => {
      const removed = await deleteAlias(deps.db, {
        modelName: params.name,
        alias: params.alias,
        actor: principal.name,
        reason: body.reason ?? 'deleted over the Flywheel API',
      });
      return { modelName: params.name, alias: params.alias, fromVersion: removed.fromVersion, actor: principal.name };
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/{name}/versions/{version}/archive`,
    summary: 'Archive a version (kept for lineage; refused while an alias or a rollout uses it)',
    tags,
    scope: 'admin',
    params: versionParams,
    handler: async ({ params, deps }) => {
      await archiveModelVersion(deps.db, params.name, params.version);
      return versionDetail(await getModelVersion(deps.db, params.name, params.version), []);
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/{name}/aliases/{alias}/rollback`,
    summary: 'Move an alias back to the version it held before (aliasWorkflow; answers when it has moved)',
    tags,
    scope: 'admin',
    params: aliasParams,
    body: z.object({ reason: z.string().min(1).max(5000).optional() }).strict(),
    handler: async ({ params, body, principal, deps }) => {
      await getRegisteredModel(deps.db, params.name);
      const target = await rollbackTarget(deps.db, params.name, params.alias);
      if (target.current === null) throw notFound(`alias @${params.alias} of registered model "${params.name}"`);
      if (target.previous === null)
        throw new ApiError(
          'INVALID_STATE',
          `${params.name}@${params.alias} (v${target.current}) has no earlier version to roll back to`,
        );
      const workflowId = releaseId('rollback', params.name, params.alias);
      const input: AliasInput = {
        action: 'rollback',
        modelName: params.name,
        alias: params.alias,
        reason: body.reason ?? `rollback over the API by ${principal.name}`,
        grant: grantFor(principal, { model: params.name, action: 'rollback', workflowId, alias: params.alias }),
      };
      const client = await deps.temporal();
      await client.workflow.start(aliasWorkflow, {
        workflowId,
        taskQueue: deps.config.taskQueues.main,
        args: [input],
        typedSearchAttributes: [{ key: MODEL_KEY, value: params.name }],
      });
      const moved = await awaitRelease<AliasResult>(client, deps, workflowId);
      return {
        modelName: params.name,
        alias: params.alias,
        ...moved,
        workflowId,
        uiUrl: uiLink(deps.config, workflowId),
      };
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/{name}/versions/{version}/rollout`,
    summary:
      'Start a canary, A/B or shadow rollout of a version against an alias (rolloutWorkflow); follow it at /rollouts/{workflowId}',
    tags,
    scope: 'admin',
    params: versionParams,
    body: z
      .object({
        strategy: rolloutStrategy,
        alias: z.string().min(1).optional().describe('@default champion'),
        reason: z.string().min(1).max(5000).optional(),
      })
      .strict(),
    handler: async ({ params, body, principal, c, deps }) => {
      const candidate = await getModelVersion(deps.db, params.name, params.version);
      if (candidate.status === 'archived')
        throw new ApiError('INVALID_STATE', `${params.name} v${params.version} is archived; it cannot be rolled out`);
      const alias = body.alias ?? 'champion';
      const strategy = strategyOf(body.strategy);
      const workflowId = releaseId('rollout', params.name, `v${params.version}`);
      const input: RolloutInput = {
        modelName: params.name,
        alias,
        candidateVersion: params.version,
        strategy,
        reason: body.reason ?? `${strategy.kind} over the API by ${principal.name}`,
        grant: grantFor(principal, {
          model: params.name,
          action: 'rollout',
          workflowId,
          alias,
          version: params.version,
        }),
      };
      await (
        await deps.temporal()
      ).workflow.start(rolloutWorkflow, {
        workflowId,
        taskQueue: deps.config.taskQueues.main,
        args: [input],
        typedSearchAttributes: [{ key: MODEL_KEY, value: params.name }],
      });
      return c.json(
        {
          modelName: params.name,
          alias,
          candidateVersion: params.version,
          strategy,
          workflowId,
          uiUrl: uiLink(deps.config, workflowId),
        },
        201,
      );
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/{name}/rollouts/{workflowId}`,
    summary: "A rollout's status, phase and steps (with their health), and its result or failure",
    tags,
    scope: 'read',
    params: z.object({ name: z.string().min(1), workflowId: z.string().min(1).max(400) }).strict(),
    handler: async ({ params, deps }) => {
      const handle = (await deps.temporal()).workflow.getHandle(params.workflowId);
      const description = await handle.describe().catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) throw notFound(`rollout ${params.workflowId}`);
        throw error;
      });
      const model = description.typedSearchAttributes.get(MODEL_KEY);
      if (description.type !== rolloutWorkflow.name || (model !== undefined && model !== params.name))
        throw notFound(`rollout ${params.workflowId} of model "${params.name}"`);
      const status = statusName(description.status.name);
      const progress = await handle.query(rolloutStatusQuery).catch(() => undefined);
      let result: RolloutResult | undefined, failure: string | undefined;
      if (status === 'COMPLETED') result = (await handle.result()) as RolloutResult;
      else if (status !== 'RUNNING')
        failure = await handle.result().then(
          () => undefined,
          (error: unknown) => failureMessage(error),
        );
      return {
        workflowId: params.workflowId,
        modelName: params.name,
        status,
        startedAt: description.startTime,
        closedAt: description.closeTime ?? null,
        phase: progress?.phase ?? null,
        steps: result?.steps ?? progress?.steps ?? [],
        ...(result ? { result } : {}),
        ...(failure ? { failure } : {}),
        uiUrl: uiLink(deps.config, params.workflowId),
      };
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/{name}/versions/{version}/approval`,
    summary: 'Approve or reject the release waiting for this version (the pipeline goes on at once)',
    tags,
    scope: 'admin',
    params: versionParams,
    body: z.object({ decision: z.enum(['approve', 'reject']), comment: z.string().max(5000).optional() }).strict(),
    handler: async ({ params, body, principal, deps }) => {
      await getModelVersion(deps.db, params.name, params.version);
      const [pending] = await listApprovals(deps.db, params.name, params.version, 'pending');
      if (!pending)
        throw new ApiError(
          'INVALID_STATE',
          `no release of ${params.name} v${params.version} is waiting for an approval`,
        );
      const decision: ApprovalDecision = {
        version: params.version,
        approved: body.decision === 'approve',
        comment: body.comment,
        grant: grantFor(principal, {
          model: params.name,
          action: 'approve',
          workflowId: pending.workflowId,
          version: params.version,
        }),
      };
      try {
        const { actor } = await (
          await deps.temporal()
        ).workflow
          .getHandle(pending.workflowId)
          .executeUpdate(approveUpdate, { args: [decision] });
        return {
          modelName: params.name,
          version: params.version,
          decision: body.decision,
          actor,
          workflowId: pending.workflowId,
        };
      } catch (error) {
        if (error instanceof WorkflowNotFoundError)
          throw new ApiError(
            'INVALID_STATE',
            `release ${pending.workflowId} waiting for ${params.name} v${params.version} is no longer running`,
          );
        if (error instanceof WorkflowUpdateFailedError)
          throw new ApiError(
            'INVALID_STATE',
            `release ${pending.workflowId} refused the decision: ${failureMessage(error)}`,
          );
        throw error;
      }
    },
  }),
];
