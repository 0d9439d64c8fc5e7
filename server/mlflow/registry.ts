/**
 * MLflow's model registry routes (REST API 2.0): registered models, versions, tags and aliases, with MLflow's field
 * names. Reads need `read`; creating and describing need `write`; alias moves and deletions need `admin`, because an
 * alias is what serving answers with.
 */
import { z } from 'zod';
import { ApiError, invalid } from '../../config/errors';
import {
  createModelVersion,
  createRegisteredModel,
  deleteAlias,
  deleteModelVersion,
  deleteRegisteredModel,
  getModelVersion,
  getRegisteredModel,
  getVersionByAlias,
  searchModelVersions,
  searchRegisteredModels,
  setAlias,
  setModelVersionTags,
  setRegisteredModelTags,
  updateModelVersion,
  updateRegisteredModel,
  type ModelVersion,
  type RegisteredModel,
} from '../../store/registry';
import { getLoggedModel } from '../../store/loggedModels';
import { getRun } from '../../store/runs';
import type { ServerDeps } from '../deps';
import { route, type RouteSpec } from '../route';
import { entries, fromEntries, int64, INT32_MAX } from './wire';

const BASE = '/api/2.0/mlflow';
const tags = ['MLflow model registry'];
/** What the audit trail records for an alias moved by an MLflow client, which cannot say why. */
export const MLFLOW_ALIAS_REASON = 'set over the MLflow API';

const name = z.string().min(1, 'must not be empty');
/** Versions are strings in MLflow's protos ("1"); numbers are taken too. */
const version = z
  .union([z.string().regex(/^[1-9]\d{0,9}$/, 'must be a version number'), z.number().int().positive()])
  .transform(Number)
  .refine((v) => v <= INT32_MAX, 'must be a version number');
const tagKey = z.string().min(1, 'must not be empty').max(250);
const tagValue = z.string().max(5000);
const tag = z.object({ key: tagKey, value: tagValue.default('') }).strict();
const stringList = z.union([z.array(z.string()), z.string()]).transform((v) => (Array.isArray(v) ? v : [v]));
const search = z
  .object({
    filter: z.string().optional(),
    max_results: int64.optional(),
    order_by: stringList.optional(),
    page_token: z.string().optional(),
  })
  .strict();

const ModelVersionJson = z.object({
  name: z.string(),
  version: z.string(),
  creation_timestamp: z.number(),
  last_updated_timestamp: z.number(),
  user_id: z.string().optional(),
  current_stage: z.enum(['None', 'Archived']),
  description: z.string().optional(),
  source: z.string().optional(),
  run_id: z.string().optional(),
  status: z.literal('READY'),
  tags: z.array(tag),
  aliases: z.array(z.string()),
});
const RegisteredModelJson = z.object({
  name: z.string(),
  creation_timestamp: z.number(),
  last_updated_timestamp: z.number(),
  description: z.string().optional(),
  latest_versions: z.array(ModelVersionJson),
  tags: z.array(tag),
  aliases: z.array(z.object({ alias: z.string(), version: z.string() })),
});

export function modelVersionJson(v: ModelVersion): z.infer<typeof ModelVersionJson> {
  return {
    name: v.modelName,
    version: String(v.version),
    creation_timestamp: v.createdAt.getTime(),
    last_updated_timestamp: v.updatedAt.getTime(),
    user_id: v.userId ?? undefined,
    current_stage: v.status === 'archived' ? 'Archived' : 'None',
    description: v.description ?? undefined,
    source: v.source ?? undefined,
    run_id: v.runId ?? undefined,
    status: 'READY',
    tags: entries(v.tags),
    aliases: v.aliases,
  };
}

export function registeredModelJson(model: RegisteredModel): z.infer<typeof RegisteredModelJson> {
  return {
    name: model.name,
    creation_timestamp: model.createdAt.getTime(),
    last_updated_timestamp: model.updatedAt.getTime(),
    description: model.description ?? undefined,
    latest_versions: model.latestVersions.map(modelVersionJson),
    tags: entries(model.tags),
    aliases: model.aliases.map((a) => ({ alias: a.alias, version: String(a.version) })),
  };
}

/**
 * Where a client downloads the version from: `runs:/<run>/<path>` and `models:/<logged model id>` sources resolved to
 * the artifacts they name, other sources as they are, else the Flywheel artifact in the object store.
 */
async function downloadUri(deps: ServerDeps, v: ModelVersion): Promise<string> {
  const runsUri = v.source ? /^runs:\/([^/]+)\/?(.*)$/.exec(v.source) : null;
  if (runsUri) return `${(await getRun(deps.db, runsUri[1]!)).artifactUri}${runsUri[2] ? `/${runsUri[2]}` : ''}`;
  const loggedModel = v.source ? /^models:\/(m-[0-9a-f]{32})\/?$/.exec(v.source) : null;
  if (loggedModel) return (await getLoggedModel(deps.db, loggedModel[1]!)).artifactUri;
  if (v.source) return v.source;
  if (v.artifactKey) return `s3://${deps.config.s3.bucket}/${v.artifactKey}`;
  if (v.runId) return (await getRun(deps.db, v.runId)).artifactUri;
  throw new ApiError('INVALID_STATE', `${v.modelName} v${v.version} has no source to download from`);
}

async function latestVersions(deps: ServerDeps, modelName: string, stages: string[] | undefined) {
  const model = await getRegisteredModel(deps.db, modelName);
  const wanted = stages?.length ? new Set(stages.map((s) => s.toLowerCase())) : undefined;
  return {
    model_versions: model.latestVersions
      .map(modelVersionJson)
      .filter((v) => !wanted || wanted.has(v.current_stage.toLowerCase())),
  };
}

const registeredModelResponse = z.object({ registered_model: RegisteredModelJson });
const modelVersionResponse = z.object({ model_version: ModelVersionJson });

export const registryRoutes: RouteSpec[] = [
  route({
    method: 'post',
    path: `${BASE}/registered-models/create`,
    summary: 'Create a registered model',
    tags,
    scope: 'write',
    response: registeredModelResponse,
    body: z
      .object({
        name,
        tags: z.array(tag).optional(),
        description: z.string().optional(),
        deployment_job_id: z.string().optional(),
      })
      .strict(),
    handler: async ({ body, deps }) => ({
      registered_model: registeredModelJson(
        await createRegisteredModel(deps.db, {
          name: body.name,
          description: body.description,
          tags: fromEntries(body.tags),
        }),
      ),
    }),
  }),
  route({
    method: 'get',
    path: `${BASE}/registered-models/get`,
    summary: 'Get a registered model',
    tags,
    scope: 'read',
    response: registeredModelResponse,
    query: z.object({ name }).strict(),
    handler: async ({ query, deps }) => ({
      registered_model: registeredModelJson(await getRegisteredModel(deps.db, query.name)),
    }),
  }),
  route({
    method: 'get',
    path: `${BASE}/registered-models/search`,
    summary: 'Search registered models',
    tags,
    scope: 'read',
    query: search,
    response: z.object({ registered_models: z.array(RegisteredModelJson), next_page_token: z.string().optional() }),
    handler: async ({ query, deps }) => {
      const found = await searchRegisteredModels(deps.db, {
        filter: query.filter,
        maxResults: query.max_results,
        orderBy: query.order_by,
        pageToken: query.page_token,
      });
      return {
        registered_models: found.models.map(registeredModelJson),
        ...(found.nextPageToken ? { next_page_token: found.nextPageToken } : {}),
      };
    },
  }),
  route({
    method: 'patch',
    path: `${BASE}/registered-models/update`,
    summary: "Update a registered model's description",
    tags,
    scope: 'write',
    response: registeredModelResponse,
    body: z.object({ name, description: z.string().optional(), deployment_job_id: z.string().optional() }).strict(),
    handler: async ({ body, deps }) => ({
      registered_model: registeredModelJson(
        await updateRegisteredModel(deps.db, body.name, { description: body.description }),
      ),
    }),
  }),
  route({
    method: 'delete',
    path: `${BASE}/registered-models/delete`,
    summary: 'Delete a registered model and its versions (refused while it has aliases)',
    tags,
    scope: 'admin',
    body: z.object({ name }).strict(),
    handler: async ({ body, deps }) => {
      await deleteRegisteredModel(deps.db, body.name);
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/registered-models/rename`,
    summary: 'Rename a registered model (not supported: refused)',
    tags,
    scope: 'admin',
    body: z.object({ name, new_name: z.string().optional() }).strict(),
    handler: async ({ body, deps }) => {
      await getRegisteredModel(deps.db, body.name);
      throw new ApiError(
        'INVALID_STATE',
        'registered models cannot be renamed: deployments, predictions and monitors refer to them by name; register a new model instead',
      );
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/registered-models/set-tag`,
    summary: 'Set a tag on a registered model',
    tags,
    scope: 'write',
    body: z.object({ name, key: tagKey, value: tagValue }).strict(),
    handler: async ({ body, deps }) => {
      await setRegisteredModelTags(deps.db, body.name, { [body.key]: body.value });
      return {};
    },
  }),
  route({
    method: 'delete',
    path: `${BASE}/registered-models/delete-tag`,
    summary: 'Delete a tag of a registered model',
    tags,
    scope: 'write',
    body: z.object({ name, key: tagKey }).strict(),
    handler: async ({ body, deps }) => {
      await setRegisteredModelTags(deps.db, body.name, { [body.key]: null });
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/registered-models/alias`,
    summary: 'Point an alias at a version (audited; moves what serving answers with)',
    tags,
    scope: 'admin',
    body: z.object({ name, alias: z.string(), version }).strict(),
    handler: async ({ body, principal, deps }) => {
      await setAlias(deps.db, {
        modelName: body.name,
        alias: body.alias,
        version: body.version,
        actor: principal.name,
        reason: MLFLOW_ALIAS_REASON,
      });
      return {};
    },
  }),
  route({
    method: 'delete',
    path: `${BASE}/registered-models/alias`,
    summary: 'Delete an alias (audited; refused while it is deployed)',
    tags,
    scope: 'admin',
    body: z.object({ name, alias: z.string() }).strict(),
    handler: async ({ body, principal, deps }) => {
      await deleteAlias(deps.db, {
        modelName: body.name,
        alias: body.alias,
        actor: principal.name,
        reason: 'deleted over the MLflow API',
      });
      return {};
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/registered-models/alias`,
    summary: 'Get the version an alias points at',
    tags,
    scope: 'read',
    response: modelVersionResponse,
    query: z.object({ name, alias: z.string() }).strict(),
    handler: async ({ query, deps }) => ({
      model_version: modelVersionJson(await getVersionByAlias(deps.db, query.name, query.alias)),
    }),
  }),
  route({
    method: 'post',
    path: `${BASE}/registered-models/get-latest-versions`,
    summary: 'The latest version per stage (None, Archived)',
    tags,
    scope: 'read',
    body: z.object({ name, stages: z.array(z.string()).optional() }).strict(),
    response: z.object({ model_versions: z.array(ModelVersionJson) }),
    handler: ({ body, deps }) => latestVersions(deps, body.name, body.stages),
  }),
  route({
    method: 'get',
    path: `${BASE}/registered-models/get-latest-versions`,
    summary: 'The latest version per stage (query string)',
    tags,
    scope: 'read',
    query: z.object({ name, stages: stringList.optional() }).strict(),
    response: z.object({ model_versions: z.array(ModelVersionJson) }),
    handler: ({ query, deps }) => latestVersions(deps, query.name, query.stages),
  }),

  route({
    method: 'post',
    path: `${BASE}/model-versions/create`,
    summary: 'Create a model version from a source URI (and a run)',
    tags,
    scope: 'write',
    response: modelVersionResponse,
    body: z
      .object({
        name,
        source: z.string().min(1, 'must not be empty'),
        run_id: z.string().optional(),
        tags: z.array(tag).optional(),
        run_link: z.string().optional(),
        description: z.string().optional(),
        model_id: z.string().optional(),
      })
      .strict(),
    handler: async ({ body, principal, deps }) => {
      const created = await createModelVersion(deps.db, {
        modelName: body.name,
        source: body.source,
        runId: body.run_id || undefined,
        tags: fromEntries(body.tags),
        description: body.description,
        userId: principal.name,
      });
      return { model_version: modelVersionJson(created) };
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/model-versions/get`,
    summary: 'Get a model version',
    tags,
    scope: 'read',
    response: modelVersionResponse,
    query: z.object({ name, version }).strict(),
    handler: async ({ query, deps }) => ({
      model_version: modelVersionJson(await getModelVersion(deps.db, query.name, query.version)),
    }),
  }),
  route({
    method: 'get',
    path: `${BASE}/model-versions/search`,
    summary: 'Search model versions',
    tags,
    scope: 'read',
    query: search,
    response: z.object({ model_versions: z.array(ModelVersionJson), next_page_token: z.string().optional() }),
    handler: async ({ query, deps }) => {
      const found = await searchModelVersions(deps.db, {
        filter: query.filter,
        maxResults: query.max_results,
        orderBy: query.order_by,
        pageToken: query.page_token,
      });
      return {
        model_versions: found.versions.map(modelVersionJson),
        ...(found.nextPageToken ? { next_page_token: found.nextPageToken } : {}),
      };
    },
  }),
  route({
    method: 'patch',
    path: `${BASE}/model-versions/update`,
    summary: "Update a model version's description",
    tags,
    scope: 'write',
    response: modelVersionResponse,
    body: z.object({ name, version, description: z.string().optional() }).strict(),
    handler: async ({ body, deps }) => ({
      model_version: modelVersionJson(
        await updateModelVersion(deps.db, body.name, body.version, { description: body.description }),
      ),
    }),
  }),
  route({
    method: 'post',
    path: `${BASE}/model-versions/transition-stage`,
    summary: 'Refused: stages (deprecated in MLflow since 2.9) are not kept; aliases take their place',
    tags,
    scope: 'write',
    body: z
      .object({
        name,
        version,
        stage: z.string(),
        archive_existing_versions: z.union([z.boolean(), z.enum(['true', 'false'])]).optional(),
      })
      .strict(),
    handler: ({ body }) => {
      throw invalid(
        'stage',
        `model stages are not kept here (MLflow deprecated them in 2.9): instead of moving ${body.name} version ` +
          `${body.version} to "${body.stage}", point an alias at it, e.g. ` +
          `client.set_registered_model_alias("${body.name}", "champion", ${body.version}) (an admin token), ` +
          `and load it as models:/${body.name}@champion`,
      );
    },
  }),
  route({
    method: 'delete',
    path: `${BASE}/model-versions/delete`,
    summary: 'Delete a model version (refused while an alias or a rollout uses it)',
    tags,
    scope: 'admin',
    body: z.object({ name, version }).strict(),
    handler: async ({ body, deps }) => {
      await deleteModelVersion(deps.db, body.name, body.version);
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/model-versions/set-tag`,
    summary: 'Set a tag on a model version',
    tags,
    scope: 'write',
    body: z.object({ name, version, key: tagKey, value: tagValue }).strict(),
    handler: async ({ body, deps }) => {
      await setModelVersionTags(deps.db, body.name, body.version, { [body.key]: body.value });
      return {};
    },
  }),
  route({
    method: 'delete',
    path: `${BASE}/model-versions/delete-tag`,
    summary: 'Delete a tag of a model version',
    tags,
    scope: 'write',
    body: z.object({ name, version, key: tagKey }).strict(),
    handler: async ({ body, deps }) => {
      await setModelVersionTags(deps.db, body.name, body.version, { [body.key]: null });
      return {};
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/model-versions/get-download-uri`,
    summary: "Where a model version's artifacts are",
    tags,
    scope: 'read',
    query: z.object({ name, version }).strict(),
    response: z.object({ artifact_uri: z.string() }),
    handler: async ({ query, deps }) => ({
      artifact_uri: await downloadUri(deps, await getModelVersion(deps.db, query.name, query.version)),
    }),
  }),
];
