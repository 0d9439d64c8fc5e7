/** Training runs (one per pipeline execution) and their step metrics. */
import { doublePrecision, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import { datasetVersions } from './datasets';

export const runs = pgTable(
  'runs',
  {
    id: text('id').primaryKey(),
    /** The workflow that owns this run (a pipeline, a sweep, a reproduction). */
    workflowId: text('workflow_id').notNull(),
    pipelineName: text('pipeline_name').notNull(),
    /** Runs are grouped by experiment, as in MLflow; the pipeline name by default. */
    experiment: text('experiment').notNull().default('default'),
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    /** Set on sweep trials: the sweep workflow and the trial number. */
    sweepId: text('sweep_id'),
    trial: integer('trial'),
    modelName: text('model_name').notNull(),
    datasetVersionId: text('dataset_version_id').notNull().references(() => datasetVersions.id),
    status: text('status').$type<'running' | 'finished' | 'failed'>().notNull(),
    task: text('task').$type<'regression' | 'classification'>().notNull(),
    params: jsonb('params').$type<Record<string, unknown>>().notNull(),
    seed: integer('seed').notNull(),
    backend: text('backend'),
    taskQueue: text('task_queue'),
    codeVersion: text('code_version'),
    metrics: jsonb('metrics').$type<Record<string, number>>(),
    artifactKey: text('artifact_key'),
    error: text('error'),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    endedAt: timestamp('ended_at', { withTimezone: true }),
  },
  (t) => [index('runs_model').on(t.modelName), index('runs_workflow').on(t.workflowId), index('runs_sweep').on(t.sweepId)],
);

export const runMetrics = pgTable(
  'run_metrics',
  {
    runId: text('run_id').notNull().references(() => runs.id),
    key: text('key').notNull(),
    step: integer('step').notNull(),
    value: doublePrecision('value').notNull(),
    loggedAt: timestamp('logged_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // Keyed by step so a resumed attempt that re-logs an epoch overwrites instead of duplicating.
  (t) => [primaryKey({ columns: [t.runId, t.key, t.step] })],
);

export type RunRow = typeof runs.$inferSelect;
