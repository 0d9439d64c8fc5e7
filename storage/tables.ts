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
import { csvField, type CsvRecordView } from '../ml/csv';
import type { ObjectStore } from './objectStore';
import { checkColumnNames, CsvInputError, readCsv } from './csvStream';
import { isSqlSource, localPath, openSource, redact, SourceError } from './sources';

export type DataFormat = 'csv' | 'jsonl' | 'parquet' | 'sql';

export interface TableSpec {
  /** A path, file://, http(s)://, s3://bucket/key, or postgres:// URL (with `query`). */
  source: string;
  /** Detected from the source when omitted: postgres:// → sql, *.parquet, *.jsonl / *.ndjson, else csv. */
  format?: DataFormat;
  /** CSV only. @default ',' */
  delimiter?: string;
  /** CSV only. @default '"' */
  quote?: string;
  /** CSV only: the first line holds the column names. @default true */
  header?: boolean;
  /** CSV only: names for a file without a header. */
  columns?: string[];
  /** The SELECT to run against a postgres:// source. */
  query?: string;
}

export interface TableCallbacks {
  onHeader(columns: string[]): void;
  onRecord(record: CsvRecordView): void;
  onProgress?(bytes: number): void;
  /** Backpressure: awaited before each chunk when it returns a promise. */
  pace?(): Promise<void> | undefined;
  /** See `CsvStreamOptions.onPlainLines` (CSV sources only). */
  onPlainLines?(lines: Buffer, firstLine: number, count: number): void;
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
export async function readTable(spec: TableSpec, store: ObjectStore, callbacks: TableCallbacks): Promise<{ rows: number; format: DataFormat; columns: string[] }> {
  const format = detectFormat(spec);
  const name = redact(spec.source);
  const canonical = { sourceName: name, onProgress: callbacks.onProgress, pace: callbacks.pace };
  let result: { rows: number; header: string[] };
  switch (format) {
    case 'csv':
      result = await readCsv(await openSource(spec.source, store), {
        delimiter: spec.delimiter, quote: spec.quote, header: spec.header, columns: spec.columns, onPlainLines: callbacks.onPlainLines, ...canonical,
      }, callbacks.onHeader, callbacks.onRecord);
      break;
    case 'jsonl':
      result = await readCsv(jsonLinesToCsv(await openSource(spec.source, store), name), canonical, callbacks.onHeader, callbacks.onRecord);
      break;
    case 'parquet':
      result = await withLocalFile(spec.source, store, (path) => readCsv(parquetToCsv(path, name), canonical, callbacks.onHeader, callbacks.onRecord));
      break;
    case 'sql':
      if (!spec.query?.trim()) throw new SourceError(`${name}: a postgres:// source needs a "query"`, name);
      result = await readCsv(sqlToCsv(spec.source, spec.query, name), canonical, callbacks.onHeader, callbacks.onRecord);
      break;
  }
  if (result.rows === 0) throw new CsvInputError(`${name}: the ${format === 'sql' ? 'query returned' : 'file has'} a header but no data rows`);
  return { rows: result.rows, format, columns: result.header };
}

/** The canonical text of one cell: null → empty, numbers and booleans as JavaScript prints them, dates as ISO 8601. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  switch (typeof value) {
    case 'string': return value;
    case 'number': return String(value);
    case 'bigint': return value.toString();
    case 'boolean': return value ? 'true' : 'false';
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
}

function csvLine(values: unknown[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) line += (i ? ',' : '') + csvField(cellText(values[i]));
  return line + '\n';
}

const CHUNK = 1 << 20;

/** JSON Lines → canonical CSV. Columns are the first object's keys; a later key not among them is an error. */
async function* jsonLinesToCsv(input: Readable, name: string): AsyncGenerator<string> {
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
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CsvInputError(`${name}: line ${line} is not a JSON object`);
    const record = value as Record<string, unknown>;
    if (!columns) {
      columns = Object.keys(record);
      if (columns.length === 0) throw new CsvInputError(`${name}: line ${line} is an empty object; the first record names the columns`);
      checkColumnNames(columns, name);
      index = new Map(columns.map((c, i) => [c, i]));
      out += csvLine(columns);
    }
    const row = new Array<unknown>(columns.length).fill(null);
    for (const key in record) {
      const at = index.get(key);
      if (at === undefined) throw new CsvInputError(`${name}: line ${line} has field "${key}", which the first record does not have (columns: ${columns.join(', ')})`);
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
    if (out.length >= CHUNK) { yield out; out = ''; }
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
      if (out.length >= CHUNK) { yield out; out = ''; }
    }
    yield out;
    rowStart = rowEnd;
  }
}

/** SQL query → canonical CSV through a server-side cursor (5,000 rows at a time). */
async function* sqlToCsv(url: string, query: string, name: string): AsyncGenerator<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (error) {
    throw sqlError(error, name, query);
  }
  try {
    const cursor = client.query(new Cursor(query, [], { rowMode: 'array' }));
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
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** SQL errors from the server (syntax, unknown table, permission) are the query's fault; connection trouble may pass. */
function sqlError(error: unknown, name: string, query: string): Error {
  const e = error as { code?: string; message?: string; position?: string };
  const transient = !e.code || /^(08|53|57|40)/.test(e.code) || /^E[A-Z]+$/.test(e.code);
  const where = e.position ? ` at character ${e.position}` : '';
  const message = `${name}: SQL error${e.code && !/^E[A-Z]+$/.test(e.code) ? ` ${e.code}` : ''}${where}: ${e.message ?? String(error)} — query: ${query}`;
  return transient ? new Error(message) : new SourceError(message, name);
}

/** Parquet needs random access: a remote file is downloaded to a temporary file first. */
async function withLocalFile<T>(source: string, store: ObjectStore, work: (path: string) => Promise<T>): Promise<T> {
  const path = localPath(source);
  if (path) {
    await openSource(source, store).then((stream) => stream.destroy());
    return work(path);
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
