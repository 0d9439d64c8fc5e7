/** Streams CSV records out of a byte stream: strict UTF-8, header handling, line numbers for errors. */
import { isUtf8 } from 'node:buffer';
import { CsvLimitError, CsvParser, CsvSyntaxError, detectDelimiter, type CsvRecordView } from './csv';

/** For stored dataset versions: their size limits were applied when they were ingested (perhaps raised there). */
export const INGESTED_CSV_LIMITS = { maxFieldBytes: Infinity, maxLineBytes: Infinity } as const;

export class CsvInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsvInputError';
  }
}

export interface CsvStreamOptions {
  /** @default ',' (or, with `detectDelimiter`, what the first line is separated by) */
  delimiter?: string;
  /** Without a `delimiter`: choose ',', tab, ';' or '|' from the first line (`detectDelimiter`). @default false */
  detectDelimiter?: boolean;
  /** @default '"' */
  quote?: string;
  /** The first record holds the column names. @default true */
  header?: boolean;
  /** Column names for a file without a header (required then). */
  columns?: string[];
  /** Name used in error messages (a path or URI). */
  sourceName: string;
  /**
   * A longer field fails the read at once with the file, line and column. @default 4 MiB (`CSV_LIMITS.maxFieldBytes`)
   */
  maxFieldBytes?: number;
  /** A longer record fails the read at once with the file and line. @default 8 MiB (`CSV_LIMITS.maxLineBytes`) */
  maxLineBytes?: number;
  /** Checked before each chunk: an aborted read stops with the signal's reason (an activity's cancellation). */
  signal?: AbortSignal;
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
    if (seen.has(name))
      throw new CsvInputError(
        `${sourceName}: duplicate column name "${name}" in the header (columns ${names.indexOf(name) + 1} and ${i + 1})`,
      );
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
): Promise<{ rows: number; bytes: number; header: string[]; delimiter: string }> {
  let delimiter = options.delimiter ?? ',';
  let detect = options.detectDelimiter === true && options.delimiter === undefined;
  const parserFor = (separator: string) =>
    new CsvParser({
      delimiter: separator,
      quote: options.quote,
      maxFieldBytes: options.maxFieldBytes,
      maxLineBytes: options.maxLineBytes,
    });
  let parser = parserFor(delimiter);
  // A partial line longer than this goes to the parser before its end arrives, so a huge field fails while streaming.
  const partialFrom = Math.min(1 << 20, parser.partialLimit);
  const useHeader = options.header ?? true;
  let header: string[] | undefined;
  if (!useHeader) {
    if (!options.columns?.length)
      throw new CsvInputError(`${options.sourceName}: a file without a header needs column names ("columns")`);
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
  let plainOk = !!options.onPlainLines && delimiter === ',' && (options.quote ?? '"') === '"';
  /** Before the first bytes are parsed: the delimiter from their first line, when it is to be detected. */
  const settleDelimiter = (region: Buffer) => {
    if (!detect) return;
    detect = false;
    const end = region.indexOf(10);
    delimiter = detectDelimiter(region.subarray(0, end === -1 ? region.length : end).toString('utf8'), options.quote);
    if (delimiter === ',') return;
    parser = parserFor(delimiter);
    plainOk = false;
  };

  const consume = (record: CsvRecordView) => {
    if (!header) {
      header = record.fields().map((name) => name.trim());
      checkColumnNames(header, options.sourceName);
      onHeader(header);
      return;
    }
    if (record.count !== header.length) {
      throw new CsvInputError(
        `${options.sourceName}: line ${record.line} has ${record.count} fields, the header has ${header.length}`,
      );
    }
    rows++;
    onRecord(record);
  };

  /** Validates whole lines only: a multi-byte character never straddles a line feed. */
  const checkUtf8 = (region: Buffer) => {
    if (isUtf8(region)) return;
    let at = 0,
      offset = line;
    for (;;) {
      const next = region.indexOf(10, at);
      const end = next === -1 ? region.length : next;
      if (!isUtf8(region.subarray(at, end)))
        throw new CsvInputError(`${options.sourceName}: line ${offset} is not valid UTF-8`);
      if (next === -1) break;
      at = next + 1;
      offset++;
    }
  };
  /** Counts line feeds; returns the longest line, so lines only the parser can size-check never skip it. */
  const countLines = (region: Buffer) => {
    let at = region.indexOf(10),
      previous = -1,
      longest = 0;
    while (at !== -1) {
      line++;
      if (at - previous > longest) longest = at - previous;
      previous = at;
      at = region.indexOf(10, at + 1);
    }
    return Math.max(longest, region.length - previous - 1);
  };

  try {
    for await (const piece of input) {
      if (options.signal?.aborted) throw options.signal.reason;
      const wait = options.pace?.();
      if (wait) await wait;
      let chunk =
        typeof piece === 'string'
          ? Buffer.from(piece, 'utf8')
          : Buffer.isBuffer(piece)
            ? piece
            : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      bytes += chunk.length;
      if (first && chunk.length > 0) {
        first = false;
        if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
      }
      const buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      let end = buffer.lastIndexOf(10) + 1;
      // A long partial line is parsed as far as it goes (cut on a character boundary) instead of being held back.
      const partial = buffer.length - end >= partialFrom;
      if (partial) end += utf8Boundary(buffer.subarray(end));
      if (end === 0) {
        carry = Buffer.from(buffer);
        continue;
      }
      const complete = buffer.subarray(0, end);
      checkUtf8(complete);
      const firstLine = line;
      const longest = countLines(complete);
      carry = end < buffer.length ? Buffer.from(buffer.subarray(end)) : undefined;
      settleDelimiter(complete);
      if (
        plainOk &&
        !partial &&
        header &&
        parser.idle &&
        longest <= partialFrom &&
        complete[0] !== 10 &&
        complete.indexOf(34) === -1 &&
        complete.indexOf(13) === -1 &&
        complete.indexOf('\n\n') === -1
      ) {
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
      settleDelimiter(carry);
      parser.push(carry, consume);
    }
    parser.end(consume);
  } catch (error) {
    if (error instanceof CsvLimitError) {
      const column = error.field === undefined ? '' : `, column ${header?.[error.field] ?? error.field + 1}`;
      throw new CsvInputError(
        `${options.sourceName} line ${error.line}${column}: ${error.message.replace(/^line \d+: (column \d+: )?/, '')}`,
      );
    }
    if (error instanceof CsvSyntaxError) throw new CsvInputError(`${options.sourceName}: ${error.message}`);
    throw error;
  }
  if (!header) throw new CsvInputError(`${options.sourceName}: the file is empty (no header, no rows)`);
  return { rows, bytes, header, delimiter };
}

/** Where to cut `bytes` so no UTF-8 character is split: its length, or the start of a trailing incomplete character. */
export function utf8Boundary(bytes: Buffer): number {
  let lead = bytes.length - 1;
  while (lead >= 0 && bytes.length - lead < 4 && (bytes[lead]! & 0xc0) === 0x80) lead--;
  // ASCII last, or no lead byte where one should be (invalid, and the UTF-8 check will say so): nothing to hold back.
  if (lead < 0 || bytes[lead]! < 0xc0) return bytes.length;
  const size = bytes[lead]! >= 0xf0 ? 4 : bytes[lead]! >= 0xe0 ? 3 : 2;
  return bytes.length - lead >= size ? bytes.length : lead;
}
