/** Streams CSV records out of a byte stream: strict UTF-8, header handling, line numbers for errors. */
import { isUtf8 } from 'node:buffer';
import { CsvParser, CsvSyntaxError, type CsvRecordView } from '../ml/csv';

export class CsvInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsvInputError';
  }
}

export interface CsvStreamOptions {
  /** @default ',' */
  delimiter?: string;
  /** @default '"' */
  quote?: string;
  /** The first record holds the column names. @default true */
  header?: boolean;
  /** Column names for a file without a header (required then). */
  columns?: string[];
  /** Name used in error messages (a path or URI). */
  sourceName: string;
  /** Called with the byte count every ~8 MiB, e.g. to heartbeat. */
  onProgress?: (bytes: number) => void;
  /** Awaited (when it returns a promise) before each chunk is read: backpressure from slower consumers. */
  pace?: () => Promise<void> | undefined;
  /**
   * Takes whole lines that are already canonical CSV — comma-separated, no quote, no CR, no blank line — instead of
   * parsing them here (`onRecord` is not called for them). The taker must check field counts itself; `firstLine`
   * is the file line of the chunk's first record. Used to parse and profile on other threads.
   */
  onPlainLines?: (lines: Buffer, firstLine: number, count: number) => void;
}

/** Checks header names: none blank, none repeated. */
export function checkColumnNames(names: string[], sourceName: string): void {
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (name === '') throw new CsvInputError(`${sourceName}: header column ${i + 1} has no name`);
    if (seen.has(name)) throw new CsvInputError(`${sourceName}: duplicate column name "${name}" in the header (columns ${names.indexOf(name) + 1} and ${i + 1})`);
    seen.add(name);
  });
}

/**
 * Calls `onHeader` once, then `onRecord` per data record (the view is valid only during the call). Errors name the
 * source and line: invalid UTF-8, broken quoting, empty files, duplicate or blank header names, ragged rows.
 */
export async function readCsv(
  input: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>,
  options: CsvStreamOptions,
  onHeader: (header: string[]) => void,
  onRecord: (record: CsvRecordView) => void,
): Promise<{ rows: number; bytes: number; header: string[] }> {
  const parser = new CsvParser({ delimiter: options.delimiter, quote: options.quote });
  const useHeader = options.header ?? true;
  let header: string[] | undefined;
  if (!useHeader) {
    if (!options.columns?.length) throw new CsvInputError(`${options.sourceName}: a file without a header needs column names ("columns")`);
    header = options.columns.slice();
    checkColumnNames(header, options.sourceName);
    onHeader(header);
  }
  let rows = 0;
  let bytes = 0;
  let nextProgress = 8 << 20;
  let carry: Buffer | undefined;
  let line = 1;
  let first = true;
  const plainOk = !!options.onPlainLines && (options.delimiter ?? ',') === ',' && (options.quote ?? '"') === '"';

  const consume = (record: CsvRecordView) => {
    if (!header) {
      header = record.fields().map((name) => name.trim());
      checkColumnNames(header, options.sourceName);
      onHeader(header);
      return;
    }
    if (record.count !== header.length) {
      throw new CsvInputError(`${options.sourceName}: line ${record.line} has ${record.count} fields, the header has ${header.length}`);
    }
    rows++;
    onRecord(record);
  };

  /** Validates whole lines only: a multi-byte character never straddles a line feed. */
  const checkUtf8 = (region: Buffer) => {
    if (isUtf8(region)) return;
    let at = 0, offset = line;
    for (;;) {
      const next = region.indexOf(10, at);
      const end = next === -1 ? region.length : next;
      if (!isUtf8(region.subarray(at, end))) throw new CsvInputError(`${options.sourceName}: line ${offset} is not valid UTF-8`);
      if (next === -1) break;
      at = next + 1;
      offset++;
    }
  };
  const countLines = (region: Buffer) => {
    let at = region.indexOf(10);
    while (at !== -1) { line++; at = region.indexOf(10, at + 1); }
  };

  try {
    for await (const piece of input) {
      const wait = options.pace?.();
      if (wait) await wait;
      let chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      bytes += chunk.length;
      if (first && chunk.length > 0) {
        first = false;
        if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
      }
      const buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      const lastNewline = buffer.lastIndexOf(10);
      if (lastNewline === -1) {
        carry = Buffer.from(buffer);
        continue;
      }
      const complete = buffer.subarray(0, lastNewline + 1);
      checkUtf8(complete);
      const firstLine = line;
      countLines(complete);
      carry = lastNewline + 1 < buffer.length ? Buffer.from(buffer.subarray(lastNewline + 1)) : undefined;
      if (plainOk && header && parser.idle && complete[0] !== 10 && complete.indexOf(34) === -1 && complete.indexOf(13) === -1 && complete.indexOf('\n\n') === -1) {
        rows += line - firstLine;
        options.onPlainLines!(complete, firstLine, line - firstLine);
        parser.skipLines(line - firstLine);
      } else parser.push(complete, consume);
      if (bytes >= nextProgress) {
        options.onProgress?.(bytes);
        nextProgress += 8 << 20;
      }
    }
    if (carry) {
      checkUtf8(carry);
      parser.push(carry, consume);
    }
    parser.end(consume);
  } catch (error) {
    if (error instanceof CsvSyntaxError) throw new CsvInputError(`${options.sourceName}: ${error.message}`);
    throw error;
  }
  if (!header) throw new CsvInputError(`${options.sourceName}: the file is empty (no header, no rows)`);
  return { rows, bytes, header };
}
