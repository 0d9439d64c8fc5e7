/**
 * Feature store activities: load a view's source into its offline table, build a point-in-time-correct training
 * table, and materialise windows of it into the online store (idempotent, resumable: the watermark moves with each
 * window, in the same transaction). The SQL and the tables are the feature store's (features/store.ts).
 */
import { heartbeat, log } from '@temporalio/activity';
import { ApiError } from '../config/errors';
import { FeatureViewError, outputFeatures } from './define';
import {
  pointInTimeJoinSql,
  quote,
  requiredColumns,
  servedView,
  viewRef,
  type JoinView,
  type ServedFeatureView,
} from './sql';
import { parseNumber } from '../ml/formats/numbers';
import { findDatasetVersionRow, resolveAliasOrVersion } from '../store/datasets';
import {
  checkTransforms,
  dropScratchTable,
  FeatureDataError,
  fillScratchTable,
  findFeatureView,
  loadOfflineFromQuery,
  materializeWindow,
  offlineEventRange,
  prepareReaderRole,
  replaceOfflineRows,
  resetMaterialization,
  type FeatureViewRow,
} from './store';
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';
import { INGESTED_CSV_LIMITS, readCsv } from '../ml/formats/csvStream';
import { readTable, type TableSpec } from '../storage/tables';
import { activityCancellation } from '../activities/datasetColumns';
import { badInput, type ActivityDeps } from '../activities/deps';

/** The store's refusals as non-retryable failures: bad view data, an unknown or malformed view. */
async function failing<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof FeatureDataError) throw badInput('DataValidationError', error.message);
    if (error instanceof ApiError && error.status < 500) throw badInput('NotFoundError', error.message);
    throw error;
  }
}

/** Warnings from the store: the activity log inside an activity, the console outside one (benchmarks, tests). */
function warn(message: string): void {
  try {
    log.warn(message);
  } catch {
    console.warn(message);
  }
}

/** Makes sure user SQL can run as the reader role (the ingest of a SQL source or a feature join needs it). */
export const readerRoleReady = (db: Db) => prepareReaderRole(db, warn);

const checkers: Record<string, (text: string) => boolean> = {
  number: (t) => parseNumber(t) !== undefined,
  integer: (t) => Number.isInteger(parseNumber(t)),
  boolean: (t) => /^(true|false|0|1|t|f)$/i.test(t),
  string: () => true,
  timestamp: (t) => !Number.isNaN(Date.parse(t)),
};

/** Loads the view's source into its offline table (replacing what was there), checking columns and types. */
export async function loadFeatureSource(
  db: Db,
  store: ObjectStore,
  row: FeatureViewRow,
  onProgress: (rows: number) => void = () => undefined,
): Promise<{ rows: number; loadedFrom: string }> {
  const view = row.definition;
  const fail = (message: string) => badInput('DataValidationError', `feature view ${row.name}: ${message}`);
  if ('query' in view.source) return failing(() => loadOfflineFromQuery(db, row, warn));
  // A dataset version: its canonical CSV, checked cell by cell (errors name line, column and value), inserted in
  // batches.
  const [name, pointer = 'latest'] = view.source.dataset.split('@') as [string, string | undefined];
  const versionId =
    (await resolveAliasOrVersion(db, name, pointer)) ?? (await findDatasetVersionRow(db, view.source.dataset))?.id;
  if (!versionId) throw fail(`its source dataset ${view.source.dataset} does not exist`);
  if (row.loadedFrom === versionId) return { rows: row.rowCount ?? 0, loadedFrom: versionId };
  const version = (await findDatasetVersionRow(db, versionId))!;
  const columns = requiredColumns(view);
  const types = columns.map((c) =>
    c.role === 'feature' ? view.features[c.column]! : c.role.endsWith('timestamp') ? 'timestamp' : 'string',
  );
  const target = ['entity key', 'event timestamp', 'created timestamp'];
  const names = columns.map((c) =>
    c.role === 'event timestamp' ? 'event_ts' : c.role === 'created timestamp' ? 'created_ts' : c.column,
  );
  let indices: number[] = [];
  const rows = await replaceOfflineRows(
    db,
    row,
    versionId,
    async (sink) => {
      await readCsv(
        await store.getStream(version.objectKey),
        { sourceName: versionId, ...INGESTED_CSV_LIMITS, pace: sink.pace, signal: activityCancellation() },
        (header) => {
          const missing = columns.filter((c) => !header.includes(c.column));
          if (missing.length)
            throw fail(
              `its source dataset ${versionId} lacks ${missing.map((m) => `the ${m.role} column "${m.column}"`).join(', ')} (it has: ${header.join(', ')})`,
            );
          indices = columns.map((c) => header.indexOf(c.column));
        },
        (record) => {
          const out: Record<string, string | null> = {};
          for (let k = 0; k < columns.length; k++) {
            const text = record.text(indices[k]!);
            if (text === '') {
              if (target.includes(columns[k]!.role) && columns[k]!.role !== 'created timestamp')
                throw fail(`line ${record.line}: the ${columns[k]!.role} "${columns[k]!.column}" is empty`);
              out[names[k]!] = null;
            } else if (!checkers[types[k]!]!(text)) {
              throw fail(
                `line ${record.line}, column "${columns[k]!.column}": ${JSON.stringify(text)} is not ${types[k] === 'integer' ? 'an integer' : `a ${types[k]}`}`,
              );
            } else out[names[k]!] = text;
          }
          sink.add(out);
        },
      );
    },
    onProgress,
  );
  return { rows, loadedFrom: versionId };
}

export interface FeatureTableSpec {
  views: string[];
  timestamp: string;
}

/**
 * Loads the entity rows of `table` into a scratch table and returns the SELECT that joins the views onto them point in
 * time, for the ingest to version like any other SQL source. `drop` removes the scratch table.
 */
export async function featureTrainingQuery(
  db: Db,
  store: ObjectStore,
  scratch: string,
  table: TableSpec,
  spec: FeatureTableSpec,
  onProgress: () => void = () => undefined,
): Promise<{ query: string; views: ServedFeatureView[]; drop(): Promise<void> }> {
  const rows = await failing(() => Promise.all(spec.views.map((ref) => findFeatureView(db, ref))));
  const joins: JoinView[] = rows.map((r) => ({ view: r.definition, table: r.offlineTable }));
  for (const r of rows) {
    if (!r.loadedAt)
      throw badInput(
        'DataValidationError',
        `feature view ${viewRef(r.name, r.version)} has no offline data yet: run \`flywheel features load ${r.name}\``,
      );
    await failing(async () => checkTransforms(r));
  }
  let header: string[] = [];
  await fillScratchTable(
    db,
    scratch,
    async (sink) => {
      await readTable(table, store, {
        onHeader(columns) {
          header = columns;
          const needed = [spec.timestamp, ...new Set(joins.flatMap((j) => j.view.entities))];
          const missing = needed.filter((c) => !columns.includes(c));
          if (missing.length)
            throw badInput(
              'DataValidationError',
              `the entity rows lack ${missing.map((m) => `"${m}"`).join(', ')} (needed by ${spec.views.join(', ')} and data.features.timestamp; they have: ${columns.join(', ')})`,
            );
          const outputs = joins.flatMap((j) => outputFeatures(j.view));
          const clash = outputs.filter((f, i) => columns.includes(f) || outputs.indexOf(f) !== i);
          if (clash.length)
            throw badInput(
              'DataValidationError',
              `feature name(s) ${[...new Set(clash)].map((c) => `"${c}"`).join(', ')} appear twice (in the entity rows or in two views)`,
            );
          sink.columns(columns);
        },
        onRecord(record) {
          const row: Record<string, string | null> = {};
          for (let i = 0; i < header.length; i++) {
            const text = record.text(i);
            row[header[i]!] = text === '' ? null : text;
          }
          if (row[spec.timestamp] === null || Number.isNaN(Date.parse(row[spec.timestamp]!))) {
            throw badInput(
              'DataValidationError',
              `entity row ${record.line}: "${spec.timestamp}" ${row[spec.timestamp] === null ? 'is empty' : `is not a timestamp: ${JSON.stringify(row[spec.timestamp])}`}`,
            );
          }
          sink.add(row);
        },
        pace: sink.pace,
      });
    },
    onProgress,
  );
  return {
    query: pointInTimeJoinSql(`SELECT * FROM ${quote(scratch)}`, header, spec.timestamp, joins),
    views: rows.map(servedView),
    drop: () => dropScratchTable(db, scratch),
  };
}

export function createFeatureActivities({ db, store }: ActivityDeps) {
  return {
    async loadFeatureView(input: { view: string }): Promise<{ ref: string; rows: number; loadedFrom: string }> {
      const row = await failing(() => findFeatureView(db, input.view));
      const result = await loadFeatureSource(db, store, row, (rows) => heartbeat({ rows }));
      return { ref: viewRef(row.name, row.version), ...result };
    },

    /** Where materialisation stands for a view, and the event-time range of its offline data. */
    async materializationState(input: { view: string }): Promise<{
      name: string;
      version: number;
      ref: string;
      watermark: number | null;
      minEvent: number | null;
      maxEvent: number | null;
    }> {
      const row = await failing(() => findFeatureView(db, input.view));
      const range = await offlineEventRange(db, row);
      return {
        name: row.name,
        version: row.version,
        ref: viewRef(row.name, row.version),
        watermark: row.materializedUntil?.getTime() ?? null,
        minEvent: range.min,
        maxEvent: range.max,
      };
    },

    /** One window (from, to] into the online store, and the watermark to `to`, atomically. */
    async materializeWindow(input: { name: string; version: number; from: number; to: number }): Promise<number> {
      return failing(async () =>
        materializeWindow(
          db,
          await findFeatureView(db, `${input.name}@${input.version}`),
          new Date(input.from),
          new Date(input.to),
        ),
      );
    },

    /** Starts over: the view's online rows and watermark are cleared (a full re-materialisation). */
    async resetMaterialization(input: { name: string; version: number }): Promise<void> {
      await resetMaterialization(db, input.name, input.version);
    },
  };
}

export { FeatureViewError };
