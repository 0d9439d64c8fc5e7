/** Datasets, their immutable content-addressed versions, and validation reports. */
import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import type { ColumnProfile } from '../ml/profiling/profile';
import type { DatasetContract, ValidationReport } from '../ml/quality/validation';

export const datasets = pgTable('datasets', {
  name: text('name').primaryKey(),
  /**
   * The contract inferred from the first version, used when a pipeline pins none; review it with `flywheel datasets
   * schema`.
   */
  inferredContract: jsonb('inferred_contract').$type<DatasetContract>(),
  inferredFrom: text('inferred_from'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const datasetVersions = pgTable(
  'dataset_versions',
  {
    /** `<dataset>@<first 16 hex of sha256>`: readable and content-addressed. */
    id: text('id').primaryKey(),
    datasetName: text('dataset_name')
      .notNull()
      .references(() => datasets.name),
    contentHash: text('content_hash').notNull(),
    objectKey: text('object_key').notNull(),
    sourceUri: text('source_uri').notNull(),
    /** The format it arrived in (csv, jsonl, parquet, sql); stored as canonical CSV whatever it was. */
    format: text('format').notNull().default('csv'),
    rowCount: integer('row_count').notNull(),
    byteSize: bigint('byte_size', { mode: 'number' }).notNull(),
    columns: jsonb('columns').$type<{ name: string; type: string }[]>().notNull(),
    profile: jsonb('profile').$type<ColumnProfile[]>().notNull(),
    createdByWorkflowId: text('created_by_workflow_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('dataset_versions_name_hash').on(t.datasetName, t.contentHash)],
);

export const validationReports = pgTable(
  'validation_reports',
  {
    id: text('id').primaryKey(),
    datasetVersionId: text('dataset_version_id')
      .notNull()
      .references(() => datasetVersions.id),
    workflowId: text('workflow_id').notNull(),
    passed: boolean('passed').notNull(),
    errorCount: integer('error_count').notNull(),
    warningCount: integer('warning_count').notNull(),
    reportKey: text('report_key').notNull(),
    summary: jsonb('summary').$type<ValidationReport['issues']>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('validation_reports_version').on(t.datasetVersionId)],
);

/** Named pointers to versions: `latest` (moved when a version passes validation) and any custom alias. */
export const datasetAliases = pgTable(
  'dataset_aliases',
  {
    datasetName: text('dataset_name')
      .notNull()
      .references(() => datasets.name),
    alias: text('alias').notNull(),
    versionId: text('version_id')
      .notNull()
      .references(() => datasetVersions.id),
    updatedBy: text('updated_by'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.datasetName, t.alias] })],
);

export type DatasetVersionRow = typeof datasetVersions.$inferSelect;
export type NewDatasetVersionRow = typeof datasetVersions.$inferInsert;
