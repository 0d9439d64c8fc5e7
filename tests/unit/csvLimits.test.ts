import { describe, expect, it } from 'vitest';
import { CSV_LIMITS, CsvLimitError, formatBytes, parseCsv } from '../../ml/formats/csv';
import { CsvInputError, readCsv, utf8Boundary } from '../../ml/formats/csvStream';

/** A CSV whose second line holds one huge field, yielded in 1 MiB chunks; counts what the reader pulled. */
function hugeField(megabytes: number, options: { quoted?: boolean; newlines?: boolean } = {}) {
  const pulled = { bytes: 0 };
  async function* chunks() {
    const head = Buffer.from(`id,price\n1,${options.quoted ? '"' : ''}`);
    pulled.bytes += head.length;
    yield head;
    const chunk = Buffer.alloc(1 << 20, 0x37);
    if (options.newlines) for (let i = 0; i < chunk.length; i += 100) chunk[i] = 10;
    for (let i = 0; i < megabytes; i++) {
      pulled.bytes += chunk.length;
      yield chunk;
    }
    yield Buffer.from(`${options.quoted ? '"' : ''}\n`);
  }
  return { chunks: chunks(), pulled };
}

const read = (input: Parameters<typeof readCsv>[0], options: Partial<Parameters<typeof readCsv>[1]> = {}) =>
  readCsv(
    input,
    { sourceName: 'prices.csv', ...options },
    () => undefined,
    () => undefined,
  );

describe('CSV size limits', () => {
  it('refuses a 200 MB field while streaming, naming file, line and column, after reading little more than the limit', async () => {
    const { chunks, pulled } = hugeField(200);
    const started = performance.now();
    await expect(read(chunks)).rejects.toThrow(
      new CsvInputError('prices.csv line 2, column price: field exceeds 4 MiB'),
    );
    expect(pulled.bytes).toBeLessThan(CSV_LIMITS.maxFieldBytes + (2 << 20));
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('refuses a huge quoted field spanning many lines at the line where it starts', async () => {
    const { chunks, pulled } = hugeField(50, { quoted: true, newlines: true });
    await expect(read(chunks)).rejects.toThrow('prices.csv line 2, column price: field exceeds 4 MiB');
    expect(pulled.bytes).toBeLessThan(CSV_LIMITS.maxFieldBytes + (2 << 20));
  });

  it('refuses a record longer than the line limit even when each field is small', async () => {
    const row = Array.from({ length: 2000 }, () => 'x'.repeat(9)).join(',');
    const text = `${Array.from({ length: 2000 }, (_, i) => `c${i}`).join(',')}\n${row}\n`;
    await expect(read([text], { maxLineBytes: 10_000, maxFieldBytes: 100 })).rejects.toThrow(
      'prices.csv line 1: line exceeds 10000 bytes',
    );
    await expect(read([text], { maxLineBytes: 30_000, maxFieldBytes: 100 })).resolves.toMatchObject({ rows: 1 });
  });

  it('takes configured limits, and accepts fields just under them', async () => {
    const field = 'y'.repeat(1024);
    await expect(read([`a,b\n1,${field}\n`], { maxFieldBytes: 1024 })).resolves.toMatchObject({ rows: 1 });
    await expect(read([`a,b\n1,${field}z\n`], { maxFieldBytes: 1024 })).rejects.toThrow(
      'prices.csv line 2, column b: field exceeds 1 KiB',
    );
    // A header field counts too; columns are then named by position.
    await expect(read([`a,${field}z\n1,2\n`], { maxFieldBytes: 1024 })).rejects.toThrow(
      'prices.csv line 1, column 2: field exceeds 1 KiB',
    );
  });

  it('applies the limits however the bytes are chunked, on the last line without a newline too', async () => {
    const text = `a,b\n1,2\n3,${'z'.repeat(300)}`;
    for (const size of [1, 7, 64, 1000]) {
      const pieces = Array.from({ length: Math.ceil(text.length / size) }, (_, i) =>
        text.slice(i * size, (i + 1) * size),
      );
      await expect(read(pieces, { maxFieldBytes: 256 })).rejects.toThrow(
        'prices.csv line 3, column b: field exceeds 256 bytes',
      );
      await expect(read(pieces, { maxFieldBytes: 300 })).resolves.toMatchObject({ rows: 2 });
    }
  });

  it('keeps multi-byte characters whole when a long partial line is parsed before its end', async () => {
    const value = 'é€𝄞'.repeat(100_000);
    const bytes = Buffer.from(`a,b\n1,${value}\n`);
    const pieces = Array.from({ length: Math.ceil(bytes.length / 65_537) }, (_, i) =>
      bytes.subarray(i * 65_537, (i + 1) * 65_537),
    );
    let seen = '';
    await readCsv(
      pieces,
      { sourceName: 't.csv', maxFieldBytes: 8 << 20 },
      () => undefined,
      (record) => {
        seen = record.text(1);
      },
    );
    expect(seen).toBe(value);
    expect(utf8Boundary(Buffer.from('ab€').subarray(0, 4))).toBe(2);
    expect(utf8Boundary(Buffer.from('ab€'))).toBe(5);
    expect(utf8Boundary(Buffer.from('ab'))).toBe(2);
  });

  it('throws a typed limit error from the parser itself', () => {
    expect(() => parseCsv('a\nxxxx\n', { maxFieldBytes: 3 })).toThrow(CsvLimitError);
    expect(formatBytes(8 << 20)).toBe('8 MiB');
  });

  it('stops at the next chunk once the read is aborted (an activity cancelled)', async () => {
    const controller = new AbortController();
    let pulled = 0;
    async function* chunks() {
      yield 'a,b\n';
      for (;;) {
        pulled++;
        if (pulled === 3) controller.abort(new Error('activity cancelled'));
        yield '1,2\n';
      }
    }
    await expect(read(chunks(), { signal: controller.signal })).rejects.toThrow('activity cancelled');
    expect(pulled).toBe(3);
  });
});
