/** Pipelines (stored configs, so monitors can retrain), monitors and their deduplicated alerts. */
import { sql } from 'drizzle-orm';
import { index, jsonb, pgTable, serial, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

export const pipelines = pgTable('pipelines', {
  name: text('name').primaryKey(),
  config: jsonb('config').$type<Record<string, unknown>>().notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const monitorChecks = pgTable(
  'monitor_checks',
  {
    id: text('id').primaryKey(),
    monitorWorkflowId: text('monitor_workflow_id').notNull(),
    modelName: text('model_name').notNull(),
    windowStart: timestamp('window_start', { withTimezone: true }).notNull(),
    windowEnd: timestamp('window_end', { withTimezone: true }).notNull(),
    report: jsonb('report').$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('monitor_checks_model').on(t.modelName, t.windowEnd)],
);

export const alerts = pgTable(
  'alerts',
  {
    id: serial('id').primaryKey(),
    monitorWorkflowId: text('monitor_workflow_id').notNull(),
    modelName: text('model_name').notNull(),
    check: text('check').notNull(),
    severity: text('severity').$type<'warning' | 'critical'>().notNull(),
    status: text('status').$type<'open' | 'acknowledged' | 'resolved'>().notNull(),
    message: text('message').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull(),
    retrainWorkflowId: text('retrain_workflow_id'),
    openedAt: timestamp('opened_at', { withTimezone: true }).notNull().defaultNow(),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
  },
  // One open (or acknowledged) alert per monitor and check: a persisting drift updates it instead of paging again.
  (t) => [
    uniqueIndex('alerts_one_active')
      .on(t.monitorWorkflowId, t.check)
      .where(sql`status in ('open', 'acknowledged')`),
  ],
);
