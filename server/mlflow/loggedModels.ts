/** MLflow 3's logged-model routes (`/api/2.0/mlflow/logged-models`, `runs/outputs`), in MLflow's wire format. */
import { z } from 'zod';
import { invalid } from '../../config/errors';
import {
  createLoggedModel,
  deleteLoggedModel,
  deleteLoggedModelTag,
  finalizeLoggedModel,
  getLoggedModel,
  linkRunOutputs,
  logLoggedModelParams,
  parseLoggedModelStatus,
  searchLoggedModels,
  setLoggedModelTags,
  type LoggedModel,
  type LoggedModelStatus,
} from '../../store/loggedModels';
import { route, type RouteSpec } from '../route';
import { listArtifactDir, proxiedPath, safeArtifactPath } from './artifacts';
import { entries, experimentIdField, fromEntries, keyValue } from './wire';

const WIRE_STATUS: Record<LoggedModelStatus, string> = {
  PENDING: 'LOGGED_MODEL_PENDING',
  READY: 'LOGGED_MODEL_READY',
  FAILED: 'LOGGED_MODEL_UPLOAD_FAILED',
};
/** Protobuf's enum numbers, which a client may send instead of names. */
const STATUS_NUMBERS: Record<number, LoggedModelStatus> = { 1: 'PENDING', 2: 'READY', 3: 'FAILED' };

/** A LoggedModel message (`{info, data}`). */
export function loggedModelJson(model: LoggedModel) {
  return {
    info: {
      model_id: model.id,
      experiment_id: String(model.experimentId),
      name: model.name,
      artifact_uri: model.artifactUri,
      status: WIRE_STATUS[model.status],
      creation_timestamp_ms: model.createdAt.getTime(),
      last_updated_timestamp_ms: model.updatedAt.getTime(),
      ...(model.modelType ? { model_type: model.modelType } : {}),
      ...(model.sourceRunId ? { source_run_id: model.sourceRunId } : {}),
      tags: entries(model.tags),
    },
    data: { params: entries(model.params), metrics: [] },
  };
}

const keyValueList = z.array(keyValue).default([]);
const modelParams = z.object({ model_id: z.string().min(1) });
const status = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const stored = typeof value === 'number' ? STATUS_NUMBERS[value] : parseLoggedModelStatus(value);
  if (!stored)
    ctx.addIssue({
      code: 'custom',
      message: `"${value}" is not one of LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED, LOGGED_MODEL_PENDING`,
    });
  return stored ?? 'PENDING';
});

const TAGS = ['MLflow logged models'];

export const loggedModelRoutes: RouteSpec[] = [
  route({
    method: 'post',
    path: '/api/2.0/mlflow/logged-models',
    summary: 'Create a logged model (PENDING until finalised)',
    tags: TAGS,
    scope: 'write',
    body: z.object({
      experiment_id: experimentIdField,
      name: z.string().optional(),
      model_type: z.string().optional(),
      source_run_id: z.string().optional(),
      params: keyValueList,
      tags: keyValueList,
    }),
    async handler({ body, deps }) {
      const model = await createLoggedModel(deps.db, {
        experimentId: body.experiment_id,
        name: body.name,
        modelType: body.model_type,
        sourceRunId: body.source_run_id,
        params: fromEntries(body.params),
        tags: fromEntries(body.tags),
      });
      return { model: loggedModelJson(model) };
    },
  }),
  route({
    method: 'post',
    path: '/api/2.0/mlflow/logged-models/search',
    summary: 'Search logged models',
    tags: TAGS,
    scope: 'read',
    body: z.object({
      experiment_ids: z.array(experimentIdField).default([]),
      filter: z.string().optional(),
      max_results: z.number().int().positive().optional(),
      order_by: z.array(z.object({ field_name: z.string(), ascending: z.boolean().default(true) })).default([]),
      page_token: z.string().optional(),
      datasets: z.array(z.unknown()).default([]),
    }),
    async handler({ body, deps }) {
      if (body.datasets.length) throw invalid('datasets', 'dataset-scoped metric search is not supported');
      const found = await searchLoggedModels(deps.db, {
        experimentIds: body.experiment_ids,
        filter: body.filter,
        maxResults: body.max_results,
        orderBy: body.order_by.map((entry) => ({ field: entry.field_name, ascending: entry.ascending })),
        pageToken: body.page_token,
      });
      return {
        models: found.models.map(loggedModelJson),
        ...(found.nextPageToken ? { next_page_token: found.nextPageToken } : {}),
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/2.0/mlflow/logged-models/{model_id}',
    summary: 'Get a logged model',
    tags: TAGS,
    scope: 'read',
    params: modelParams,
    query: z.object({ allow_deleted: z.enum(['true', 'false']).optional() }),
    async handler({ params, query, deps }) {
      return {
        model: loggedModelJson(
          await getLoggedModel(deps.db, params.model_id, { allowDeleted: query.allow_deleted === 'true' }),
        ),
      };
    },
  }),
  route({
    method: 'patch',
    path: '/api/2.0/mlflow/logged-models/{model_id}',
    summary: 'Finalise a logged model (READY or UPLOAD_FAILED)',
    tags: TAGS,
    scope: 'write',
    params: modelParams,
    body: z.object({ model_id: z.string().optional(), status }),
    async handler({ params, body, deps }) {
      if (body.model_id && body.model_id !== params.model_id)
        throw invalid('model_id', `the body names ${body.model_id}, the path ${params.model_id}`);
      return { model: loggedModelJson(await finalizeLoggedModel(deps.db, params.model_id, body.status)) };
    },
  }),
  route({
    method: 'delete',
    path: '/api/2.0/mlflow/logged-models/{model_id}',
    summary: 'Delete a logged model',
    tags: TAGS,
    scope: 'write',
    params: modelParams,
    async handler({ params, deps }) {
      await deleteLoggedModel(deps.db, params.model_id);
      return {};
    },
  }),
  route({
    method: 'patch',
    path: '/api/2.0/mlflow/logged-models/{model_id}/tags',
    summary: "Set a logged model's tags",
    tags: TAGS,
    scope: 'write',
    params: modelParams,
    body: z.object({ model_id: z.string().optional(), tags: keyValueList }),
    async handler({ params, body, deps }) {
      await setLoggedModelTags(deps.db, params.model_id, fromEntries(body.tags));
      return {};
    },
  }),
  route({
    method: 'delete',
    path: '/api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}',
    summary: "Delete a logged model's tag",
    tags: TAGS,
    scope: 'write',
    params: z.object({ model_id: z.string().min(1), tag_key: z.string().min(1) }),
    async handler({ params, deps }) {
      await deleteLoggedModelTag(deps.db, params.model_id, params.tag_key);
      return {};
    },
  }),
  route({
    method: 'post',
    path: '/api/2.0/mlflow/logged-models/{model_id}/params',
    summary: 'Log params on a logged model',
    tags: TAGS,
    scope: 'write',
    params: modelParams,
    body: z.object({ model_id: z.string().optional(), params: keyValueList }),
    async handler({ params, body, deps }) {
      await logLoggedModelParams(deps.db, params.model_id, fromEntries(body.params));
      return {};
    },
  }),
  route({
    method: 'get',
    path: '/api/2.0/mlflow/logged-models/{model_id}/artifacts/directories',
    summary: "List a logged model's artifacts, one level deep",
    tags: TAGS,
    scope: 'read',
    params: modelParams,
    query: z.object({ artifact_directory_path: z.string().optional(), page_token: z.string().optional() }),
    async handler({ params, query, deps }) {
      const model = await getLoggedModel(deps.db, params.model_id);
      const root = proxiedPath(model.artifactUri);
      if (root === undefined)
        throw invalid(
          'model_id',
          `logged model ${model.id} keeps its artifacts at ${model.artifactUri}, which this server does not proxy`,
        );
      const relative = safeArtifactPath(query.artifact_directory_path ?? '', 'artifact_directory_path');
      const files = await listArtifactDir(deps.objects, [root, relative].filter(Boolean).join('/'));
      return {
        root_uri: model.artifactUri,
        files: files.map((file) => ({ ...file, path: relative ? `${relative}/${file.path}` : file.path })),
      };
    },
  }),
  route({
    method: 'post',
    path: '/api/2.0/mlflow/runs/outputs',
    summary: "Record a run's outputs (logged models)",
    tags: TAGS,
    scope: 'write',
    body: z.object({
      run_id: z.string().min(1),
      models: z
        .array(z.object({ model_id: z.string().min(1), step: z.union([z.number(), z.string()]).optional() }))
        .default([]),
    }),
    async handler({ body, deps }) {
      await linkRunOutputs(
        deps.db,
        body.run_id,
        body.models.map((model) => model.model_id),
      );
      return {};
    },
  }),
];
