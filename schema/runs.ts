/**
 * Experiments, training runs (one per pipeline execution, or logged by a client over the API) and their step metrics.
 */
import { sql } from 'drizzle-orm';
import {
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';
import { datasetVersions } from './datasets';

/** Experiments group runs, as in MLflow; id 0 is MLflow's "Default". Runs refer to them by name. */
export const experiments = pgTable('experiments', {
  id: serial('id').primaryKey(),
  name: text('name').notNull().unique(),
  /** Where clients put the runs' artifacts (`mlflow-artifacts:/<id>`). */
  artifactLocation: text('artifact_location'),
  tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
  deletedAt: timestamp('deleted_at', { withTimezone: true }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export type RunStatus = 'scheduled' | 'running' | 'finished' | 'failed' | 'killed';

export const runs = pgTable(
  'runs',
  {
    id: text('id').primaryKey(),
    /** The workflow that owns this run (a pipeline, a sweep, a reproduction); null for runs logged by a client. */
    workflowId: text('workflow_id'),
    pipelineName: text('pipeline_name'),
    /** MLflow's run_name. */
    name: text('name'),
    /** Who logged it (MLflow's user_id); pipelines' runs are the worker's. */
    userId: text('user_id'),
    /** Runs are grouped by experiment, as in MLflow; the pipeline name by default. */
    experiment: text('experiment').notNull().default('default'),
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    /** Set on sweep trials: the sweep workflow and the trial number. */
    sweepId: text('sweep_id'),
    trial: integer('trial'),
    /** The registered model a pipeline trains; null for client-logged runs. */
    modelName: text('model_name'),
    datasetVersionId: text('dataset_version_id').references(() => datasetVersions.id),
    status: text('status').$type<RunStatus>().notNull(),
    task: text('task').$type<'regression' | 'classification'>(),
    /** A pipeline's training params (nested), or a client's flat string params. */
    params: jsonb('params').$type<Record<string, unknown>>().notNull().default({}),
    seed: integer('seed'),
    backend: text('backend'),
    taskQueue: text('task_queue'),
    codeVersion: text('code_version'),
    metrics: jsonb('metrics').$type<Record<string, number>>(),
    artifactKey: text('artifact_key'),
    error: text('error'),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    endedAt: timestamp('ended_at', { withTimezone: true }),
    /** MLflow's lifecycle_stage: set when a run is deleted (it stays, hidden from searches by default). */
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
  },
  (t) => [
    index('runs_model').on(t.modelName),
    index('runs_workflow').on(t.workflowId),
    index('runs_sweep').on(t.sweepId),
    index('runs_experiment_started').on(t.experiment, t.startedAt.desc()),
    index('runs_started').on(t.startedAt.desc()),
    index('runs_params').using('gin', sql`${t.params} jsonb_path_ops`),
    index('runs_tags').using('gin', sql`${t.tags} jsonb_path_ops`),
  ],
);

export const runMetrics = pgTable(
  'run_metrics',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id),
    key: text('key').notNull(),
    step: integer('step').notNull(),
    value: doublePrecision('value').notNull(),
    loggedAt: timestamp('logged_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // Keyed by step so a resumed attempt that re-logs an epoch overwrites instead of duplicating.
  (t) => [primaryKey({ columns: [t.runId, t.key, t.step] })],
);

/**
 * Each run's latest value per metric key (MLflow's latest_metrics): the rows behind `runs.metrics`, kept equal to it by
 * every write in store/runs.ts and store/metrics.ts. "Latest" is the greatest (step, logged_at, value), as in MLflow.
 * The experiment id is copied from the run (it never changes; renames keep the id) so a metric predicate or order
 * within an experiment walks one index range; it is null for a run whose experiment has no `experiments` row.
 */
export const runLatestMetrics = pgTable(
  'run_latest_metrics',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    experimentId: integer('experiment_id'),
    value: doublePrecision('value').notNull(),
    step: integer('step').notNull().default(0),
    loggedAt: timestamp('logged_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.key] }),
    index('run_latest_metrics_experiment_key_value').on(t.experimentId, t.key, t.value, t.runId),
  ],
);

export type RunRow = typeof runs.$inferSelect;
export type ExperimentRow = typeof experiments.$inferSelect;

/**
 * MLflow 3's logged models: a model's artifacts logged from a run (`mlflow.<flavor>.log_model`), before registration.
 */
export const loggedModels = pgTable(
  'logged_models',
  {
    id: text('id').primaryKey(),
    experimentId: integer('experiment_id')
      .notNull()
      .references(() => experiments.id),
    name: text('name').notNull(),
    sourceRunId: text('source_run_id').references(() => runs.id),
    /** PENDING until the client finalises it, then READY or FAILED. */
    status: text('status').notNull().default('PENDING'),
    modelType: text('model_type'),
    params: jsonb('params').$type<Record<string, string>>().notNull().default({}),
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
  },
  (t) => [index('logged_models_experiment').on(t.experimentId), index('logged_models_run').on(t.sourceRunId)],
);
export type LoggedModelRow = typeof loggedModels.$inferSelect;

/**
 * MLflow's run inputs (`mlflow.log_input`, autologging): the datasets a run read, each once per run by name and digest,
 * with the input's tags (`mlflow.data.context`: training, eval …); what is logged again for the same dataset is kept
 * as first logged, as MLflow does. Only the dataset's description is stored (source, schema, profile), never its data.
 */
export const runDatasetInputs = pgTable(
  'run_dataset_inputs',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    digest: text('digest').notNull(),
    sourceType: text('source_type').notNull(),
    source: text('source').notNull(),
    schema: text('schema'),
    profile: text('profile'),
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    loggedAt: timestamp('logged_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.name, t.digest] })],
);

/** MLflow 3's model inputs of a run: logged models it read (`LogInputs.models`). */
export const runModelInputs = pgTable(
  'run_model_inputs',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    modelId: text('model_id').notNull(),
    loggedAt: timestamp('logged_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.modelId] })],
);
