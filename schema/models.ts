/** The model registry: registered models, immutable versions with lineage, aliases and their audit trail. */
import { sql } from 'drizzle-orm';
import {
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { ReleaseEvaluation } from '../ml/evaluation/gates';
import { datasetVersions } from './datasets';
import { runs } from './runs';

export const registeredModels = pgTable('registered_models', {
  name: text('name').primaryKey(),
  /** regression | classification; null for a model registered by a client before any Flywheel evaluation. */
  task: text('task'),
  description: text('description'),
  tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const modelVersions = pgTable(
  'model_versions',
  {
    modelName: text('model_name')
      .notNull()
      .references(() => registeredModels.name),
    version: integer('version').notNull(),
    /** The run that produced it (unique for pipeline versions; a client may register one run's model twice). */
    runId: text('run_id').references(() => runs.id),
    datasetVersionId: text('dataset_version_id').references(() => datasetVersions.id),
    /** The pipeline workflow that registered it; null for versions created over the API. */
    workflowId: text('workflow_id').unique(),
    /** Where the client said the model lives (MLflow's `source`: runs:/…, models:/…, mlflow-artifacts:/…). */
    source: text('source'),
    description: text('description'),
    userId: text('user_id'),
    codeVersion: text('code_version'),
    params: jsonb('params').$type<Record<string, unknown>>().notNull(),
    metrics: jsonb('metrics').$type<Record<string, number>>().notNull(),
    /** The Flywheel model artifact serving loads; null for a version a client registered from its own `source`. */
    artifactKey: text('artifact_key'),
    /** Reference distribution of the model's predictions on the holdout, for prediction-drift monitoring. */
    predictionReferenceKey: text('prediction_reference_key'),
    /** `active`, or `archived` (kept for lineage; no alias may point at it). */
    status: text('status').notNull().default('active'),
    /** Free-form key/value tags; `gate` is set by the release (passed / failed). */
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    /** The release's evaluation: report key, gate outcome, the champion it was compared with. */
    evaluation: jsonb('evaluation').$type<ReleaseEvaluation>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.modelName, t.version] }), index('model_versions_run').on(t.runId)],
);

export const modelAliases = pgTable(
  'model_aliases',
  {
    modelName: text('model_name')
      .notNull()
      .references(() => registeredModels.name),
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
    /** Null when the alias was deleted. */
    toVersion: integer('to_version'),
    actor: text('actor').notNull(),
    reason: text('reason').notNull(),
    /** Idempotency: one move per (workflow, alias). */
    workflowId: text('workflow_id'),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('alias_events_model').on(t.modelName, t.alias),
    uniqueIndex('alias_events_workflow').on(t.workflowId, t.modelName, t.alias),
  ],
);

export type ModelVersionRow = typeof modelVersions.$inferSelect;

/** Human approvals a release waits for (`flywheel approve <model@version>`). */
export const modelApprovals = pgTable(
  'model_approvals',
  {
    /** The release workflow that waits; it takes the decision as an update. */
    workflowId: text('workflow_id').primaryKey(),
    modelName: text('model_name').notNull(),
    version: integer('version').notNull(),
    /** pending → approved | rejected | expired */
    status: text('status').notNull().default('pending'),
    actor: text('actor'),
    comment: text('comment'),
    requestedAt: timestamp('requested_at', { withTimezone: true }).notNull().defaultNow(),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
  },
  (t) => [index('model_approvals_version').on(t.modelName, t.version)],
);

/** Registry webhooks: called on new versions and alias moves (all models, or one). */
export const registryWebhooks = pgTable('registry_webhooks', {
  id: serial('id').primaryKey(),
  url: text('url').notNull(),
  /** `model_version.created`, `model_version_alias.moved`, or both. */
  events: jsonb('events').$type<string[]>().notNull(),
  /** Null: every model. */
  modelName: text('model_name'),
  /** HMAC-SHA256 key for the `x-flywheel-signature` header. */
  secret: text('secret'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * The webhook outbox: one row per (registry change, matching webhook), written in the change's transaction and sent by
 * the dispatcher (workers/webhookDispatcher.ts). A row that exhausts its attempts stays as the dead-letter record.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    /** The `delivery_id` receivers deduplicate on: the same on every attempt. */
    id: uuid('id').primaryKey().defaultRandom(),
    /** Null once the webhook is removed (the record stays). */
    webhookId: integer('webhook_id').references(() => registryWebhooks.id, { onDelete: 'set null' }),
    event: text('event').notNull(),
    modelName: text('model_name').notNull(),
    /** The event's fields (the body adds `event`, `delivery_id` and `model`). */
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    /** pending → delivered | dead */
    status: text('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** When a dispatcher may take it next (a claimed row is leased until its POST has had time to end). */
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    /** The last failure: `HTTP 500` or the network error; never a header or the secret. */
    lastError: text('last_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
  },
  (t) => [
    index('webhook_deliveries_due')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
    index('webhook_deliveries_status').on(t.status, t.createdAt),
  ],
);

/**
 * Tokens: `admin` for alias moves, deploys, rollbacks and approvals; `infer` for inference when serving requires a key.
 */
export const apiTokens = pgTable('api_tokens', {
  id: serial('id').primaryKey(),
  name: text('name').notNull(),
  scope: text('scope').notNull(),
  /** sha256 of the token; the token itself is shown once, at creation. */
  hash: text('hash').notNull().unique(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
});
