/** Serving replicas: each serving process's heartbeat and what it answers with, so a deploy can confirm every one. */
import { index, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const servingReplicas = pgTable(
  'serving_replicas',
  {
    /** Random per process start: a restarted process is a new replica. */
    id: text('id').primaryKey(),
    /** The alias it answers with (FLYWHEEL_SERVING_ALIAS). */
    alias: text('alias').notNull(),
    /** Where it says it is reachable (FLYWHEEL_SERVING_URL); null when it was not told. */
    url: text('url'),
    host: text('host').notNull(),
    pid: integer('pid').notNull(),
    /** model → version it answers with for the alias (loaded, not merely pointed at). */
    models: jsonb('models').$type<Record<string, number>>().notNull().default({}),
    /** model → a rollout's candidate version it has loaded for the traffic route. */
    routes: jsonb('routes').$type<Record<string, number>>().notNull().default({}),
    /** model → the alias target it could not load (retried when the alias moves). */
    failed: jsonb('failed').$type<Record<string, number>>().notNull().default({}),
    /** How often it beats; it counts as gone after 3 beats unseen. */
    beatMs: integer('beat_ms').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('serving_replicas_alias').on(t.alias, t.lastSeenAt)],
);
