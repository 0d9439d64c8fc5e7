/** The model registry: registered models, immutable versions with lineage, aliases and their audit trail. */
import { index, integer, jsonb, pgTable, primaryKey, serial, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { datasetVersions } from './datasets';
import { runs } from './runs';

export const registeredModels = pgTable('registered_models', {
  name: text('name').primaryKey(),
  task: text('task').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const modelVersions = pgTable(
  'model_versions',
  {
    modelName: text('model_name').notNull().references(() => registeredModels.name),
    version: integer('version').notNull(),
    runId: text('run_id').notNull().unique().references(() => runs.id),
    datasetVersionId: text('dataset_version_id').notNull().references(() => datasetVersions.id),
    workflowId: text('workflow_id').notNull().unique(),
    codeVersion: text('code_version'),
    params: jsonb('params').$type<Record<string, unknown>>().notNull(),
    metrics: jsonb('metrics').$type<Record<string, number>>().notNull(),
    artifactKey: text('artifact_key').notNull(),
    /** Reference distribution of the model's predictions on the holdout, for prediction-drift monitoring. */
    predictionReferenceKey: text('prediction_reference_key'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.modelName, t.version] })],
);

export const modelAliases = pgTable(
  'model_aliases',
  {
    modelName: text('model_name').notNull().references(() => registeredModels.name),
    alias: text('alias').notNull(),
    version: integer('version').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.modelName, t.alias] })],
);

export const aliasEvents = pgTable(
  'alias_events',
  {
    id: serial('id').primaryKey(),
    modelName: text('model_name').notNull(),
    alias: text('alias').notNull(),
    fromVersion: integer('from_version'),
    toVersion: integer('to_version').notNull(),
    actor: text('actor').notNull(),
    reason: text('reason').notNull(),
    /** Idempotency: one move per (workflow, alias). */
    workflowId: text('workflow_id'),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('alias_events_model').on(t.modelName, t.alias), uniqueIndex('alias_events_workflow').on(t.workflowId, t.modelName, t.alias)],
);

export type ModelVersionRow = typeof modelVersions.$inferSelect;
