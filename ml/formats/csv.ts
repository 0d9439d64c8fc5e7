/**
 * A streaming RFC 4180 CSV parser over bytes. It never builds a string it does not have to: each record is a view of
 * field bounds into the current buffer, numbers parse straight from the bytes, and text is decoded on demand.
 * Every record and every error carries the line where it starts.
 */
import { isNullToken, parseNumber } from './numbers';

/** Size limits that stop a hostile or broken file early instead of buffering it whole. */
export const CSV_LIMITS = {
  /** Bytes one field may hold (raw, between its quotes). */
  maxFieldBytes: 4 << 20,
  /** Bytes one record may span, line ending excluded (a quoted field may make it several lines). */
  maxLineBytes: 8 << 20,
} as const;

export interface CsvOptions {
  /** Field separator, one ASCII character. @default ',' */
  delimiter?: string;
  /** Quote character, one ASCII character. @default '"' */
  quote?: string;
  /** A longer field fails the parse at once, naming its line and column. @default 4 MiB (`CSV_LIMITS.maxFieldBytes`) */
  maxFieldBytes?: number;
  /** A longer record fails the parse at once, naming its line. @default 8 MiB (`CSV_LIMITS.maxLineBytes`) */
  maxLineBytes?: number;
}

export class CsvSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvSyntaxError';
  }
}

/** A field or record over its size limit; `field` is the 0-based column of an overlong field. */
export class CsvLimitError extends CsvSyntaxError {
  constructor(
    readonly what: 'field' | 'line',
    readonly limit: number,
    line: number,
    readonly field?: number,
  ) {
    super(`${field === undefined ? '' : `column ${field + 1}: `}${what} exceeds ${formatBytes(limit)}`, line);
    this.name = 'CsvLimitError';
  }
}

/** 4194304 → "4 MiB"; sizes that are not whole KiB or MiB stay in bytes. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} bytes`;
}

/** Read access to one record's fields; implemented over CSV bytes and over plain string arrays. */
export interface RecordFields {
  readonly count: number;
  /** True for a missing value: empty, NA, N/A, null or NULL. */
  isNull(i: number): boolean;
  /** The field as a finite number, or NaN when it is not a plain decimal/scientific number. */
  number(i: number): number;
  text(i: number): string;
  /** A 52-bit hash of the field's text (exact-enough identity for counting values without decoding them). */
  key(i: number): number;
}

const QUOTED = 1;
const ESCAPED = 2;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** One record: valid only during the callback that receives it. */
export class CsvRecordView implements RecordFields {
  buf: Buffer = Buffer.alloc(0);
  count = 0;
  starts = new Int32Array(64);
  ends = new Int32Array(64);
  flags = new Uint8Array(64);
  /** 1-based line where the record starts. */
  line = 1;
  /** Raw bounds of the record in `buf`, without its line ending. */
  start = 0;
  end = 0;
  /** The raw bytes are already canonical CSV: comma-separated with double quotes, none used, no CR. */
  plain = true;

  constructor(private readonly quote: number) {}

  push(start: number, end: number, flags: number): void {
    if (this.count === this.starts.length) {
      const size = this.starts.length * 2;
      const starts = new Int32Array(size),
        ends = new Int32Array(size),
        fl = new Uint8Array(size);
      starts.set(this.starts);
      ends.set(this.ends);
      fl.set(this.flags);
      this.starts = starts;
      this.ends = ends;
      this.flags = fl;
    }
    this.starts[this.count] = start;
    this.ends[this.count] = end;
    this.flags[this.count] = flags;
    this.count++;
  }

  isNull(i: number): boolean {
    const s = this.starts[i]!,
      length = this.ends[i]! - s,
      b = this.buf;
    switch (length) {
      case 0:
        return true;
      case 2:
        return b[s] === 78 && b[s + 1] === 65; // NA
      case 3:
        return b[s] === 78 && b[s + 1] === 47 && b[s + 2] === 65; // N/A
      case 4:
        return (
          (b[s] === 110 && b[s + 1] === 117 && b[s + 2] === 108 && b[s + 3] === 108) || // null
          (b[s] === 78 && b[s + 1] === 85 && b[s + 2] === 76 && b[s + 3] === 76)
        ); // NULL
      default:
        return false;
    }
  }

  number(i: number): number {
    const b = this.buf,
      end = this.ends[i]!;
    let p = this.starts[i]!;
    if (p === end) return NaN;
    const first = b[p]!;
    // Not a digit, sign, point or blank: not a number, without decoding the text.
    if ((first < 48 || first > 57) && first !== 45 && first !== 43 && first !== 46 && first !== 32 && first !== 9)
      return NaN;
    let negative = false;
    if (b[p] === 45) {
      negative = true;
      p++;
    } else if (b[p] === 43) p++;
    let mantissa = 0,
      digits = 0,
      scale = -1;
    for (; p < end; p++) {
      const c = b[p]!;
      if (c >= 48 && c <= 57) {
        mantissa = mantissa * 10 + (c - 48);
        digits++;
        if (scale >= 0) scale++;
      } else if (c === 46 && scale < 0) scale = 0;
      else break;
    }
    // Up to 15 digits and no exponent: mantissa / 10^k is exact-then-rounded once, the same double as Number(text).
    if (p === end && digits > 0 && digits <= 15) {
      const value = scale > 0 ? mantissa / POW10[scale]! : mantissa;
      return negative ? -value : value;
    }
    // Exponents, blanks and long mantissas take the exact slow path; anything else is not a number.
    const stop = p < end ? b[p] : 0;
    if (p < end && stop !== 101 && stop !== 69 && stop !== 32 && stop !== 9) return NaN;
    return parseNumber(this.text(i)) ?? NaN;
  }

  text(i: number): string {
    const raw = this.buf.toString('utf8', this.starts[i]!, this.ends[i]!);
    if (!(this.flags[i]! & ESCAPED)) return raw;
    const q = String.fromCharCode(this.quote);
    return raw.split(q + q).join(q);
  }

  key(i: number): number {
    const b = this.buf,
      end = this.ends[i]!;
    let h1 = 0x811c9dc5,
      h2 = 0x9747b28c;
    for (let p = this.starts[i]!; p < end; p++) {
      const c = b[p]!;
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    }
    // Escaped quotes decode to other text than the raw bytes; mark them so they never collide with an unescaped field.
    if (this.flags[i]! & ESCAPED) h2 ^= 0x7fffffff;
    return (h1 >>> 0) * 1048576 + ((h2 >>> 0) & 0xfffff);
  }

  quoted(i: number): boolean {
    return (this.flags[i]! & QUOTED) !== 0;
  }

  fields(): string[] {
    const out = new Array<string>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.text(i);
    return out;
  }
}

/** A record over plain strings (JSON, tests), with the same reading rules as CSV fields. */
export class ArrayRecord implements RecordFields {
  constructor(public values: string[]) {}
  get count(): number {
    return this.values.length;
  }
  isNull(i: number): boolean {
    return isNullToken(this.values[i] ?? '');
  }
  number(i: number): number {
    return parseNumber(this.values[i] ?? '') ?? NaN;
  }
  text(i: number): string {
    return this.values[i] ?? '';
  }
  key(i: number): number {
    return stringKey(this.values[i] ?? '');
  }
}

/** `key` for a string: the same 52-bit hash over its UTF-8 bytes. */
export function stringKey(text: string): number {
  let h1 = 0x811c9dc5,
    h2 = 0x9747b28c;
  const bytes = Buffer.from(text, 'utf8');
  for (let p = 0; p < bytes.length; p++) {
    const c = bytes[p]!;
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return (h1 >>> 0) * 1048576 + ((h2 >>> 0) & 0xfffff);
}

/** What a CSV without a configured delimiter may be separated by; on a tie the earlier one wins. */
export const DELIMITER_CANDIDATES = [',', '\t', ';', '|'] as const;

/**
 * The delimiter a CSV's first line (its header, usually) is separated by: the candidate it holds most of outside
 * quotes, a comma on a tie or when it holds none (one column). Semicolon files from European spreadsheets, TSVs and
 * pipe-separated exports are read as written instead of as one column.
 */
export function detectDelimiter(firstLine: string, quote = '"'): string {
  const counts = new Map<string, number>(DELIMITER_CANDIDATES.map((candidate) => [candidate, 0]));
  let quoted = false;
  for (const c of firstLine) {
    if (c === quote) quoted = !quoted;
    else if (!quoted && counts.has(c)) counts.set(c, counts.get(c)! + 1);
  }
  let best: string = ',';
  for (const candidate of DELIMITER_CANDIDATES)
    if (candidate !== quote && counts.get(candidate)! > counts.get(best)!) best = candidate;
  return best;
}

/**
 * Incremental parser: `push` byte chunks as they arrive, `end` at EOF. Quoted fields may hold delimiters, doubled
 * quotes and newlines; LF, CRLF and CR end records; blank lines are skipped. A record split across chunks is kept
 * and parsed again once the rest arrives.
 */
export class CsvParser {
  private readonly delimiter: number;
  private readonly quote: number;
  private readonly view: CsvRecordView;
  /** Comma and double quote: a record without quotes or CR is canonical as it stands. */
  private readonly canonicalDialect: boolean;
  private readonly maxField: number;
  private readonly maxLine: number;
  private pending: Buffer | undefined;
  private line = 1;

  constructor(options: CsvOptions = {}) {
    const delimiter = options.delimiter ?? ',';
    const quote = options.quote ?? '"';
    if (delimiter.length !== 1 || delimiter.charCodeAt(0) > 127)
      throw new Error(`CSV delimiter must be one ASCII character, got "${delimiter}"`);
    if (quote.length !== 1 || quote.charCodeAt(0) > 127)
      throw new Error(`CSV quote must be one ASCII character, got "${quote}"`);
    if (delimiter === quote || /[\r\n]/.test(delimiter + quote))
      throw new Error('CSV delimiter and quote must differ and not be a line break');
    this.delimiter = delimiter.charCodeAt(0);
    this.quote = quote.charCodeAt(0);
    this.canonicalDialect = delimiter === ',' && quote === '"';
    this.view = new CsvRecordView(this.quote);
    this.maxField = options.maxFieldBytes ?? CSV_LIMITS.maxFieldBytes;
    this.maxLine = options.maxLineBytes ?? CSV_LIMITS.maxLineBytes;
    if (!(this.maxField > 0) || !(this.maxLine > 0)) throw new Error('CSV size limits must be positive');
  }

  /** The smallest limit: a caller holding back a partial line this long should push it, so the limits are checked. */
  get partialLimit(): number {
    return Math.min(this.maxField, this.maxLine);
  }

  /** Line number of the next record to be parsed. */
  get nextLine(): number {
    return this.line;
  }

  /** True when no partial record is held back. */
  get idle(): boolean {
    return !this.pending || this.pending.length === 0;
  }

  /** Accounts for lines consumed elsewhere, so later line numbers stay right. */
  skipLines(count: number): void {
    this.line += count;
  }

  push(chunk: Buffer, onRecord: (record: CsvRecordView) => void): void {
    const buf = this.pending && this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    const consumed = this.parse(buf, false, onRecord);
    this.pending = consumed < buf.length ? Buffer.from(buf.subarray(consumed)) : undefined;
  }

  end(onRecord: (record: CsvRecordView) => void): void {
    if (this.pending && this.pending.length > 0) this.parse(this.pending, true, onRecord);
    this.pending = undefined;
  }

  /** Throws when the field being read, or its record so far, is over its limit. */
  private checkSize(fieldBytes: number, recordBytes: number, line: number, field: number): void {
    if (fieldBytes > this.maxField) throw new CsvLimitError('field', this.maxField, line, field);
    if (recordBytes > this.maxLine) throw new CsvLimitError('line', this.maxLine, this.line);
  }

  /** Parses complete records from `buf`; returns the offset of the first byte not consumed. */
  private parse(buf: Buffer, final: boolean, onRecord: (record: CsvRecordView) => void): number {
    const { delimiter, quote, view, canonicalDialect } = this;
    const length = buf.length;
    view.buf = buf;
    let recordStart = 0;
    records: while (recordStart < length) {
      let i = recordStart;
      let lines = 0;
      let plain = true;
      view.count = 0;
      for (;;) {
        if (i < length && buf[i] === quote) {
          plain = false;
          const contentStart = i + 1,
            fieldLine = this.line + lines;
          let j = contentStart,
            flags = QUOTED,
            close = -1;
          while (j < length) {
            const k = buf.indexOf(quote, j);
            if (k === -1) break;
            if (k + 1 < length && buf[k + 1] === quote) {
              flags |= ESCAPED;
              j = k + 2;
              continue;
            }
            if (k + 1 >= length && !final) break;
            close = k;
            break;
          }
          if (close < 0) {
            this.checkSize(length - contentStart, length - recordStart, fieldLine, view.count);
            if (final) throw new CsvSyntaxError('unterminated quoted field (missing closing quote)', this.line);
            return recordStart;
          }
          this.checkSize(close - contentStart, close - recordStart, fieldLine, view.count);
          for (let p = contentStart; p < close; p++) if (buf[p] === 10) lines++;
          view.push(contentStart, close, flags);
          i = close + 1;
          if (i < length) {
            const c = buf[i];
            if (c !== delimiter && c !== 10 && c !== 13) {
              throw new CsvSyntaxError(
                `unexpected character after the closing quote of field ${view.count}`,
                this.line + lines,
              );
            }
          }
        } else {
          let j = i;
          while (j < length) {
            const c = buf[j];
            if (c === delimiter || c === 10 || c === 13) break;
            if (c === quote)
              throw new CsvSyntaxError(`unexpected quote inside unquoted field ${view.count + 1}`, this.line + lines);
            j++;
          }
          this.checkSize(j - i, j - recordStart, this.line + lines, view.count);
          if (j >= length && !final) return recordStart;
          view.push(i, j, 0);
          i = j;
        }
        if (i >= length) {
          if (!final) return recordStart;
          break;
        }
        const c = buf[i]!;
        if (c === delimiter) {
          i++;
          continue;
        }
        if (c === 13) {
          plain = false;
          if (i + 1 >= length && !final) return recordStart;
          view.end = i;
          i += buf[i + 1] === 10 ? 2 : 1;
        } else {
          view.end = i;
          i++;
        }
        lines++;
        const blank = view.count === 1 && view.end === recordStart && !(view.flags[0]! & QUOTED);
        if (!blank) {
          view.start = recordStart;
          view.line = this.line;
          view.plain = plain && canonicalDialect;
          onRecord(view);
        }
        this.line += lines;
        recordStart = i;
        continue records;
      }
      // End of input without a line ending.
      view.start = recordStart;
      view.end = length;
      view.line = this.line;
      view.plain = plain && canonicalDialect;
      const blank = view.count === 1 && view.end === recordStart && !(view.flags[0]! & QUOTED);
      if (!blank) onRecord(view);
      this.line += lines;
      return length;
    }
    return recordStart;
  }
}

/** Parses a whole CSV text; convenience for tests and small inputs. */
export function parseCsv(text: string, options?: CsvOptions): { fields: string[]; line: number }[] {
  const parser = new CsvParser(options);
  const out: { fields: string[]; line: number }[] = [];
  const collect = (record: CsvRecordView) => out.push({ fields: record.fields(), line: record.line });
  parser.push(Buffer.from(text, 'utf8'), collect);
  parser.end(collect);
  return out;
}

/** Quotes a value for CSV output when it needs it. */
export function csvField(value: string | number | boolean | null | undefined, delimiter = ','): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return text.includes(delimiter) || text.includes('"') || text.includes('\n') || text.includes('\r')
    ? `"${text.replace(/"/g, '""')}"`
    : text;
}

/**
 * Writes records in canonical CSV — comma, minimal quoting, LF, header first — in chunks of about 1 MiB.
 * A record parsed from comma-separated input without quotes or CR is copied byte for byte.
 */
export class CanonicalCsvWriter {
  private buffer = Buffer.allocUnsafe(1 << 20);
  private used = 0;

  constructor(private readonly emit: (chunk: Buffer) => void) {}

  header(names: string[]): void {
    this.writeText(names.map((name) => csvField(name)).join(',') + '\n');
  }

  record(record: CsvRecordView): void {
    if (record.plain) {
      const length = record.end - record.start;
      if (this.used + length + 1 > this.buffer.length) this.flush(length + 1);
      record.buf.copy(this.buffer, this.used, record.start, record.end);
      this.used += length;
      this.buffer[this.used++] = 10;
      return;
    }
    let line = '';
    for (let i = 0; i < record.count; i++) line += (i ? ',' : '') + csvField(record.text(i));
    this.writeText(line + '\n');
  }

  /** Emits what is buffered; call once at the end. */
  flush(room = 0): void {
    if (this.used > 0) this.emit(Buffer.from(this.buffer.subarray(0, this.used)));
    this.used = 0;
    if (room > this.buffer.length) this.buffer = Buffer.allocUnsafe(room);
  }

  private writeText(text: string): void {
    const length = Buffer.byteLength(text);
    if (this.used + length > this.buffer.length) this.flush(length);
    this.used += this.buffer.write(text, this.used);
  }
}
