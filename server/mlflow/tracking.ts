/** MLflow tracking routes: experiments, runs, params, metrics, tags, search and metric history. */
import { z } from 'zod';
import { invalid } from '../../config/errors';
import {
  createExperiment,
  getExperiment,
  getExperimentByName,
  searchExperiments,
  setExperimentTag,
  updateExperiment,
  type ViewType,
} from '../../store/experiments';
import {
  createRun,
  deleteTag,
  getRun,
  logBatch,
  metricHistory,
  recordLoggedModel,
  searchRuns,
  setRunDeleted,
  updateRun,
} from '../../store/runs';
import { inputsOfRuns, logInputs } from '../../store/runInputs';
import { route, type RouteSpec } from '../route';
import {
  doubleJson,
  epochMillis,
  experimentIdField,
  experimentJson,
  fromEntries,
  int64,
  keyValue,
  metricValue,
  runInfoJson,
  runJson,
  STATUS_FROM_MLFLOW,
} from './wire';

const BASE = '/api/2.0/mlflow';
const tags = ['MLflow tracking'];
const viewType = z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).optional();
const runRef = { run_id: z.string().optional(), run_uuid: z.string().optional() };
const stringList = z.union([z.array(z.string()), z.string()]).transform((v) => (Array.isArray(v) ? v : [v]));

function runIdOf(body: { run_id?: string; run_uuid?: string }): string {
  const id = body.run_id || body.run_uuid;
  if (!id) throw invalid('run_id', 'is required');
  return id;
}

const searchExperimentsBody = z
  .object({
    max_results: int64.optional(),
    page_token: z.string().optional(),
    filter: z.string().optional(),
    order_by: stringList.optional(),
    view_type: viewType,
  })
  .strict();

const searchRunsBody = z
  .object({
    experiment_ids: z.array(z.union([z.string(), z.number()])).optional(),
    filter: z.string().optional(),
    run_view_type: viewType,
    max_results: int64.optional(),
    order_by: stringList.optional(),
    page_token: z.string().optional(),
  })
  .strict();

const metricBody = z
  .object({
    key: z.string(),
    value: metricValue,
    timestamp: int64,
    step: int64.optional(),
    model_id: z.string().optional(),
    dataset_name: z.string().optional(),
    dataset_digest: z.string().optional(),
    run_id: z.string().optional(),
  })
  .strict();

async function doSearchExperiments(
  deps: Parameters<RouteSpec['handler']>[0]['deps'],
  body: z.infer<typeof searchExperimentsBody>,
) {
  const found = await searchExperiments(deps.db, {
    filter: body.filter,
    maxResults: body.max_results,
    pageToken: body.page_token,
    orderBy: body.order_by,
    viewType: body.view_type as ViewType,
  });
  return {
    experiments: found.experiments.map(experimentJson),
    ...(found.nextPageToken ? { next_page_token: found.nextPageToken } : {}),
  };
}

export const trackingRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: '/api/3.0/mlflow/server-info',
    summary: 'What this server offers MLflow 3 clients (no multipart artifact uploads)',
    tags,
    scope: 'public',
    handler: () => ({
      multipart_uploads_enabled: false,
      multipart_downloads_enabled: false,
      workspaces_enabled: false,
    }),
  }),
  route({
    method: 'post',
    path: `${BASE}/experiments/create`,
    summary: 'Create an experiment',
    tags,
    scope: 'write',
    body: z
      .object({ name: z.string(), artifact_location: z.string().optional(), tags: z.array(keyValue).optional() })
      .strict(),
    handler: async ({ body, deps }) => {
      if (body.artifact_location && !body.artifact_location.startsWith('mlflow-artifacts:')) {
        throw invalid(
          'artifact_location',
          'this server keeps artifacts itself (mlflow-artifacts:/…); other locations are not supported',
        );
      }
      const experiment = await createExperiment(deps.db, { name: body.name, tags: fromEntries(body.tags) });
      return { experiment_id: String(experiment.id) };
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/experiments/get`,
    summary: 'Get an experiment by id',
    tags,
    scope: 'read',
    query: z.object({ experiment_id: experimentIdField }).strict(),
    handler: async ({ query, deps }) => ({
      experiment: experimentJson(await getExperiment(deps.db, query.experiment_id)),
    }),
  }),
  route({
    method: 'get',
    path: `${BASE}/experiments/get-by-name`,
    summary: 'Get an experiment by name',
    tags,
    scope: 'read',
    query: z.object({ experiment_name: z.string() }).strict(),
    handler: async ({ query, deps }) => ({
      experiment: experimentJson(await getExperimentByName(deps.db, query.experiment_name)),
    }),
  }),
  route({
    method: 'post',
    path: `${BASE}/experiments/search`,
    summary: 'Search experiments',
    tags,
    scope: 'read',
    body: searchExperimentsBody,
    handler: ({ body, deps }) => doSearchExperiments(deps, body),
  }),
  route({
    method: 'get',
    path: `${BASE}/experiments/search`,
    summary: 'Search experiments (query string)',
    tags,
    scope: 'read',
    query: searchExperimentsBody,
    handler: ({ query, deps }) => doSearchExperiments(deps, query),
  }),
  route({
    method: 'post',
    path: `${BASE}/experiments/delete`,
    summary: 'Delete an experiment (restorable)',
    tags,
    scope: 'write',
    body: z.object({ experiment_id: experimentIdField }).strict(),
    handler: async ({ body, deps }) => {
      await updateExperiment(deps.db, body.experiment_id, { deleted: true });
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/experiments/restore`,
    summary: 'Restore a deleted experiment',
    tags,
    scope: 'write',
    body: z.object({ experiment_id: experimentIdField }).strict(),
    handler: async ({ body, deps }) => {
      await updateExperiment(deps.db, body.experiment_id, { deleted: false });
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/experiments/update`,
    summary: 'Rename an experiment',
    tags,
    scope: 'write',
    body: z.object({ experiment_id: experimentIdField, new_name: z.string().optional() }).strict(),
    handler: async ({ body, deps }) => {
      await updateExperiment(deps.db, body.experiment_id, { newName: body.new_name });
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/experiments/set-experiment-tag`,
    summary: 'Set a tag on an experiment',
    tags,
    scope: 'write',
    body: z.object({ experiment_id: experimentIdField, key: z.string(), value: z.string() }).strict(),
    handler: async ({ body, deps }) => {
      await setExperimentTag(deps.db, body.experiment_id, body.key, body.value);
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/experiments/delete-experiment-tag`,
    summary: 'Delete a tag of an experiment',
    tags,
    scope: 'write',
    body: z.object({ experiment_id: experimentIdField, key: z.string() }).strict(),
    handler: async ({ body, deps }) => {
      await setExperimentTag(deps.db, body.experiment_id, body.key, null);
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/create`,
    summary: 'Create a run',
    tags,
    scope: 'write',
    body: z
      .object({
        experiment_id: experimentIdField.optional(),
        user_id: z.string().optional(),
        run_name: z.string().optional(),
        start_time: epochMillis.optional(),
        tags: z.array(keyValue).optional(),
      })
      .strict(),
    handler: async ({ body, deps, principal }) => {
      const run = await createRun(deps.db, {
        experimentId: body.experiment_id ?? 0,
        userId: body.user_id || principal.name,
        name: body.run_name || undefined,
        startTime: body.start_time,
        tags: fromEntries(body.tags),
      });
      return { run: runJson(run) };
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/update`,
    summary: 'Update a run: status, end time, name',
    tags,
    scope: 'write',
    body: z
      .object({
        ...runRef,
        status: z.enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']).optional(),
        end_time: epochMillis.optional(),
        run_name: z.string().optional(),
      })
      .strict(),
    handler: async ({ body, deps }) => {
      const run = await updateRun(deps.db, runIdOf(body), {
        status: body.status ? STATUS_FROM_MLFLOW[body.status] : undefined,
        endTime: body.end_time,
        name: body.run_name || undefined,
      });
      return { run_info: runInfoJson(run) };
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/delete`,
    summary: 'Delete a run (restorable)',
    tags,
    scope: 'write',
    body: z.object({ run_id: z.string() }).strict(),
    handler: async ({ body, deps }) => {
      await setRunDeleted(deps.db, body.run_id, true);
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/restore`,
    summary: 'Restore a deleted run',
    tags,
    scope: 'write',
    body: z.object({ run_id: z.string() }).strict(),
    handler: async ({ body, deps }) => {
      await setRunDeleted(deps.db, body.run_id, false);
      return {};
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/runs/get`,
    summary: 'Get a run',
    tags,
    scope: 'read',
    query: z.object(runRef).strict(),
    handler: async ({ query, deps }) => {
      const run = await getRun(deps.db, runIdOf(query));
      return { run: runJson(run, (await inputsOfRuns(deps.db, [run.id])).get(run.id)) };
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/search`,
    summary: "Search runs with MLflow's filter grammar (and / or / parentheses)",
    tags,
    scope: 'read',
    body: searchRunsBody,
    handler: async ({ body, deps }) => {
      const ids = (body.experiment_ids ?? []).map((id, i) => {
        const n = Number(id);
        if (!Number.isInteger(n) || n < 0) throw invalid(`experiment_ids[${i}]`, `"${id}" is not an experiment id`);
        return n;
      });
      const found = await searchRuns(deps.db, {
        experimentIds: ids,
        filter: body.filter,
        orderBy: body.order_by,
        maxResults: body.max_results,
        pageToken: body.page_token,
        viewType: body.run_view_type as ViewType,
      });
      const inputs = await inputsOfRuns(
        deps.db,
        found.runs.map((run) => run.id),
      );
      return {
        runs: found.runs.map((run) => runJson(run, inputs.get(run.id))),
        ...(found.nextPageToken ? { next_page_token: found.nextPageToken } : {}),
      };
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/log-metric`,
    summary: 'Log one metric point',
    tags,
    scope: 'write',
    body: metricBody.extend(runRef).strict(),
    handler: async ({ body, deps }) => {
      await logBatch(deps.db, runIdOf(body), {
        metrics: [{ key: body.key, value: body.value, timestamp: body.timestamp, step: body.step ?? 0 }],
      });
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/log-parameter`,
    summary: 'Log one param (immutable once logged)',
    tags,
    scope: 'write',
    body: z.object({ ...runRef, key: z.string(), value: z.string() }).strict(),
    handler: async ({ body, deps }) => {
      await logBatch(deps.db, runIdOf(body), { params: { [body.key]: body.value } });
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/set-tag`,
    summary: 'Set a tag on a run',
    tags,
    scope: 'write',
    body: z.object({ ...runRef, key: z.string(), value: z.string() }).strict(),
    handler: async ({ body, deps }) => {
      await logBatch(deps.db, runIdOf(body), { tags: { [body.key]: body.value } });
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/delete-tag`,
    summary: 'Delete a tag of a run',
    tags,
    scope: 'write',
    body: z.object({ run_id: z.string(), key: z.string() }).strict(),
    handler: async ({ body, deps }) => {
      await deleteTag(deps.db, body.run_id, body.key);
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/log-batch`,
    summary: 'Log metrics, params and tags in one request (one transaction)',
    tags,
    scope: 'write',
    body: z
      .object({
        run_id: z.string(),
        // MLflow 3's client names the run in every metric too (`mlflow.log_metrics`, autologging).
        metrics: z.array(metricBody).optional(),
        params: z.array(keyValue).optional(),
        tags: z.array(keyValue).optional(),
      })
      .strict(),
    handler: async ({ body, deps }) => {
      body.metrics?.forEach((m, i) => {
        if (m.run_id !== undefined && m.run_id !== body.run_id)
          throw invalid(`metrics[${i}].run_id`, `"${m.run_id}" is not the batch's run "${body.run_id}"`);
      });
      await logBatch(deps.db, body.run_id, {
        metrics: (body.metrics ?? []).map((m) => ({
          key: m.key,
          value: m.value,
          timestamp: m.timestamp,
          step: m.step ?? 0,
        })),
        params: fromEntries(body.params),
        tags: fromEntries(body.tags),
      });
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/log-model`,
    summary: "Record a logged model's metadata in its run's mlflow.log-model.history tag (MLflow 2 clients' log_model)",
    tags,
    scope: 'write',
    body: z.object({ run_id: z.string(), model_json: z.string() }).strict(),
    handler: async ({ body, deps }) => {
      let model: unknown;
      try {
        model = JSON.parse(body.model_json);
      } catch (error) {
        throw invalid('model_json', `is not JSON (${(error as Error).message})`);
      }
      if (!model || typeof model !== 'object' || Array.isArray(model))
        throw invalid('model_json', 'must be a JSON object (the MLmodel file as a dict)');
      await recordLoggedModel(deps.db, body.run_id, model as Record<string, unknown>);
      return {};
    },
  }),
  route({
    method: 'post',
    path: `${BASE}/runs/log-inputs`,
    summary: 'Log the datasets (and MLflow 3 logged models) a run read: their descriptions, never their rows',
    tags,
    scope: 'write',
    body: z
      .object({
        run_id: z.string(),
        datasets: z
          .array(
            z
              .object({
                tags: z.array(keyValue).optional(),
                dataset: z
                  .object({
                    name: z.string(),
                    digest: z.string(),
                    source_type: z.string(),
                    source: z.string(),
                    schema: z.string().optional(),
                    profile: z.string().optional(),
                  })
                  .strict(),
              })
              .strict(),
          )
          .optional(),
        models: z.array(z.object({ model_id: z.string() }).strict()).optional(),
      })
      .strict(),
    handler: async ({ body, deps }) => {
      await logInputs(deps.db, body.run_id, {
        datasets: (body.datasets ?? []).map(({ tags: inputTags, dataset }) => ({
          name: dataset.name,
          digest: dataset.digest,
          sourceType: dataset.source_type,
          source: dataset.source,
          schema: dataset.schema,
          profile: dataset.profile,
          tags: fromEntries(inputTags),
        })),
        models: (body.models ?? []).map((model) => model.model_id),
      });
      return {};
    },
  }),
  route({
    method: 'get',
    path: `${BASE}/metrics/get-history`,
    summary: "A metric's points, by step",
    tags,
    scope: 'read',
    query: z
      .object({ ...runRef, metric_key: z.string(), page_token: z.string().optional(), max_results: int64.optional() })
      .strict(),
    handler: async ({ query, deps }) => {
      const found = await metricHistory(deps.db, runIdOf(query), query.metric_key, {
        maxResults: query.max_results,
        pageToken: query.page_token,
      });
      return {
        metrics: found.points.map((p) => ({ ...p, value: doubleJson(p.value) })),
        ...(found.nextPageToken ? { next_page_token: found.nextPageToken } : {}),
      };
    },
  }),
];
