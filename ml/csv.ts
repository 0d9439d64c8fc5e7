/** A streaming RFC 4180 CSV parser that reports the line of every record and of every error. */

export interface CsvOptions {
  /** Field separator. @default ',' */
  delimiter?: string;
  /** Quote character. @default '"' */
  quote?: string;
}

export class CsvSyntaxError extends Error {
  constructor(message: string, readonly line: number) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvSyntaxError';
  }
}

export interface CsvRecord {
  fields: string[];
  /** 1-based line where the record starts in the file. */
  line: number;
}

/**
 * Incremental parser: `push` text chunks as they arrive, collect complete records, `end` at EOF.
 * Quoted fields may hold delimiters, doubled quotes and newlines; CRLF and LF both end records.
 */
export class CsvParser {
  private readonly delimiter: string;
  private readonly quote: string;
  private field = '';
  private fields: string[] = [];
  private inQuotes = false;
  private quoteClosed = false;
  private fieldStarted = false;
  private line = 1;
  private recordLine = 1;
  private pendingCR = false;

  constructor(options: CsvOptions = {}) {
    this.delimiter = options.delimiter ?? ',';
    this.quote = options.quote ?? '"';
    if (this.delimiter.length !== 1) throw new Error(`CSV delimiter must be one character, got "${this.delimiter}"`);
  }

  push(chunk: string, out: CsvRecord[] = []): CsvRecord[] {
    const { delimiter, quote } = this;
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i]!;
      if (this.pendingCR) {
        this.pendingCR = false;
        if (ch === '\n') continue;
      }
      if (this.inQuotes) {
        if (ch === quote) {
          if (i + 1 < chunk.length) {
            if (chunk[i + 1] === quote) {
              this.field += quote;
              i++;
            } else {
              this.inQuotes = false;
              this.quoteClosed = true;
            }
          } else {
            // Can't see the next char yet: treat as closing; a following quote reopens as an escaped quote.
            this.inQuotes = false;
            this.quoteClosed = true;
          }
        } else {
          if (ch === '\n') this.line++;
          this.field += ch;
        }
        continue;
      }
      if (ch === quote) {
        if (this.quoteClosed) {
          // `""` split across chunks: an escaped quote inside the quoted field.
          this.field += quote;
          this.inQuotes = true;
          this.quoteClosed = false;
        } else if (!this.fieldStarted) {
          this.inQuotes = true;
          this.fieldStarted = true;
        } else {
          throw new CsvSyntaxError(`unexpected quote inside unquoted field ${this.fields.length + 1}`, this.line);
        }
        continue;
      }
      if (ch === delimiter) {
        this.endField();
        continue;
      }
      if (ch === '\n' || ch === '\r') {
        this.endRecord(out);
        this.line++;
        this.recordLine = this.line;
        if (ch === '\r') this.pendingCR = true;
        continue;
      }
      if (this.quoteClosed) throw new CsvSyntaxError(`unexpected character after closing quote in field ${this.fields.length + 1}`, this.line);
      this.field += ch;
      this.fieldStarted = true;
    }
    return out;
  }

  end(out: CsvRecord[] = []): CsvRecord[] {
    if (this.inQuotes) throw new CsvSyntaxError('unterminated quoted field (missing closing quote)', this.recordLine);
    if (this.fieldStarted || this.fields.length > 0 || this.quoteClosed) this.endRecord(out);
    return out;
  }

  private endField(): void {
    this.fields.push(this.field);
    this.field = '';
    this.fieldStarted = false;
    this.quoteClosed = false;
  }

  private endRecord(out: CsvRecord[]): void {
    const empty = this.fields.length === 0 && !this.fieldStarted && !this.quoteClosed && this.field === '';
    if (!empty) {
      this.endField();
      out.push({ fields: this.fields, line: this.recordLine });
    }
    this.fields = [];
    this.field = '';
    this.fieldStarted = false;
    this.quoteClosed = false;
  }
}

/** Parses a whole CSV text; convenience for tests and small inputs. */
export function parseCsv(text: string, options?: CsvOptions): CsvRecord[] {
  const parser = new CsvParser(options);
  const out = parser.push(text);
  return parser.end(out);
}

/** Quotes a value for CSV output when it needs it. */
export function csvField(value: string | number | boolean | null | undefined, delimiter = ','): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return text.includes(delimiter) || text.includes('"') || text.includes('\n') || text.includes('\r')
    ? `"${text.replace(/"/g, '""')}"`
    : text;
}
