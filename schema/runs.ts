/** Training runs (one per pipeline execution) and their step metrics. */
import { doublePrecision, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import { datasetVersions } from './datasets';

export const runs = pgTable(
  'runs',
  {
    id: text('id').primaryKey(),
    /** The pipeline workflow that owns this run; a retried train activity finds its run by it. */
    workflowId: text('workflow_id').notNull().unique(),
    pipelineName: text('pipeline_name').notNull(),
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
  (t) => [index('runs_model').on(t.modelName)],
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
