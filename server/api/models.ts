/**
 * Flywheel's registry API (/api/v1/models): models with their aliases, versions with lineage and gate verdicts,
 * audited alias moves (admin) and version tags. camelCase JSON; the registry store does the work.
 */
import { z } from 'zod';
import { INT32_MAX } from '../mlflow/wire';
import {
  createModelVersion, deleteAlias, getModelVersion, getRegisteredModel, listAliasEvents, listModelVersions, searchRegisteredModels,
  setAlias, setModelVersionTags, type AliasEvent, type ModelVersion, type RegisteredModel,
} from '../../store/registry';
import { route, type RouteSpec } from '../route';

const BASE = '/api/v1/models';
const tags = ['Models'];

const modelParams = z.object({ name: z.string().min(1) }).strict();
const versionNumber = z.string().regex(/^[1-9]\d{0,9}$/, 'must be a version number').transform(Number).refine((v) => v <= INT32_MAX, 'must be a version number');
const versionParams = z.object({ name: z.string().min(1), version: versionNumber }).strict();
const aliasParams = z.object({ name: z.string().min(1), alias: z.string().min(1) }).strict();
const tagMap = z.record(z.string().min(1, 'tag keys must not be empty').max(250), z.string().max(5000));

const summary = (model: RegisteredModel) => ({
  name: model.name, task: model.task, description: model.description, tags: model.tags, aliases: model.aliases,
  versionCount: model.versionCount, latestVersion: model.latestVersions[0]?.version ?? null, createdAt: model.createdAt, updatedAt: model.updatedAt,
});

const versionSummary = (v: ModelVersion) => ({
  version: v.version, status: v.status, gate: v.tags.gate ?? null, aliases: v.aliases, metrics: v.metrics, tags: v.tags,
  runId: v.runId, source: v.source, description: v.description, createdAt: v.createdAt,
});

const aliasEventJson = (e: AliasEvent) => ({
  alias: e.alias, fromVersion: e.fromVersion, toVersion: e.toVersion, actor: e.actor, reason: e.reason, workflowId: e.workflowId, at: e.at,
});

const versionDetail = (v: ModelVersion, events: AliasEvent[]) => ({
  modelName: v.modelName, ...versionSummary(v), userId: v.userId, params: v.params, updatedAt: v.updatedAt,
  lineage: { runId: v.runId, datasetVersionId: v.datasetVersionId, workflowId: v.workflowId, source: v.source, codeVersion: v.codeVersion },
  evaluation: v.evaluation, servable: v.artifactKey !== null, aliasEvents: events.map(aliasEventJson),
});

export const modelRoutes: RouteSpec[] = [
  route({
    method: 'get', path: BASE, summary: 'Registered models with their aliases and version counts', tags, scope: 'read',
    query: z.object({ filter: z.string().optional(), pageToken: z.string().optional(), maxResults: z.coerce.number().int().min(1).max(1000).optional() }).strict(),
    handler: async ({ query, deps }) => {
      const found = await searchRegisteredModels(deps.db, { filter: query.filter, pageToken: query.pageToken, maxResults: query.maxResults });
      return { models: found.models.map(summary), ...(found.nextPageToken ? { nextPageToken: found.nextPageToken } : {}) };
    },
  }),
  route({
    method: 'get', path: `${BASE}/{name}`, summary: 'A model: its versions (gate verdict, metrics, aliases) and recent alias moves', tags, scope: 'read', params: modelParams,
    handler: async ({ params, deps }) => {
      const model = await getRegisteredModel(deps.db, params.name);
      const versions = await listModelVersions(deps.db, params.name);
      const events = await listAliasEvents(deps.db, { modelName: params.name, limit: 20 });
      return { ...summary(model), versions: versions.map(versionSummary), aliasEvents: events.map(aliasEventJson) };
    },
  }),
  route({
    method: 'get', path: `${BASE}/{name}/versions/{version}`, summary: 'A model version with its lineage, evaluation and alias history', tags, scope: 'read', params: versionParams,
    handler: async ({ params, deps }) => {
      const found = await getModelVersion(deps.db, params.name, params.version);
      return versionDetail(found, await listAliasEvents(deps.db, { modelName: params.name, version: params.version, oldestFirst: true }));
    },
  }),
  route({
    method: 'post', path: `${BASE}/{name}/versions`, summary: 'Register a version from a run and/or a source URI (creates the model if needed)', tags, scope: 'write',
    params: modelParams,
    body: z.object({ runId: z.string().min(1).optional(), source: z.string().min(1).optional(), tags: tagMap.optional(), description: z.string().optional() }).strict(),
    handler: async ({ params, body, principal, c, deps }) => {
      const created = await createModelVersion(deps.db, { modelName: params.name, ...body, userId: principal.name, createModel: true });
      return c.json(versionDetail(created, []), 201);
    },
  }),
  route({
    method: 'patch', path: `${BASE}/{name}/versions/{version}/tags`, summary: "Set (string) or remove (null) a version's tags", tags, scope: 'write',
    params: versionParams, body: z.object({ tags: z.record(z.string().min(1, 'tag keys must not be empty').max(250), z.string().max(5000).nullable()) }).strict(),
    handler: async ({ params, body, deps }) => {
      await setModelVersionTags(deps.db, params.name, params.version, body.tags);
      const updated = await getModelVersion(deps.db, params.name, params.version);
      return versionDetail(updated, await listAliasEvents(deps.db, { modelName: params.name, version: params.version, oldestFirst: true }));
    },
  }),
  route({
    method: 'put', path: `${BASE}/{name}/aliases/{alias}`, summary: 'Point an alias at a version (audited; moves what serving answers with)', tags, scope: 'admin',
    params: aliasParams, body: z.object({ version: z.number().int().positive(), reason: z.string().min(1, 'say why (kept in the audit trail)') }).strict(),
    handler: async ({ params, body, principal, deps }) => {
      const move = await setAlias(deps.db, { modelName: params.name, alias: params.alias, version: body.version, actor: principal.name, reason: body.reason });
      return { modelName: params.name, alias: params.alias, ...move, actor: principal.name };
    },
  }),
  route({
    method: 'delete', path: `${BASE}/{name}/aliases/{alias}`, summary: 'Delete an alias (audited; refused while it is deployed)', tags, scope: 'admin',
    params: aliasParams, body: z.object({ reason: z.string().min(1).optional() }).strict(),
    handler: async ({ params, body, principal, deps }) => {
      const removed = await deleteAlias(deps.db, { modelName: params.name, alias: params.alias, actor: principal.name, reason: body.reason ?? 'deleted over the Flywheel API' });
      return { modelName: params.name, alias: params.alias, fromVersion: removed.fromVersion, actor: principal.name };
    },
  }),
];
