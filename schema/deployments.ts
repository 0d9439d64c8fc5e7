/** Deployments (an alias served at an endpoint) and the prediction log that monitors read. */
import { bigserial, doublePrecision, index, integer, jsonb, pgTable, real, text, timestamp } from 'drizzle-orm/pg-core';

export const deployments = pgTable('deployments', {
  /** `<model>/<alias>`: one deployment per served alias. */
  id: text('id').primaryKey(),
  modelName: text('model_name').notNull(),
  alias: text('alias').notNull(),
  version: integer('version').notNull(),
  endpoint: text('endpoint').notNull(),
  pipelineName: text('pipeline_name').notNull(),
  workflowId: text('workflow_id').notNull(),
  monitorWorkflowId: text('monitor_workflow_id'),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const predictions = pgTable(
  'predictions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    requestId: text('request_id').notNull(),
    modelName: text('model_name').notNull(),
    modelVersion: integer('model_version').notNull(),
    inputs: jsonb('inputs').$type<Record<string, unknown>>().notNull(),
    /** Regression value, or the predicted class index for classification. */
    prediction: doublePrecision('prediction').notNull(),
    latencyMs: real('latency_ms').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // By request id: feedback joins its labels to predictions (a 10k-label feedback was a sequential scan).
  (t) => [index('predictions_model_time').on(t.modelName, t.createdAt), index('predictions_request').on(t.requestId)],
);

/** Ground truth that arrives later, by the request id of the prediction it labels. */
export const labels = pgTable(
  'labels',
  {
    requestId: text('request_id').primaryKey(),
    modelName: text('model_name').notNull(),
    /** The true value as text: a number for regression, a class name for classification. */
    label: text('label').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('labels_model_time').on(t.modelName, t.receivedAt)],
);

/** Requests the serving process refused or failed (4xx / 5xx), for the monitors' error rate. */
export const requestErrors = pgTable(
  'request_errors',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** Empty when the request did not name a servable model. */
    modelName: text('model_name').notNull(),
    status: integer('status').notNull(),
    /** The version that refused or failed it, when one was chosen (canary health counts these). */
    modelVersion: integer('model_version'),
    message: text('message').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('request_errors_model_time').on(t.modelName, t.at)],
);

/**
 * A rollout's traffic split for a model, read by the serving process: `canary` and `ab` send `weight` of the requests
 * (sticky by request key) to the candidate; `shadow` mirrors every request to it and never returns its answer.
 */
export const trafficRoutes = pgTable('traffic_routes', {
  modelName: text('model_name').primaryKey(),
  mode: text('mode').notNull(),
  baseVersion: integer('base_version').notNull(),
  candidateVersion: integer('candidate_version').notNull(),
  weight: doublePrecision('weight').notNull(),
  /** The rollout workflow that owns the route. */
  workflowId: text('workflow_id').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** The shadow model's answers next to the ones the clients got. */
export const shadowPredictions = pgTable(
  'shadow_predictions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    requestId: text('request_id').notNull(),
    modelName: text('model_name').notNull(),
    baseVersion: integer('base_version').notNull(),
    shadowVersion: integer('shadow_version').notNull(),
    basePrediction: doublePrecision('base_prediction').notNull(),
    /** Null when the shadow refused or failed the request. */
    shadowPrediction: doublePrecision('shadow_prediction'),
    error: text('error'),
    latencyMs: real('latency_ms').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('shadow_predictions_model_time').on(t.modelName, t.createdAt)],
);
