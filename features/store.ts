/**
 * The feature store's data: registered feature views (versioned), their offline tables, the online store and the
 * materialisation watermark. A view's own SQL runs here, and only here: as one statement, in a read-only transaction,
 * as the `flywheel_reader` role; the offline table is replaced afterwards, with write access and no user SQL.
 */
import type pg from 'pg';
import { and, asc, desc, eq, getTableName, is, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { PgTable, type PgTransactionConfig } from 'drizzle-orm/pg-core';
import { ApiError, invalid } from '../config/errors';
import { definitionHash, type FeatureType, type FeatureView } from './define';
import {
  createOfflineTableSql,
  loadFromQuerySql,
  materializeSql,
  offlineTableName,
  quote,
  requiredColumns,
  SQL_TYPES,
  viewRef,
} from './sql';
import { checkSqlExpression, singleStatement, UserSqlError } from './userSql';
import * as schema from '../schema/index';
import { featureViews, onlineFeatures } from '../schema/features';
import type { Db } from '../storage/db';
import { asReader, READER_ROLE } from '../storage/tables';

export type FeatureViewRow = typeof featureViews.$inferSelect;

/** What is wrong with a view's source or stored definition (its SQL, columns or values); the message names the view. */
export class FeatureDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FeatureDataError';
  }
}

const VIEW_REF = /^([a-z][a-z0-9_]{0,40})(?:@([1-9]\d{0,8}))?$/;

// ---------------------------------------------------------------- views

/** Registers a view; the same definition again returns its existing version. Creates the offline table. */
export async function registerFeatureView(
  db: Db,
  view: FeatureView,
): Promise<{ row: FeatureViewRow; created: boolean }> {
  const hash = definitionHash(view);
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`feature_view:${view.name}`}))`);
    const [same] = await tx
      .select()
      .from(featureViews)
      .where(and(eq(featureViews.name, view.name), eq(featureViews.hash, hash)));
    if (same) return { row: same, created: false };
    const [latest] = await tx
      .select({ version: featureViews.version })
      .from(featureViews)
      .where(eq(featureViews.name, view.name))
      .orderBy(desc(featureViews.version))
      .limit(1);
    const version = (latest?.version ?? 0) + 1;
    const table = offlineTableName(view.name, version);
    for (const statement of createOfflineTableSql(view, table)) await tx.execute(sql.raw(statement));
    const [row] = await tx
      .insert(featureViews)
      .values({ name: view.name, version, definition: view, hash, offlineTable: table })
      .returning();
    return { row: row!, created: true };
  });
}

/** `name` (its latest version) or `name@version`; a 400 naming `field` when malformed, a 404 when not registered. */
export async function findFeatureView(db: Db, ref: string, field = 'view'): Promise<FeatureViewRow> {
  const match = VIEW_REF.exec(ref);
  if (!match)
    throw invalid(
      field,
      `"${ref.length > 80 ? `${ref.slice(0, 80)}…` : ref}" must be a feature view name or name@version`,
    );
  const [, name, version] = match as unknown as [string, string, string | undefined];
  const [row] = await db
    .select()
    .from(featureViews)
    .where(
      version
        ? and(eq(featureViews.name, name), eq(featureViews.version, Number(version)))
        : eq(featureViews.name, name),
    )
    .orderBy(desc(featureViews.version))
    .limit(1);
  if (!row)
    throw new ApiError(
      'RESOURCE_DOES_NOT_EXIST',
      `no feature view ${ref} (register it with \`flywheel features apply <file.ts>\`)`,
    );
  return row;
}

/** Every registered version of every view, by name then version. */
export async function listFeatureViews(db: Db): Promise<FeatureViewRow[]> {
  return db.select().from(featureViews).orderBy(asc(featureViews.name), asc(featureViews.version));
}

export interface FeatureStatistics {
  feature: string;
  type: FeatureType;
  nonNull: number;
  total: number;
  /** Numeric features only. */
  min: number | null;
  mean: number | null;
  max: number | null;
  distinct: number;
}

/** Per stored feature, from the offline table (the training data's side of the drift monitor's comparison). */
export async function featureStatistics(db: Db, row: FeatureViewRow): Promise<FeatureStatistics[]> {
  const out: FeatureStatistics[] = [];
  for (const [feature, type] of Object.entries(row.definition.features)) {
    const column = quote(feature);
    const numeric = type === 'number' || type === 'integer';
    const { rows } = await db.execute(
      sql.raw(`SELECT count(${column})::bigint AS n, count(*)::bigint AS total,
      ${numeric ? `min(${column})::float8 AS lo, avg(${column})::float8 AS mean, max(${column})::float8 AS hi` : 'NULL::float8 AS lo, NULL::float8 AS mean, NULL::float8 AS hi'},
      count(DISTINCT ${column})::bigint AS distinct FROM ${quote(row.offlineTable)}`),
    );
    const s = rows[0] as {
      n: string;
      total: string;
      lo: number | null;
      mean: number | null;
      hi: number | null;
      distinct: string;
    };
    out.push({
      feature,
      type,
      nonNull: Number(s.n),
      total: Number(s.total),
      min: s.lo,
      mean: s.mean,
      max: s.hi,
      distinct: Number(s.distinct),
    });
  }
  return out;
}

/** Stored transforms are checked again before their SQL runs (a row may predate the check, or be written by hand). */
export function checkTransforms(row: FeatureViewRow): void {
  try {
    for (const t of Object.values(row.definition.transforms)) checkSqlExpression(t.expression);
  } catch (error) {
    throw new FeatureDataError(
      `feature view ${viewRef(row.name, row.version)}: a transform is refused: ${(error as Error).message}`,
    );
  }
}

// ---------------------------------------------------------------- the reader role

/** Flywheel's own tables: the reader role may never read them (tokens, registry, runs …). */
const FLYWHEEL_TABLES = (Object.values(schema) as unknown[])
  .filter((value): value is PgTable => is(value, PgTable))
  .map((table) => getTableName(table));

/**
 * Makes sure the reader role exists and may read every table in `public` but Flywheel's own; true when user SQL can
 * run as it. Without the right to create roles it warns why and returns false: read-only transactions still apply.
 */
export async function prepareReaderRole(
  db: Db,
  warn: (message: string) => void = (message) => console.warn(message),
): Promise<boolean> {
  try {
    await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${READER_ROLE}))`);
      const [existing] = (await tx.execute(sql`select 1 from pg_roles where rolname = ${READER_ROLE}`)).rows;
      if (!existing)
        await tx.execute(sql.raw(`CREATE ROLE ${READER_ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT`));
      await tx.execute(sql.raw(`GRANT USAGE ON SCHEMA public TO ${READER_ROLE}`));
      await tx.execute(sql.raw(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${READER_ROLE}`));
      const own = (
        await tx.execute(
          sql`select tablename from pg_tables where schemaname = 'public' and tablename in ${FLYWHEEL_TABLES}`,
        )
      ).rows;
      if (own.length)
        await tx.execute(
          sql.raw(`REVOKE ALL ON ${own.map((t) => quote(String(t.tablename))).join(', ')} FROM ${READER_ROLE}`),
        );
      await tx.execute(
        sql.raw(
          `GRANT TEMPORARY ON DATABASE ${quote(String((await tx.execute(sql`select current_database() as name`)).rows[0]!.name))} TO ${READER_ROLE}`,
        ),
      );
    });
    const { rows } = await db.execute(
      sql`select 1 from pg_roles where rolname = ${READER_ROLE} and pg_has_role(session_user, oid, 'MEMBER')`,
    );
    return rows.length > 0;
  } catch (error) {
    warn(
      `user SQL runs without the ${READER_ROLE} role (read-only transactions still apply): ${(error as Error).message}`,
    );
    return false;
  }
}

/** Says why a read was refused when it was the reader role's doing. */
function permissionHint(error: unknown): string {
  const code = (error as { code?: string }).code;
  return code === '42501'
    ? ` (feature-view SQL runs as ${READER_ROLE}, which may read any table but Flywheel's own; GRANT it SELECT on a table in another schema)`
    : code === '25006'
      ? ' (feature-view SQL runs read-only)'
      : '';
}

// ---------------------------------------------------------------- one session

type SessionTx = Parameters<Parameters<ReturnType<typeof drizzle>['transaction']>[0]>[0];
type Transaction = <R>(body: (tx: SessionTx) => Promise<R>, config?: PgTransactionConfig) => Promise<R>;

/**
 * Work on one pooled connection (a temporary table lives as long as its session), with transactions through drizzle:
 * a failure always rolls back. A connection that cannot even roll back afterwards is discarded, never handed back to
 * the pool inside an aborted transaction.
 */
async function withSession<T>(
  db: Db,
  work: (client: pg.PoolClient, transaction: Transaction) => Promise<T>,
): Promise<T> {
  const client = await db.$client.connect();
  const session = drizzle(client);
  let broken: Error | undefined;
  try {
    return await work(client, (body, config) => session.transaction(body, config));
  } catch (error) {
    broken = await client.query('ROLLBACK').then(
      () => undefined,
      (rollback: Error) => rollback,
    );
    throw error;
  } finally {
    client.release(broken);
  }
}

/** User SQL over the extended protocol: Postgres refuses more than one statement there. */
function userQuery(client: pg.PoolClient, text: string): Promise<pg.QueryResult> {
  return client.query({ text, values: [], queryMode: 'extended' } as pg.QueryConfig);
}

/** Rows of text values, as a loader adds them; `pace` is what a reader awaits while too many batches are in flight. */
export interface RowSink {
  add(row: Record<string, string | null>): void;
  pace(): Promise<void> | undefined;
}

/**
 * Text rows into a table through one client: 5,000-row JSON batches (`json_populate_recordset`) sent one after another,
 * behind any statement queued before them. `pace` makes a reader wait while more than a few are pending.
 */
class RowBatches implements RowSink {
  private chain: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private batch: Record<string, string | null>[] = [];

  constructor(
    private readonly client: pg.PoolClient,
    private readonly table: string,
    private readonly onSent: () => void = () => undefined,
  ) {}

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

  /** Waits for what is in flight, whatever its outcome (before a rollback or a release). */
  settle(): Promise<void> {
    return this.chain.then(
      () => undefined,
      () => undefined,
    );
  }

  private flush(): void {
    if (!this.batch.length) return;
    this.run(`INSERT INTO ${this.table} SELECT * FROM json_populate_recordset(null::${this.table}, $1)`, [
      JSON.stringify(this.batch),
    ]);
    this.batch = [];
  }
}

/** Fills batches inside a transaction; nothing may still be in flight on the connection when it rolls back. */
async function filled(batches: RowBatches, fill: () => Promise<void>): Promise<void> {
  try {
    await fill();
    await batches.finish();
  } catch (error) {
    await batches.settle();
    throw error;
  }
}

// ---------------------------------------------------------------- offline store

/**
 * A temporary table: the one kind a read-only transaction may fill, so the source query never runs with write access.
 */
const LOAD_TABLE = 'fv_load';

const loadedSet = (loadedFrom: string, rows: number) => ({ loadedFrom, loadedAt: new Date(), rowCount: rows });
const isVersion = (row: FeatureViewRow) => and(eq(featureViews.name, row.name), eq(featureViews.version, row.version));

/**
 * Loads a view's SQL source into its offline table (replacing what was there): the query runs as one statement,
 * read-only, as the reader role, into a temporary table; only then is the offline table replaced, with the view's
 * load recorded in the same transaction.
 */
export async function loadOfflineFromQuery(
  db: Db,
  row: FeatureViewRow,
  warn?: (message: string) => void,
): Promise<{ rows: number; loadedFrom: string }> {
  const view = row.definition;
  if (!('query' in view.source)) throw new Error(`feature view ${row.name} has no SQL source`);
  const table = quote(row.offlineTable);
  const fail = (message: string) => new FeatureDataError(`feature view ${row.name}: ${message}`);
  let statement: string;
  try {
    for (const t of Object.values(view.transforms)) checkSqlExpression(t.expression);
    statement = singleStatement(view.source.query);
  } catch (error) {
    if (error instanceof UserSqlError) throw fail(`its SQL is refused: ${error.message}`);
    throw error;
  }
  const reader = await prepareReaderRole(db, warn);
  return withSession(db, async (client, transaction) => {
    await client.query(`DROP TABLE IF EXISTS pg_temp.${LOAD_TABLE}`);
    await client.query(`CREATE TEMP TABLE ${LOAD_TABLE} (LIKE ${table})`);
    if (reader) await client.query(`GRANT INSERT ON pg_temp.${LOAD_TABLE} TO ${READER_ROLE}`);
    try {
      // The source runs read-only, as the reader role: its columns first, then its rows into the temporary table.
      const castError = await transaction(
        async () => {
          if (reader) await asReader(client);
          const fields = await userQuery(client, `SELECT * FROM (${statement}\n) src LIMIT 0`).then(
            (result) => result.fields.map((f) => f.name),
            (error: Error) => {
              throw fail(`its source query fails: ${error.message}${permissionHint(error)}`);
            },
          );
          const missing = requiredColumns(view).filter((c) => !fields.includes(c.column));
          if (missing.length)
            throw fail(
              `its source lacks ${missing.map((m) => `the ${m.role} column "${m.column}"`).join(', ')} (it has: ${fields.join(', ')})`,
            );
          return userQuery(client, loadFromQuerySql(view, LOAD_TABLE, statement)).then(
            () => undefined,
            (error: Error) => error,
          );
        },
        { accessMode: 'read only' },
      );
      if (castError) {
        throw fail(
          await transaction(
            async () => {
              if (reader) await asReader(client);
              return nameBadColumn((text) => userQuery(client, text), view, statement, castError);
            },
            { accessMode: 'read only' },
          ),
        );
      }
      // Then, with write access but no user SQL, the offline table is replaced and the load recorded.
      return await transaction(async (tx) => {
        await client.query(`TRUNCATE ${table}`);
        const rows = (await client.query(`INSERT INTO ${table} SELECT * FROM pg_temp.${LOAD_TABLE}`)).rowCount ?? 0;
        const loadedFrom = `query at ${new Date().toISOString()}`;
        await tx.update(featureViews).set(loadedSet(loadedFrom, rows)).where(isVersion(row));
        return { rows, loadedFrom };
      });
    } finally {
      // A connection too broken for this is discarded by withSession, its temporary table with it.
      await client.query(`DROP TABLE IF EXISTS pg_temp.${LOAD_TABLE}`).catch(() => undefined);
    }
  });
}

/** A cast failed while loading: find the column (and an example value) that does not fit its declared type. */
async function nameBadColumn(
  query: (text: string) => Promise<unknown>,
  view: FeatureView,
  statement: string,
  error: Error,
): Promise<string> {
  const types: [string, string, string][] = [
    [view.timestamp, 'timestamptz', 'a timestamp'],
    ...(view.createdTimestamp
      ? [[view.createdTimestamp, 'timestamptz', 'a timestamp'] as [string, string, string]]
      : []),
    ...Object.entries(view.features).map(
      ([f, t]) => [f, SQL_TYPES[t], t === 'integer' ? 'an integer' : `a ${t}`] as [string, string, string],
    ),
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

/**
 * Replaces a view's offline rows with what `fill` adds (text values in the offline table's columns, checked by the
 * caller) and records where they came from, in one transaction: a failing fill leaves the old rows in place.
 */
export async function replaceOfflineRows(
  db: Db,
  row: FeatureViewRow,
  loadedFrom: string,
  fill: (rows: RowSink) => Promise<void>,
  onProgress: (rows: number) => void = () => undefined,
): Promise<number> {
  const table = quote(row.offlineTable);
  return withSession(db, (client, transaction) =>
    transaction(async (tx) => {
      let rows = 0;
      const batches = new RowBatches(client, table, () => onProgress(rows));
      await client.query(`TRUNCATE ${table}`);
      await filled(batches, () =>
        fill({
          add: (values) => {
            rows++;
            batches.add(values);
          },
          pace: batches.pace,
        }),
      );
      await tx.update(featureViews).set(loadedSet(loadedFrom, rows)).where(isVersion(row));
      return rows;
    }),
  );
}

/** Entity rows for a point-in-time join: a scratch table of text columns, created from the first `columns` call. */
export interface ScratchSink extends RowSink {
  columns(header: string[]): void;
}

/** Fills a new unlogged scratch table (dropping one of that name first) in one transaction: a failure leaves none. */
export async function fillScratchTable(
  db: Db,
  scratch: string,
  fill: (sink: ScratchSink) => Promise<void>,
  onSent?: () => void,
): Promise<void> {
  const table = quote(scratch);
  await dropScratchTable(db, scratch);
  await withSession(db, (client, transaction) =>
    transaction(async () => {
      // The CREATE goes first on this client, then the batches behind it.
      const batches = new RowBatches(client, table, onSent);
      await filled(batches, () =>
        fill({
          columns: (header) =>
            batches.run(`CREATE UNLOGGED TABLE ${table} (${header.map((c) => `${quote(c)} text`).join(', ')})`),
          add: (values) => batches.add(values),
          pace: batches.pace,
        }),
      );
    }),
  );
}

export async function dropScratchTable(db: Db, scratch: string): Promise<void> {
  await db.execute(sql.raw(`DROP TABLE IF EXISTS ${quote(scratch)}`));
}

// ---------------------------------------------------------------- online store

/** The event-time range of a view's offline rows, in ms since the epoch; nulls when it has none. */
export async function offlineEventRange(
  db: Db,
  row: FeatureViewRow,
): Promise<{ min: number | null; max: number | null }> {
  const { rows } = await db.execute(
    sql.raw(
      `SELECT extract(epoch from min(event_ts)) * 1000 AS min, extract(epoch from max(event_ts)) * 1000 AS max FROM ${quote(row.offlineTable)}`,
    ),
  );
  const range = rows[0] as { min: string | null; max: string | null };
  return { min: range.min === null ? null : Number(range.min), max: range.max === null ? null : Number(range.max) };
}

/**
 * A window that wrote at least this many online rows refreshes the table's statistics at once: with the old ones the
 * planner looked entities up through (view, event_ts) and filtered 100,000 rows per lookup (121 ms) until autoanalyze
 * came round.
 */
export const ANALYZE_AFTER_ROWS = 10_000;

/** One window (from, to] into the online store and the watermark to `to`, in one transaction; the rows written. */
export async function materializeWindow(db: Db, row: FeatureViewRow, from: Date, to: Date): Promise<number> {
  checkTransforms(row);
  const ref = viewRef(row.name, row.version);
  return withSession(db, async (client, transaction) => {
    const written = await transaction(async (tx) => {
      const { rowCount } = await client.query(materializeSql(row.definition, row.offlineTable, ref), [from, to]);
      await tx
        .update(featureViews)
        .set({ materializedUntil: sql`greatest(coalesce(${featureViews.materializedUntil}, ${to}), ${to})` })
        .where(isVersion(row));
      return rowCount ?? 0;
    });
    // Statistics only speed lookups up (autoanalyze catches up): a role that may not ANALYZE fails nothing.
    if (written >= ANALYZE_AFTER_ROWS) await client.query('ANALYZE online_features').catch(() => undefined);
    return written;
  });
}

/** Starts over: the view's online rows and its watermark are cleared together (a full re-materialisation). */
export async function resetMaterialization(db: Db, name: string, version: number): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.delete(onlineFeatures).where(eq(onlineFeatures.view, viewRef(name, version)));
    await tx
      .update(featureViews)
      .set({ materializedUntil: null })
      .where(and(eq(featureViews.name, name), eq(featureViews.version, version)));
  });
}
