/**
 * Random input for the parsers that face the outside: the CSV reader, the serving request parsing and the user-SQL
 * check. Each may refuse with its own typed error, and nothing else: no crash, no hang (each target runs for a
 * bounded time, about 2 s).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CsvSyntaxError, parseCsv } from '../../ml/formats/csv';
import { singleStatement, UserSqlError } from '../../features/userSql';
import {
  checkInstanceValues,
  HttpError,
  instancesFromPredict,
  instancesFromV2,
  parseJsonBody,
} from '../../serving/app';
import { CsvInputError, readCsv } from '../../ml/formats/csvStream';

const TIME = { interruptAfterTimeLimit: 2_000, numRuns: 1_000_000, markInterruptAsFailure: false } as const;

/**
 * Bytes that matter to CSV (quotes, delimiters, line ends, a BOM, multi-byte and invalid UTF-8) mixed with any byte.
 */
const csvBytes = fc
  .array(
    fc.oneof(
      fc.constantFrom(...[0x22, 0x2c, 0x0a, 0x0d, 0x3b, 0x27, 0x61, 0x31, 0x20, 0x09, 0x7c].map((b) => [b])),
      fc.constantFrom([0xef, 0xbb, 0xbf], [0xc3, 0xa9], [0xf0, 0x9f, 0x98], [0xff], [0x80]),
      fc.integer({ min: 0, max: 255 }).map((b) => [b]),
    ),
    { maxLength: 400 },
  )
  .map((parts) => Buffer.from(parts.flat()));

const expectOnly = (error: unknown, ...types: (new (...args: never[]) => Error)[]) => {
  if (!types.some((type) => error instanceof type)) throw error;
};

describe('fuzz: parsers refuse with typed errors only, and never hang', () => {
  it('the CSV reader, however the bytes are chunked and whatever the limits', async () => {
    await fc.assert(
      fc.asyncProperty(
        csvBytes,
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 400 }),
        // undefined: detected from the first line.
        fc.constantFrom(',', ';', undefined),
        fc.constantFrom('"', "'"),
        async (bytes, chunk, maxFieldBytes, maxLineBytes, delimiter, quote) => {
          const pieces = Array.from({ length: Math.ceil(bytes.length / chunk) }, (_, i) =>
            bytes.subarray(i * chunk, (i + 1) * chunk),
          );
          try {
            await readCsv(
              pieces,
              { sourceName: 'fuzz.csv', delimiter, detectDelimiter: true, quote, maxFieldBytes, maxLineBytes },
              () => undefined,
              (record) => {
                record.fields();
                record.number(0);
              },
            );
          } catch (error) {
            expectOnly(error, CsvInputError);
          }
        },
      ),
      TIME,
    );
  });

  it('the CSV parser over text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        try {
          parseCsv(text, { maxFieldBytes: 50 });
        } catch (error) {
          expectOnly(error, CsvSyntaxError);
        }
      }),
      TIME,
    );
  });

  it('serving: any body under any content type, then the request shapes', () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.string({ unit: 'binary', maxLength: 300 }).map((s) => Buffer.from(s)),
      fc
        .jsonValue({ maxDepth: 40 })
        .map((v) =>
          Buffer.from(JSON.stringify({ model: 'm', instances: [v], inputs: [{ name: 'price', data: [v] }] })),
        ),
      fc
        .integer({ min: 1, max: 5_000 })
        .map((n) => Buffer.from(`{"instances":[{"price":${'['.repeat(n)}${']'.repeat(n)}}]}`)),
    );
    fc.assert(
      fc.property(
        body,
        fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/x+json; charset=utf-8'),
        (bytes, contentType) => {
          try {
            const parsed = parseJsonBody(contentType, bytes);
            for (const read of [instancesFromPredict, instancesFromV2]) {
              try {
                checkInstanceValues(
                  new Set(['price']),
                  read(parsed),
                  (row, key) => `instances[${row}]${key ? `.${key}` : ''}`,
                );
              } catch (error) {
                expectOnly(error, HttpError);
              }
            }
          } catch (error) {
            expectOnly(error, HttpError);
            expect((error as HttpError).status).toBeGreaterThanOrEqual(400);
            expect((error as HttpError).status).toBeLessThan(500);
          }
        },
      ),
      TIME,
    );
  });

  it('the user-SQL check', () => {
    const sql = fc
      .array(
        fc.oneof(
          fc.constantFrom(
            "'",
            '"',
            '$$',
            '$t$',
            ';',
            '(',
            ')',
            '--',
            '/*',
            '*/',
            '\n',
            "E'",
            '\\',
            ' SELECT ',
            ' pg_read_file(',
            'x',
          ),
          fc.string({ maxLength: 3 }),
        ),
        { maxLength: 40 },
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(sql, (text) => {
        try {
          const statement = singleStatement(text);
          expect(statement.length).toBeLessThanOrEqual(text.length);
        } catch (error) {
          expectOnly(error, UserSqlError);
        }
      }),
      TIME,
    );
  });
});
