/** MLflow's wire format: field names, upper-case statuses, ms timestamps, tags and params as [{key, value}]. */
import { z } from 'zod';
import type { Experiment } from '../../store/experiments';
import type { RunInputs } from '../../store/runInputs';
import type { Run } from '../../store/runs';

/** A run's status as the runs store gives it. */
type RunStatus = Run['status'];

export const STATUS_TO_MLFLOW: Record<RunStatus, string> = {
  running: 'RUNNING',
  scheduled: 'SCHEDULED',
  finished: 'FINISHED',
  failed: 'FAILED',
  killed: 'KILLED',
};
export const STATUS_FROM_MLFLOW = Object.fromEntries(
  Object.entries(STATUS_TO_MLFLOW).map(([k, v]) => [v, k]),
) as Record<string, RunStatus>;

/** int64 fields arrive as JSON numbers, or as strings (protobuf JSON, query strings). */
export const int64 = z.union([z.number().int(), z.string().regex(/^-?\d+$/, 'expected an integer')]).transform(Number);
/** Metric values: numbers, with NaN and ±Infinity as protobuf JSON spells them. */
export const metricValue = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]).transform(Number);
export const keyValue = z.object({ key: z.string(), value: z.string() }).strict();
/** Postgres integer columns (ids, versions) hold at most this. */
export const INT32_MAX = 2_147_483_647;
export const experimentIdField = z
  .union([z.string().regex(/^\d{1,10}$/, 'expected an experiment id'), z.number().int().nonnegative()])
  .transform(Number)
  .refine((id) => id <= INT32_MAX, 'expected an experiment id');
/** Milliseconds since the epoch that a Date can hold. */
export const epochMillis = int64.refine(
  (ms) => Math.abs(ms) <= 8.64e15,
  'is not a time in milliseconds since the epoch',
);

/** Doubles as protobuf JSON writes them: NaN and ±Infinity as strings (JSON has no literal for them). */
export const doubleJson = (value: number): number | string => (Number.isFinite(value) ? value : String(value));

export const entries = (record: Record<string, unknown>) =>
  Object.entries(record).map(([key, value]) => ({ key, value: String(value) }));
export const fromEntries = (list: { key: string; value: string }[] | undefined) =>
  Object.fromEntries((list ?? []).map((t) => [t.key, t.value]));

export function experimentJson(experiment: Experiment) {
  return {
    experiment_id: String(experiment.id),
    name: experiment.name,
    artifact_location: experiment.artifactLocation,
    lifecycle_stage: experiment.lifecycleStage,
    creation_time: experiment.createdAt.getTime(),
    last_update_time: experiment.updatedAt.getTime(),
    tags: entries(experiment.tags),
  };
}

/** Pipeline runs keep nested params; MLflow sees them flattened to dotted keys. */
export function flattenParams(value: unknown, prefix = ''): [string, string][] {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => flattenParams(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, typeof value === 'string' ? value : JSON.stringify(value)]];
}

export function runInfoJson(run: Run) {
  return {
    run_id: run.id,
    run_uuid: run.id,
    run_name: run.name ?? run.id,
    experiment_id: String(run.experimentId),
    user_id: run.userId ?? '',
    status: STATUS_TO_MLFLOW[run.status] ?? 'RUNNING',
    start_time: run.startedAt.getTime(),
    ...(run.endedAt ? { end_time: run.endedAt.getTime() } : {}),
    artifact_uri: run.artifactUri,
    lifecycle_stage: run.lifecycleStage,
  };
}

/** MLflow's RunInputs: protobuf JSON leaves out empty lists, so a run without inputs has `{}`. */
export function runInputsJson(inputs: RunInputs | undefined) {
  return {
    ...(inputs?.datasets.length
      ? {
          dataset_inputs: inputs.datasets.map((input) => ({
            tags: entries(input.tags),
            dataset: {
              name: input.name,
              digest: input.digest,
              source_type: input.sourceType,
              source: input.source,
              ...(input.schema ? { schema: input.schema } : {}),
              ...(input.profile ? { profile: input.profile } : {}),
            },
          })),
        }
      : {}),
    ...(inputs?.models.length ? { model_inputs: inputs.models.map((id) => ({ model_id: id })) } : {}),
  };
}

export function runJson(run: Run, inputs?: RunInputs) {
  const timestamp = (run.endedAt ?? run.startedAt).getTime();
  return {
    info: runInfoJson(run),
    data: {
      metrics: Object.entries(run.metrics).map(([key, value]) => ({
        key,
        value: doubleJson(value),
        timestamp,
        step: 0,
      })),
      params: flattenParams(run.params).map(([key, value]) => ({ key, value })),
      tags: entries(run.tags),
    },
    inputs: runInputsJson(inputs),
  };
}
