/** The feature store: registered feature views (versioned) and the online store (latest values per entity). */
import { index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import type { FeatureView } from '../features/define';

export const featureViews = pgTable(
  'feature_views',
  {
    name: text('name').notNull(),
    version: integer('version').notNull(),
    definition: jsonb('definition').$type<FeatureView>().notNull(),
    /** sha256 of the definition: applying the same definition again is a no-op. */
    hash: text('hash').notNull(),
    /** The offline table holding the source's rows (`fv_<name>_v<version>`). */
    offlineTable: text('offline_table').notNull(),
    /** What the offline table was last loaded from (a dataset version id, or the query's run time). */
    loadedFrom: text('loaded_from'),
    loadedAt: timestamp('loaded_at', { withTimezone: true }),
    rowCount: integer('row_count'),
    /** Materialisation watermark: every event up to here is in the online store. */
    materializedUntil: timestamp('materialized_until', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.name, t.version] }), uniqueIndex('feature_views_hash').on(t.name, t.hash)],
);

export const onlineFeatures = pgTable(
  'online_features',
  {
    /** `<name>@<version>` */
    view: text('view').notNull(),
    /** The entity key values as text, in the view's order, joined by U+001F. */
    entityKey: text('entity_key').notNull(),
    values: jsonb('values').$type<Record<string, unknown>>().notNull(),
    eventTs: timestamp('event_ts', { withTimezone: true }).notNull(),
    createdTs: timestamp('created_ts', { withTimezone: true }),
    writtenAt: timestamp('written_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.view, t.entityKey] }), index('online_features_view_event').on(t.view, t.eventTs)],
);
