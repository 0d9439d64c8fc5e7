/**
 * Feature store activities: register a view (versioned), load its source into the offline table, build a
 * point-in-time-correct training table, and materialise windows of it into the online store (idempotent, resumable:
 * the watermark moves with each window, in the same transaction).
 */
import { heartbeat, log } from '@temporalio/activity';
import type pg from 'pg';
import { and, desc, eq, getTableName, is, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { PgTable, type PgTransactionConfig } from 'drizzle-orm/pg-core';
import { definitionHash, FeatureViewError, outputFeatures, type FeatureView } from '../features/define';
import {
  createOfflineTableSql, loadFromQuerySql, materializeSql, offlineTableName, pointInTimeJoinSql, quote, requiredColumns, servedView, SQL_TYPES, viewRef,
  type JoinView, type ServedFeatureView,
} from '../features/sql';
import { parseNumber } from '../ml/numbers';
import { checkSqlExpression, singleStatement, UserSqlError } from '../ml/userSql';
import * as schema from '../schema/index';
import { datasetVersions } from '../schema/datasets';
import { featureViews } from '../schema/features';
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';
import { INGESTED_CSV_LIMITS, readCsv } from '../storage/csvStream';
import { asReader, READER_ROLE, readTable, type TableSpec } from '../storage/tables';
import { activityCancellation } from './datasetColumns';
import { resolveDatasetVersion } from './validate';
import { badInput, type ActivityDeps } from './deps';

export type FeatureViewRow = typeof featureViews.$inferSelect;

/** Registers a view; the same definition again returns its existing version. Creates the offline table. */
export async function registerFeatureView(db: Db, view: FeatureView): Promise<{ row: FeatureViewRow; created: boolean }> {
  const hash = definitionHash(view);
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`feature_view:${view.name}`}))`);
    const [same] = await tx.select().from(featureViews).where(and(eq(featureViews.name, view.name), eq(featureViews.hash, hash)));
    if (same) return { row: same, created: false };
    const [latest] = await tx.select({ version: featureViews.version }).from(featureViews).where(eq(featureViews.name, view.name)).orderBy(desc(featureViews.version)).limit(1);
    const version = (latest?.version ?? 0) + 1;
    const table = offlineTableName(view.name, version);
    for (const statement of createOfflineTableSql(view, table)) await tx.execute(sql.raw(statement));
    const [row] = await tx.insert(featureViews).values({ name: view.name, version, definition: view, hash, offlineTable: table }).returning();
    return { row: row!, created: true };
  });
}

/** `name` (its latest version) or `name@version`. */
export async function findFeatureView(db: Db, ref: string): Promise<FeatureViewRow> {
  const [name, version] = ref.split('@') as [string, string | undefined];
  const rows = await db.select().from(featureViews)
    .where(version ? and(eq(featureViews.name, name), eq(featureViews.version, Number(version))) : eq(featureViews.name, name))
    .orderBy(desc(featureViews.version)).limit(1);
  if (!rows[0]) throw badInput('NotFoundError', `no feature view ${ref} (register it with \`flywheel features apply <file.ts>\`)`);
  return rows[0];
}

/** Flywheel's own tables: the reader role may never read them (tokens, registry, runs …). */
const FLYWHEEL_TABLES = (Object.values(schema) as unknown[]).filter((value): value is PgTable => is(value, PgTable)).map((table) => getTableName(table));

/**
 * Makes sure the reader role exists and may read every table in `public` but Flywheel's own; true when user SQL can
 * run as it. Without the right to create roles it logs why and returns false: read-only transactions still apply.
 */
export async function prepareReaderRole(db: Db): Promise<boolean> {
  try {
    await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${READER_ROLE}))`);
      const [existing] = (await tx.execute(sql`select 1 from pg_roles where rolname = ${READER_ROLE}`)).rows;
      if (!existing) await tx.execute(sql.raw(`CREATE ROLE ${READER_ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT`));
      await tx.execute(sql.raw(`GRANT USAGE ON SCHEMA public TO ${READER_ROLE}`));
      await tx.execute(sql.raw(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${READER_ROLE}`));
      const own = (await tx.execute(sql`select tablename from pg_tables where schemaname = 'public' and tablename in ${FLYWHEEL_TABLES}`)).rows;
      if (own.length) await tx.execute(sql.raw(`REVOKE ALL ON ${own.map((t) => quote(String(t.tablename))).join(', ')} FROM ${READER_ROLE}`));
      await tx.execute(sql.raw(`GRANT TEMPORARY ON DATABASE ${quote(String((await tx.execute(sql`select current_database() as name`)).rows[0]!.name))} TO ${READER_ROLE}`));
    });
    const { rows } = await db.execute(sql`select 1 from pg_roles where rolname = ${READER_ROLE} and pg_has_role(session_user, oid, 'MEMBER')`);
    return rows.length > 0;
  } catch (error) {
    const message = `user SQL runs without the ${READER_ROLE} role (read-only transactions still apply): ${(error as Error).message}`;
    try {
      log.warn(message);
    } catch {
      console.warn(message); // called outside an activity (the CLI's `features load`)
    }
    return false;
  }
}

/**
 * Work on one pooled connection, with transactions through drizzle (a failure always rolls back). A connection that
 * cannot even roll back afterwards is discarded, never handed back to the pool mid-transaction.
 */
async function withConnection<T>(
  db: Db, work: (client: pg.PoolClient, transaction: <R>(body: () => Promise<R>, config?: PgTransactionConfig) => Promise<R>) => Promise<T>,
): Promise<T> {
  const client = await db.$client.connect();
  const session = drizzle(client);
  let broken: Error | undefined;
  try {
    return await work(client, (body, config) => session.transaction(() => body(), config));
  } catch (error) {
    broken = await client.query('ROLLBACK').then(() => undefined, (rollback: Error) => rollback);
    throw error;
  } finally {
    client.release(broken);
  }
}

/** User SQL over the extended protocol: Postgres refuses more than one statement there. */
function userQuery(client: pg.PoolClient, text: string): Promise<pg.QueryResult> {
  return client.query({ text, values: [], queryMode: 'extended' } as pg.QueryConfig);
}

/** The view's source query as one statement, or a refusal naming what is wrong with it. */
function sourceStatement(view: FeatureView, fail: (message: string) => Error): string {
  if (!('query' in view.source)) throw new Error('not a SQL source');
  try {
    for (const t of Object.values(view.transforms)) checkSqlExpression(t.expression);
    return singleStatement(view.source.query);
  } catch (error) {
    if (error instanceof UserSqlError) throw fail(`its SQL is refused: ${error.message}`);
    throw error;
  }
}

/** A temporary table: the one kind a read-only transaction may fill, so the source query never runs with write access. */
const LOAD_TABLE = 'fv_load';

/**
 * Text rows into a table through one client: 5,000-row JSON batches (`json_populate_recordset`) sent one after another,
 * behind any statement queued before them. `pace` makes a reader wait while more than a few are pending.
 */
class RowBatches {
  private chain: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private batch: Record<string, string | null>[] = [];

  constructor(private readonly client: pg.PoolClient, private readonly table: string, private readonly onSent: () => void = () => undefined) {}

  run(text: string, values?: unknown[]): void {
    this.waiting++;
    this.chain = this.chain.then(async () => {
      await this.client.query(text, values);
      this.waiting--;
      this.onSent();
    });
  }

  add(row: Record<string, string | null>): void {
    this.batch.push(row);
    if (this.batch.length >= 5_000) this.flush();
  }

  readonly pace = () => (this.waiting > 3 ? this.chain.then(() => undefined) : undefined);

  /** Sends what is left and waits for every statement. */
  async finish(): Promise<void> {
    this.flush();
    await this.chain;
  }

  /** Waits for what is in flight, whatever its outcome (before a ROLLBACK or a release). */
  settle(): Promise<void> {
    return this.chain.then(() => undefined, () => undefined);
  }

  private flush(): void {
    if (!this.batch.length) return;
    this.run(`INSERT INTO ${this.table} SELECT * FROM json_populate_recordset(null::${this.table}, $1)`, [JSON.stringify(this.batch)]);
    this.batch = [];
  }
}

const checkers: Record<string, (text: string) => boolean> = {
  number: (t) => parseNumber(t) !== undefined,
  integer: (t) => Number.isInteger(parseNumber(t)),
  boolean: (t) => /^(true|false|0|1|t|f)$/i.test(t),
  string: () => true,
  timestamp: (t) => !Number.isNaN(Date.parse(t)),
};

/** Loads the view's source into its offline table (replacing what was there), checking columns and types. */
export async function loadFeatureSource(db: Db, store: ObjectStore, row: FeatureViewRow, onProgress: (rows: number) => void = () => undefined): Promise<{ rows: number; loadedFrom: string }> {
  const view = row.definition;
  const table = quote(row.offlineTable);
  const fail = (message: string) => badInput('DataValidationError', `feature view ${row.name}: ${message}`);
  if ('query' in view.source) {
    const statement = sourceStatement(view, fail);
    const reader = await prepareReaderRole(db);
    const rows = await withConnection(db, async (client, transaction) => {
      await client.query(`DROP TABLE IF EXISTS pg_temp.${LOAD_TABLE}`);
      await client.query(`CREATE TEMP TABLE ${LOAD_TABLE} (LIKE ${table})`);
      if (reader) await client.query(`GRANT INSERT ON pg_temp.${LOAD_TABLE} TO ${READER_ROLE}`);
      try {
        // The source runs read-only, as the reader role: its columns first, then its rows into the temporary table.
        const castError = await transaction(async () => {
          if (reader) await asReader(client);
          const fields = await userQuery(client, `SELECT * FROM (${statement}\n) src LIMIT 0`).then(
            (result) => result.fields.map((f) => f.name),
            (error: Error) => { throw fail(`its source query fails: ${error.message}${permissionHint(error)}`); },
          );
          const missing = requiredColumns(view).filter((c) => !fields.includes(c.column));
          if (missing.length) throw fail(`its source lacks ${missing.map((m) => `the ${m.role} column "${m.column}"`).join(', ')} (it has: ${fields.join(', ')})`);
          return userQuery(client, loadFromQuerySql(view, LOAD_TABLE, statement)).then(() => undefined, (error: Error) => error);
        }, { accessMode: 'read only' });
        if (castError) {
          throw fail(await transaction(async () => {
            if (reader) await asReader(client);
            return nameBadColumn((text) => userQuery(client, text), view, statement, castError);
          }, { accessMode: 'read only' }));
        }
        // Then, with write access but no user SQL, the offline table is replaced.
        return await transaction(async () => {
          await client.query(`TRUNCATE ${table}`);
          return (await client.query(`INSERT INTO ${table} SELECT * FROM pg_temp.${LOAD_TABLE}`)).rowCount ?? 0;
        });
      } finally {
        // A connection too broken for this is discarded by withConnection, its temporary table with it.
        await client.query(`DROP TABLE IF EXISTS pg_temp.${LOAD_TABLE}`).catch(() => undefined);
      }
    });
    const loadedFrom = `query at ${new Date().toISOString()}`;
    await db.update(featureViews).set({ loadedFrom, loadedAt: new Date(), rowCount: rows }).where(and(eq(featureViews.name, row.name), eq(featureViews.version, row.version)));
    return { rows, loadedFrom };
  }
  // A dataset version: its canonical CSV, checked cell by cell (errors name line, column and value), inserted in batches.
  const [name, pointer = 'latest'] = view.source.dataset.split('@') as [string, string | undefined];
  const versionId = await resolveDatasetVersion(db, name, pointer) ?? (await db.select({ id: datasetVersions.id }).from(datasetVersions).where(eq(datasetVersions.id, view.source.dataset)))[0]?.id;
  if (!versionId) throw fail(`its source dataset ${view.source.dataset} does not exist`);
  if (row.loadedFrom === versionId) return { rows: row.rowCount ?? 0, loadedFrom: versionId };
  const [version] = await db.select().from(datasetVersions).where(eq(datasetVersions.id, versionId));
  const columns = requiredColumns(view);
  const types = columns.map((c) => (c.role === 'feature' ? view.features[c.column]! : c.role.endsWith('timestamp') ? 'timestamp' : 'string'));
  const target = ['entity key', 'event timestamp', 'created timestamp'];
  const names = columns.map((c) => (c.role === 'event timestamp' ? 'event_ts' : c.role === 'created timestamp' ? 'created_ts' : c.column));
  let indices: number[] = [];
  let rows = 0;
  await withConnection(db, (client, transaction) => transaction(async () => {
    const batches = new RowBatches(client, table, () => onProgress(rows));
    try {
      await client.query(`TRUNCATE ${table}`);
      await readCsv(await store.getStream(version!.objectKey), { sourceName: versionId, ...INGESTED_CSV_LIMITS, pace: batches.pace, signal: activityCancellation() }, (header) => {
        const missing = columns.filter((c) => !header.includes(c.column));
        if (missing.length) throw fail(`its source dataset ${versionId} lacks ${missing.map((m) => `the ${m.role} column "${m.column}"`).join(', ')} (it has: ${header.join(', ')})`);
        indices = columns.map((c) => header.indexOf(c.column));
      }, (record) => {
        const out: Record<string, string | null> = {};
        for (let k = 0; k < columns.length; k++) {
          const text = record.text(indices[k]!);
          if (text === '') {
            if (target.includes(columns[k]!.role) && columns[k]!.role !== 'created timestamp') throw fail(`line ${record.line}: the ${columns[k]!.role} "${columns[k]!.column}" is empty`);
            out[names[k]!] = null;
          } else if (!checkers[types[k]!]!(text)) {
            throw fail(`line ${record.line}, column "${columns[k]!.column}": ${JSON.stringify(text)} is not ${types[k] === 'integer' ? 'an integer' : `a ${types[k]}`}`);
          } else out[names[k]!] = text;
        }
        rows++;
        batches.add(out);
      });
      await batches.finish();
    } catch (error) {
      // Nothing may still be in flight on the connection when the transaction rolls back.
      await batches.settle();
      throw error;
    }
  }));
  await db.update(featureViews).set({ loadedFrom: versionId, loadedAt: new Date(), rowCount: rows }).where(and(eq(featureViews.name, row.name), eq(featureViews.version, row.version)));
  return { rows, loadedFrom: versionId };
}

/** A cast failed while loading: find the column (and an example value) that does not fit its declared type. */
async function nameBadColumn(query: (text: string) => Promise<unknown>, view: FeatureView, statement: string, error: Error): Promise<string> {
  const types: [string, string, string][] = [
    [view.timestamp, 'timestamptz', 'a timestamp'], ...(view.createdTimestamp ? [[view.createdTimestamp, 'timestamptz', 'a timestamp'] as [string, string, string]] : []),
    ...Object.entries(view.features).map(([f, t]) => [f, SQL_TYPES[t], t === 'integer' ? 'an integer' : `a ${t}`] as [string, string, string]),
  ];
  for (const [column, type, what] of types) {
    try {
      await query(`SELECT ${quote(column)}::${type} FROM (${statement}\n) src`);
    } catch (inner) {
      return `column "${column}" does not hold ${what} everywhere: ${(inner as Error).message}`;
    }
  }
  return `${error.message}${permissionHint(error)}`;
}

/** Says why a read was refused when it was the reader role's doing. */
function permissionHint(error: unknown): string {
  const code = (error as { code?: string }).code;
  return code === '42501' ? ` (feature-view SQL runs as ${READER_ROLE}, which may read any table but Flywheel's own; GRANT it SELECT on a table in another schema)`
    : code === '25006' ? ' (feature-view SQL runs read-only)' : '';
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
  db: Db, store: ObjectStore, scratch: string, table: TableSpec, spec: FeatureTableSpec, onProgress: () => void = () => undefined,
): Promise<{ query: string; views: ServedFeatureView[]; drop(): Promise<void> }> {
  const rows = await Promise.all(spec.views.map((ref) => findFeatureView(db, ref)));
  const joins: JoinView[] = rows.map((r) => ({ view: r.definition, table: r.offlineTable }));
  for (const r of rows) {
    if (!r.loadedAt) throw badInput('DataValidationError', `feature view ${viewRef(r.name, r.version)} has no offline data yet: run \`flywheel features load ${r.name}\``);
    try {
      for (const t of Object.values(r.definition.transforms)) checkSqlExpression(t.expression);
    } catch (error) {
      throw badInput('DataValidationError', `feature view ${viewRef(r.name, r.version)}: a transform is refused: ${(error as Error).message}`);
    }
  }
  const scratchTable = quote(scratch);
  await db.execute(sql.raw(`DROP TABLE IF EXISTS ${scratchTable}`));
  let header: string[] = [];
  const client = await db.$client.connect();
  // The CREATE goes first on this client, then the batches behind it.
  const batches = new RowBatches(client, scratchTable, onProgress);
  try {
    await readTable(table, store, {
      onHeader(columns) {
        header = columns;
        const needed = [spec.timestamp, ...new Set(joins.flatMap((j) => j.view.entities))];
        const missing = needed.filter((c) => !columns.includes(c));
        if (missing.length) throw badInput('DataValidationError', `the entity rows lack ${missing.map((m) => `"${m}"`).join(', ')} (needed by ${spec.views.join(', ')} and data.features.timestamp; they have: ${columns.join(', ')})`);
        const outputs = joins.flatMap((j) => outputFeatures(j.view));
        const clash = outputs.filter((f, i) => columns.includes(f) || outputs.indexOf(f) !== i);
        if (clash.length) throw badInput('DataValidationError', `feature name(s) ${[...new Set(clash)].map((c) => `"${c}"`).join(', ')} appear twice (in the entity rows or in two views)`);
        batches.run(`CREATE UNLOGGED TABLE ${scratchTable} (${columns.map((c) => `${quote(c)} text`).join(', ')})`);
      },
      onRecord(record) {
        const row: Record<string, string | null> = {};
        for (let i = 0; i < header.length; i++) {
          const text = record.text(i);
          row[header[i]!] = text === '' ? null : text;
        }
        if (row[spec.timestamp] === null || Number.isNaN(Date.parse(row[spec.timestamp]!))) {
          throw badInput('DataValidationError', `entity row ${record.line}: "${spec.timestamp}" ${row[spec.timestamp] === null ? 'is empty' : `is not a timestamp: ${JSON.stringify(row[spec.timestamp])}`}`);
        }
        batches.add(row);
      },
      pace: batches.pace,
    });
    await batches.finish();
  } finally {
    await batches.settle();
    client.release();
  }
  return {
    query: pointInTimeJoinSql(`SELECT * FROM ${scratchTable}`, header, spec.timestamp, joins),
    views: rows.map(servedView),
    drop: async () => { await db.execute(sql.raw(`DROP TABLE IF EXISTS ${scratchTable}`)); },
  };
}

export function createFeatureActivities({ db, store }: ActivityDeps) {
  return {
    async loadFeatureView(input: { view: string }): Promise<{ ref: string; rows: number; loadedFrom: string }> {
      const row = await findFeatureView(db, input.view);
      const result = await loadFeatureSource(db, store, row, (rows) => heartbeat({ rows }));
      return { ref: viewRef(row.name, row.version), ...result };
    },

    /** Where materialisation stands for a view, and the event-time range of its offline data. */
    async materializationState(input: { view: string }): Promise<{ name: string; version: number; ref: string; watermark: number | null; minEvent: number | null; maxEvent: number | null }> {
      const row = await findFeatureView(db, input.view);
      const result = await db.execute(sql.raw(`SELECT extract(epoch from min(event_ts)) * 1000 AS min, extract(epoch from max(event_ts)) * 1000 AS max FROM ${quote(row.offlineTable)}`));
      const range = result.rows[0] as { min: string | null; max: string | null };
      return {
        name: row.name, version: row.version, ref: viewRef(row.name, row.version), watermark: row.materializedUntil?.getTime() ?? null,
        minEvent: range.min === null ? null : Number(range.min), maxEvent: range.max === null ? null : Number(range.max),
      };
    },

    /** One window (from, to] into the online store, and the watermark to `to`, atomically. */
    async materializeWindow(input: { name: string; version: number; from: number; to: number }): Promise<number> {
      const row = await findFeatureView(db, `${input.name}@${input.version}`);
      try {
        for (const t of Object.values(row.definition.transforms)) checkSqlExpression(t.expression);
      } catch (error) {
        throw badInput('DataValidationError', `feature view ${viewRef(row.name, row.version)}: a transform is refused: ${(error as Error).message}`);
      }
      return withConnection(db, (client, transaction) => transaction(async () => {
        const { rowCount } = await client.query(materializeSql(row.definition, row.offlineTable, viewRef(row.name, row.version)), [new Date(input.from), new Date(input.to)]);
        await client.query('UPDATE feature_views SET materialized_until = greatest(coalesce(materialized_until, $3), $3) WHERE name = $1 AND version = $2', [row.name, row.version, new Date(input.to)]);
        return rowCount ?? 0;
      }));
    },

    /** Starts over: the view's online rows and watermark are cleared (a full re-materialisation). */
    async resetMaterialization(input: { name: string; version: number }): Promise<void> {
      await db.execute(sql`DELETE FROM online_features WHERE view = ${viewRef(input.name, input.version)}`);
      await db.update(featureViews).set({ materializedUntil: null }).where(and(eq(featureViews.name, input.name), eq(featureViews.version, input.version)));
    },
  };
}

export { FeatureViewError };
