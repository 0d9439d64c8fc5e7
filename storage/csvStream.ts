/** Streams CSV records out of a byte stream: strict UTF-8, header handling, line numbers for errors. */
import type { Readable } from 'node:stream';
import { CsvParser, CsvSyntaxError, type CsvRecord } from '../ml/csv';

export class CsvInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsvInputError';
  }
}

export interface CsvStreamOptions {
  delimiter: string;
  /** Name used in error messages (a path or URI). */
  sourceName: string;
  /** Called with the byte count every ~8 MiB, e.g. to heartbeat. */
  onProgress?: (bytes: number) => void;
  /** Sees every raw chunk, e.g. to hash or copy the bytes. */
  onChunk?: (chunk: Buffer) => void | Promise<void>;
}

/**
 * Calls `onHeader` once, then `onRow` per record. Errors name the source and line:
 * invalid UTF-8, broken quoting, empty files, duplicate or blank header names, ragged rows.
 */
export async function readCsv(
  input: Readable,
  options: CsvStreamOptions,
  onHeader: (header: string[]) => void,
  onRow: (fields: string[], line: number) => void,
): Promise<{ rows: number; bytes: number }> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const parser = new CsvParser({ delimiter: options.delimiter });
  let header: string[] | undefined;
  let rows = 0;
  let bytes = 0;
  let nextProgress = 8 << 20;
  const batch: CsvRecord[] = [];

  const consume = () => {
    for (const record of batch) {
      if (!header) {
        header = record.fields.map((name, i) => (i === 0 ? name.replace(/^\uFEFF/, '') : name).trim());
        const seen = new Set<string>();
        header.forEach((name, i) => {
          if (name === '') throw new CsvInputError(`${options.sourceName}: header column ${i + 1} has no name`);
          if (seen.has(name)) throw new CsvInputError(`${options.sourceName}: duplicate column name "${name}" in the header`);
          seen.add(name);
        });
        onHeader(header);
        continue;
      }
      if (record.fields.length !== header.length) {
        throw new CsvInputError(`${options.sourceName}: line ${record.line} has ${record.fields.length} fields, the header has ${header.length}`);
      }
      rows++;
      onRow(record.fields, record.line);
    }
    batch.length = 0;
  };

  try {
    for await (const chunk of input) {
      const buffer = chunk as Buffer;
      bytes += buffer.length;
      await options.onChunk?.(buffer);
      let text: string;
      try {
        text = decoder.decode(buffer, { stream: true });
      } catch {
        throw new CsvInputError(`${options.sourceName}: invalid UTF-8 near byte ${bytes - buffer.length}`);
      }
      parser.push(text, batch);
      consume();
      if (bytes >= nextProgress) {
        options.onProgress?.(bytes);
        nextProgress += 8 << 20;
      }
    }
    try {
      parser.push(decoder.decode(), batch);
    } catch {
      throw new CsvInputError(`${options.sourceName}: invalid UTF-8 at the end of the file`);
    }
    parser.end(batch);
    consume();
  } catch (error) {
    if (error instanceof CsvSyntaxError) throw new CsvInputError(`${options.sourceName}: ${error.message}`);
    throw error;
  }
  if (!header) throw new CsvInputError(`${options.sourceName}: the file is empty (no header, no rows)`);
  return { rows, bytes };
}
