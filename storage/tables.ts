/**
 * Tabular sources in every supported format, read as one stream of CSV records.
 *
 * CSV is parsed as it arrives. JSON Lines, Parquet and SQL results are converted row by row into canonical CSV
 * (comma, minimal quoting, LF) and parsed the same way, so every later step — hashing, profiling, validation,
 * training — sees one representation, and the same table yields the same version whatever format it came in.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { CSV_LIMITS, csvField, formatBytes, type CsvRecordView } from '../ml/formats/csv';
import { singleStatement, UserSqlError } from '../features/userSql';
import type { ObjectStore } from './objectStore';
import { checkColumnNames, CsvInputError, readCsv } from '../ml/formats/csvStream';
import {
  checkLocalPath,
  isSqlSource,
  localAccess,
  localPath,
  openSource,
  redact,
  resolveSecretReferences,
  SourceError,
  type LocalAccess,
} from './sources';

export type DataFormat = 'csv' | 'jsonl' | 'parquet' | 'sql';

export interface TableSpec {
  /** A path, file://, http(s)://, s3://bucket/key, or postgres:// URL (with `query`). */
  source: string;
  /** Detected from the source when omitted: postgres:// → sql, *.parquet, *.jsonl / *.ndjson, else csv. */
  format?: DataFormat;
  /** CSV only. @default what the first line is separated by: ',', tab, ';' or '|' (`detectDelimiter`) */
  delimiter?: string;
  /** CSV only. @default '"' */
  quote?: string;
  /** CSV only: the first line holds the column names. @default true */
  header?: boolean;
  /** CSV only: names for a file without a header. */
  columns?: string[];
  /** The SELECT to run against a postgres:// source: one statement, run in a read-only transaction. */
  query?: string;
  /** A longer field fails the ingest, naming file, line and column. @default 4 MiB */
  maxFieldBytes?: number;
  /** A longer record (or JSON line) fails the ingest, naming file and line. @default 8 MiB */
  maxLineBytes?: number;
  /** The folder of the pipeline config the source was declared in: a local source may lie under it too. */
  configDir?: string;
}

export interface TableCallbacks {
  onHeader(columns: string[]): void;
  onRecord(record: CsvRecordView): void;
  onProgress?(bytes: number): void;
  /** Backpressure: awaited before each chunk when it returns a promise. */
  pace?(): Promise<void> | undefined;
  /** See `CsvStreamOptions.onPlainLines` (CSV sources only). */
  onPlainLines?(lines: Buffer, firstLine: number, count: number): void;
  /** An aborted read stops at the next chunk (an activity's cancellation). */
  signal?: AbortSignal;
}

export function detectFormat(spec: TableSpec): DataFormat {
  if (spec.format) return spec.format;
  if (isSqlSource(spec.source)) return 'sql';
  const path = spec.source.split(/[?#]/)[0]!.toLowerCase();
  if (path.endsWith('.parquet') || path.endsWith('.pq')) return 'parquet';
  if (path.endsWith('.jsonl') || path.endsWith('.ndjson')) return 'jsonl';
  return 'csv';
}

/** Reads a whole table, calling back per record; errors name the source, line or row, and field. */
export async function readTable(
  spec: TableSpec,
  store: ObjectStore,
  callbacks: TableCallbacks,
): Promise<{ rows: number; format: DataFormat; columns: string[]; detectedDelimiter?: string }> {
  const format = detectFormat(spec);
  const name = redact(spec.source);
  const limits = {
    maxFieldBytes: spec.maxFieldBytes ?? CSV_LIMITS.maxFieldBytes,
    maxLineBytes: spec.maxLineBytes ?? CSV_LIMITS.maxLineBytes,
  };
  const canonical = {
    sourceName: name,
    onProgress: callbacks.onProgress,
    pace: callbacks.pace,
    signal: callbacks.signal,
    ...limits,
  };
  const access = localPath(spec.source) ? localAccess(spec.configDir) : undefined;
  let result: { rows: number; header: string[]; delimiter: string };
  switch (format) {
    case 'csv':
      result = await readCsv(
        await openSource(spec.source, store, access),
        {
          delimiter: spec.delimiter,
          detectDelimiter: true,
          quote: spec.quote,
          header: spec.header,
          columns: spec.columns,
          onPlainLines: callbacks.onPlainLines,
          ...canonical,
        },
        callbacks.onHeader,
        callbacks.onRecord,
      );
      break;
    case 'jsonl':
      result = await readCsv(
        jsonLinesToCsv(await openSource(spec.source, store, access), name, limits.maxLineBytes),
        canonical,
        callbacks.onHeader,
        callbacks.onRecord,
      );
      break;
    case 'parquet':
      result = await withLocalFile(spec.source, store, access, (path) =>
        readCsv(parquetToCsv(path, name), canonical, callbacks.onHeader, callbacks.onRecord),
      );
      break;
    case 'sql':
      if (!spec.query?.trim()) throw new SourceError(`${name}: a postgres:// source needs a "query"`, name);
      result = await readCsv(
        sqlToCsv(spec.source, spec.query, name),
        canonical,
        callbacks.onHeader,
        callbacks.onRecord,
      );
      break;
  }
  if (result.rows === 0)
    throw new CsvInputError(
      `${name}: the ${format === 'sql' ? 'query returned' : 'file has'} a header but no data rows`,
    );
  // Said to the user (the ingest summary) when it is not the comma they would assume.
  const detectedDelimiter =
    format === 'csv' && !spec.delimiter && result.delimiter !== ',' ? result.delimiter : undefined;
  return { rows: result.rows, format, columns: result.header, detectedDelimiter };
}

/** The canonical text of one cell: null → empty, numbers and booleans as JavaScript prints them, dates as ISO 8601. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return String(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
}

function csvLine(values: unknown[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) line += (i ? ',' : '') + csvField(cellText(values[i]));
  return line + '\n';
}

const CHUNK = 1 << 20;

/**
 * JSON Lines → canonical CSV. Columns are the first object's keys; a later key not among them is an error. A line
 * longer than `maxLineBytes` fails as soon as that many bytes of it have arrived.
 */
async function* jsonLinesToCsv(input: Readable, name: string, maxLineBytes: number): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let columns: string[] | undefined;
  let index = new Map<string, number>();
  let carry: Buffer | undefined;
  let line = 0;
  let out = '';
  const handle = (bytes: Buffer): void => {
    line++;
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new CsvInputError(`${name}: line ${line} is not valid UTF-8`);
    }
    if (line === 1) text = text.replace(/^\uFEFF/, '');
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new CsvInputError(`${name}: line ${line} is not valid JSON (${(error as Error).message})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new CsvInputError(`${name}: line ${line} is not a JSON object`);
    const record = value as Record<string, unknown>;
    if (!columns) {
      columns = Object.keys(record);
      if (columns.length === 0)
        throw new CsvInputError(`${name}: line ${line} is an empty object; the first record names the columns`);
      checkColumnNames(columns, name);
      index = new Map(columns.map((c, i) => [c, i]));
      out += csvLine(columns);
    }
    const row = new Array<unknown>(columns.length).fill(null);
    for (const key in record) {
      const at = index.get(key);
      if (at === undefined)
        throw new CsvInputError(
          `${name}: line ${line} has field "${key}", which the first record does not have (columns: ${columns.join(', ')})`,
        );
      row[at] = record[key];
    }
    out += csvLine(row);
  };
  for await (const piece of input) {
    const chunk = piece as Buffer;
    const buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (let end = buffer.indexOf(10); end !== -1; end = buffer.indexOf(10, start)) {
      handle(buffer.subarray(start, end > start && buffer[end - 1] === 13 ? end - 1 : end));
      start = end + 1;
    }
    carry = start < buffer.length ? Buffer.from(buffer.subarray(start)) : undefined;
    if (carry && carry.length > maxLineBytes)
      throw new CsvInputError(`${name} line ${line + 1}: line exceeds ${formatBytes(maxLineBytes)}`);
    if (out.length >= CHUNK) {
      yield out;
      out = '';
    }
  }
  if (carry) handle(carry);
  if (!columns) throw new CsvInputError(`${name}: the file is empty (no JSON records)`);
  yield out;
}

/** Parquet → canonical CSV, one row group at a time so memory stays bounded by the largest group. */
async function* parquetToCsv(path: string, name: string): AsyncGenerator<string> {
  let file, metadata;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw new CsvInputError(`${name}: not a readable Parquet file (${(error as Error).message})`);
  }
  // Top-level fields, in order: a nested field (struct, list) becomes one JSON-valued column.
  const names: string[] = [];
  for (let i = 1, skip = 0; i < metadata.schema.length; i++) {
    const element = metadata.schema[i]!;
    if (skip > 0) skip--;
    else names.push(element.name);
    skip += element.num_children ?? 0;
  }
  checkColumnNames(names, name);
  yield csvLine(names);
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd, compressors });
    } catch (error) {
      throw new CsvInputError(`${name}: cannot decode rows ${rowStart + 1}–${rowEnd} (${(error as Error).message})`);
    }
    let out = '';
    for (const row of rows) {
      out += csvLine(names.map((column) => row[column]));
      if (out.length >= CHUNK) {
        yield out;
        out = '';
      }
    }
    yield out;
    rowStart = rowEnd;
  }
}

/** The role user SQL runs as where it exists (Flywheel's own database): it may read tables, and write nothing. */
export const READER_ROLE = 'flywheel_reader';

/**
 * SQL query → canonical CSV through a server-side cursor (5,000 rows at a time). The query must be one statement (the
 * cursor's extended protocol would refuse more anyway) without forbidden functions; it runs in a READ ONLY
 * transaction, as the reader role where the server has one.
 */
async function* sqlToCsv(url: string, query: string, name: string): AsyncGenerator<string> {
  let statement: string;
  try {
    statement = singleStatement(query);
  } catch (error) {
    if (error instanceof UserSqlError)
      throw new SourceError(`${name}: the query is refused: ${error.message} — query: ${query}`, name);
    throw error;
  }
  const client = new pg.Client({ connectionString: resolveSecretReferences(url), connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (error) {
    throw sqlError(error, name, query);
  }
  try {
    try {
      await client.query('BEGIN TRANSACTION READ ONLY');
      // A slow consumer of the cursor is not a stale session: no idle limit inside this read-only transaction.
      await client.query('SET LOCAL idle_in_transaction_session_timeout = 0');
      await asReader(client);
    } catch (error) {
      throw sqlError(error, name, query);
    }
    const cursor = client.query(new Cursor(statement, [], { rowMode: 'array' }));
    let header = false;
    for (;;) {
      let rows: unknown[][];
      try {
        rows = (await cursor.read(5_000)) as unknown[][];
      } catch (error) {
        throw sqlError(error, name, query);
      }
      if (!header) {
        const fields = (cursor as unknown as { _result?: { fields?: { name: string }[] } })._result?.fields ?? [];
        const columns = fields.map((f) => f.name);
        if (columns.length === 0) throw new SourceError(`${name}: the query returned no columns: ${query}`, name);
        checkColumnNames(columns, `${name} (query)`);
        yield csvLine(columns);
        header = true;
      }
      if (rows.length === 0) break;
      let out = '';
      for (const row of rows) out += csvLine(row);
      yield out;
    }
    await cursor.close();
    await client.query('COMMIT');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * In an open transaction: `SET LOCAL ROLE` to the reader role when the server has it and the session may take it;
 * returns whether it did. Elsewhere the read-only transaction and the statement check are the guard.
 */
export async function asReader(client: {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT 1 FROM pg_roles WHERE rolname = $1 AND pg_has_role(session_user, oid, 'MEMBER')`,
    [READER_ROLE],
  );
  if (rows.length === 0) return false;
  await client.query(`SET LOCAL ROLE ${READER_ROLE}`);
  return true;
}

/**
 * SQL errors from the server (syntax, unknown table, permission) are the query's fault; connection trouble may pass.
 */
function sqlError(error: unknown, name: string, query: string): Error {
  const e = error as { code?: string; message?: string; position?: string };
  const transient = !e.code || /^(08|53|57|40)/.test(e.code) || /^E[A-Z]+$/.test(e.code);
  const where = e.position ? ` at character ${e.position}` : '';
  // 25006: a write in the read-only transaction; 42501: a table the reader role may not read.
  const hint =
    e.code === '25006'
      ? ' (queries run read-only: they may not write)'
      : e.code === '42501'
        ? ` (queries run as the role ${READER_ROLE}, which reads tables other than Flywheel's own; GRANT it SELECT on a table it needs)`
        : '';
  const message = `${name}: SQL error${e.code && !/^E[A-Z]+$/.test(e.code) ? ` ${e.code}` : ''}${where}: ${e.message ?? String(error)}${hint} — query: ${query}`;
  return transient ? new Error(message) : new SourceError(message, name);
}

/** Parquet needs random access: a remote file is downloaded to a temporary file first. */
async function withLocalFile<T>(
  source: string,
  store: ObjectStore,
  access: LocalAccess | undefined,
  work: (path: string) => Promise<T>,
): Promise<T> {
  const path = localPath(source);
  if (path) {
    await openSource(source, store, access).then((stream) => stream.destroy());
    return work(await checkLocalPath(path, access ?? localAccess()));
  }
  const dir = await mkdtemp(join(tmpdir(), 'flywheel-parquet-'));
  try {
    const file = join(dir, 'data.parquet');
    await pipeline(await openSource(source, store), createWriteStream(file));
    return await work(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
