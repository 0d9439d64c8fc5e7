/**
 * A run's inputs, as MLflow records them (`mlflow.log_input`, autologging): the datasets it read, described by name,
 * digest, source, schema and profile (never their rows), with the input's tags, and MLflow 3's logged models it read.
 */
import { asc, inArray } from 'drizzle-orm';
import { invalid } from '../config/errors';
import { runDatasetInputs, runModelInputs } from '../schema/runs';
import type { Db } from '../storage/db';
import { lockActiveRun } from './runs';

export interface DatasetInput {
  name: string;
  digest: string;
  sourceType: string;
  source: string;
  schema?: string | null;
  profile?: string | null;
  /** The input's tags, e.g. `mlflow.data.context` = training. */
  tags: Record<string, string>;
}

export interface RunInputs {
  datasets: DatasetInput[];
  /** Logged model ids. */
  models: string[];
}

/** MLflow's own limits (mlflow/utils/validation.py), so what its server takes, this one takes. */
export const INPUT_LIMITS = {
  datasetsPerRequest: 1000,
  name: 500,
  digest: 36,
  source: 65_535,
  schema: 1_048_575,
  profile: 16_777_215,
  tagKey: 255,
  tagValue: 500,
} as const;

function checkLength(field: string, value: string | null | undefined, limit: number): void {
  if (value && value.length > limit) throw invalid(field, `is longer than ${limit} characters`);
}

function checkDataset(input: DatasetInput, i: number): void {
  const at = `datasets[${i}].dataset`;
  if (!input.name) throw invalid(`${at}.name`, 'must not be empty');
  if (!input.digest) throw invalid(`${at}.digest`, 'must not be empty');
  if (!input.sourceType) throw invalid(`${at}.source_type`, 'must not be empty');
  checkLength(`${at}.name`, input.name, INPUT_LIMITS.name);
  checkLength(`${at}.digest`, input.digest, INPUT_LIMITS.digest);
  checkLength(`${at}.source`, input.source, INPUT_LIMITS.source);
  checkLength(`${at}.schema`, input.schema, INPUT_LIMITS.schema);
  checkLength(`${at}.profile`, input.profile, INPUT_LIMITS.profile);
  for (const [key, value] of Object.entries(input.tags)) {
    if (!key) throw invalid(`datasets[${i}].tags.key`, 'must not be empty');
    checkLength(`datasets[${i}].tags.${key.slice(0, 40)}`, key, INPUT_LIMITS.tagKey);
    checkLength(`datasets[${i}].tags.${key.slice(0, 40)}`, value, INPUT_LIMITS.tagValue);
  }
}

/**
 * Records inputs of a run in one transaction. A dataset (name and digest) or model the run already has is kept as it
 * was first logged, as in MLflow, so a retried or repeated call changes nothing.
 */
export async function logInputs(db: Db, runId: string, inputs: RunInputs): Promise<void> {
  if (inputs.datasets.length > INPUT_LIMITS.datasetsPerRequest)
    throw invalid('datasets', `at most ${INPUT_LIMITS.datasetsPerRequest} per request, got ${inputs.datasets.length}`);
  inputs.datasets.forEach(checkDataset);
  inputs.models.forEach((id, i) => {
    if (!id) throw invalid(`models[${i}].model_id`, 'must not be empty');
  });
  await db.transaction(async (tx) => {
    await lockActiveRun(tx, runId);
    if (inputs.datasets.length)
      await tx
        .insert(runDatasetInputs)
        .values(
          inputs.datasets.map((input) => ({
            runId,
            name: input.name,
            digest: input.digest,
            sourceType: input.sourceType,
            source: input.source,
            schema: input.schema ?? null,
            profile: input.profile ?? null,
            tags: input.tags,
          })),
        )
        .onConflictDoNothing();
    if (inputs.models.length)
      await tx
        .insert(runModelInputs)
        .values([...new Set(inputs.models)].map((modelId) => ({ runId, modelId })))
        .onConflictDoNothing();
  });
}

/** Inputs of each run (in the order they were logged); runs without any are absent from the map. */
export async function inputsOfRuns(db: Db, runIds: string[]): Promise<Map<string, RunInputs>> {
  const found = new Map<string, RunInputs>();
  if (!runIds.length) return found;
  const of = (runId: string) => {
    let inputs = found.get(runId);
    if (!inputs) found.set(runId, (inputs = { datasets: [], models: [] }));
    return inputs;
  };
  const datasets = await db
    .select()
    .from(runDatasetInputs)
    .where(inArray(runDatasetInputs.runId, runIds))
    .orderBy(asc(runDatasetInputs.loggedAt), asc(runDatasetInputs.name), asc(runDatasetInputs.digest));
  for (const row of datasets)
    of(row.runId).datasets.push({
      name: row.name,
      digest: row.digest,
      sourceType: row.sourceType,
      source: row.source,
      schema: row.schema,
      profile: row.profile,
      tags: row.tags,
    });
  const models = await db
    .select()
    .from(runModelInputs)
    .where(inArray(runModelInputs.runId, runIds))
    .orderBy(asc(runModelInputs.loggedAt), asc(runModelInputs.modelId));
  for (const row of models) of(row.runId).models.push(row.modelId);
  return found;
}
