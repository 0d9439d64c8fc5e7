import { describe, expect, it } from 'vitest';
import {
  CanonicalCsvWriter,
  CsvParser,
  CsvSyntaxError,
  detectDelimiter,
  parseCsv,
  type CsvRecordView,
} from '../../ml/formats/csv';
import { readCsv } from '../../ml/formats/csvStream';

function chunked(text: string, size: number): { fields: string[]; line: number }[] {
  const parser = new CsvParser();
  const out: { fields: string[]; line: number }[] = [];
  const collect = (r: CsvRecordView) => out.push({ fields: r.fields(), line: r.line });
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) parser.push(bytes.subarray(i, i + size), collect);
  parser.end(collect);
  return out;
}

describe('CSV parser', () => {
  it('parses quoted fields with delimiters, escaped quotes and newlines', () => {
    const records = parseCsv('a,b\n"x, y","say ""hi"""\n"multi\nline",2\n');
    expect(records.map((r) => r.fields)).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"'],
      ['multi\nline', '2'],
    ]);
    expect(records[2]!.line).toBe(3);
  });

  it('gives the same records however the bytes are split into chunks', () => {
    const text = 'id,name\r\n1,"a ""quoted"" name"\r\n\r\n2,plain é\r\n3,"x,y"';
    const whole = parseCsv(text);
    expect(whole.map((r) => r.fields)).toEqual([
      ['id', 'name'],
      ['1', 'a "quoted" name'],
      ['2', 'plain é'],
      ['3', 'x,y'],
    ]);
    expect(whole.map((r) => r.line)).toEqual([1, 2, 4, 5]);
    for (let size = 1; size < 9; size++) expect(chunked(text, size)).toEqual(whole);
  });

  it('reports an unterminated quote with the line where the record starts', () => {
    expect(() => parseCsv('a,b\n1,2\n3,"open\n')).toThrowError(/line 3: unterminated quoted field/);
  });

  it('rejects a quote inside an unquoted field', () => {
    expect(() => parseCsv('a,b\n1,2"x\n')).toThrowError(CsvSyntaxError);
  });

  it('honours another delimiter and quote character', () => {
    expect(parseCsv("a;b\n1;'x;y'", { delimiter: ';', quote: "'" }).map((r) => r.fields)).toEqual([
      ['a', 'b'],
      ['1', 'x;y'],
    ]);
  });

  it('reads numbers from bytes exactly as Number() does, and nulls by token', () => {
    const values = [
      '0',
      '-1.5',
      '3.14159',
      '1e3',
      ' 7 ',
      '0.1',
      '123456789012345',
      '1234567890123456789',
      'NaN',
      'Infinity',
      'abc',
      '',
      'NA',
      '.5',
      '-0.000123',
    ];
    const expected = [
      0,
      -1.5,
      3.14159,
      1000,
      7,
      0.1,
      123456789012345,
      1.2345678901234568e18,
      NaN,
      NaN,
      NaN,
      NaN,
      NaN,
      0.5,
      -0.000123,
    ];
    let seen = 0;
    const parser = new CsvParser();
    parser.push(Buffer.from(values.join(',') + '\n'), (r) => {
      seen++;
      for (let i = 0; i < values.length; i++) expect([values[i], r.number(i)]).toEqual([values[i], expected[i]]);
      expect([r.isNull(11), r.isNull(12), r.isNull(10)]).toEqual([true, true, false]);
    });
    expect(seen).toBe(1);
  });
});

async function canonical(
  input: string | Buffer,
  options: { delimiter?: string; quote?: string; detectDelimiter?: boolean } = {},
): Promise<string> {
  const out: Buffer[] = [];
  const writer = new CanonicalCsvWriter((chunk) => out.push(chunk));
  await readCsv(
    [Buffer.from(input)],
    { ...options, sourceName: 't.csv' },
    (h) => writer.header(h),
    (r) => writer.record(r),
  );
  writer.flush();
  return Buffer.concat(out).toString();
}

describe('canonical CSV', () => {
  it('is the same text for the same table in other spellings', async () => {
    const plain = 'id,name\n1,a\n2,"b,c"\n3,"say ""hi"""\n';
    expect(await canonical(plain)).toBe(plain);
    expect(await canonical('\uFEFFid,name\r\n"1","a"\r\n2,"b,c"\r\n3,"say ""hi"""')).toBe(plain);
    expect(await canonical("id;name\n1;a\n2;'b,c'\n3;'say \"hi\"'\n", { delimiter: ';', quote: "'" })).toBe(plain);
  });

  it('takes column names for a file without a header', async () => {
    const out: Buffer[] = [];
    const writer = new CanonicalCsvWriter((chunk) => out.push(chunk));
    const { rows, header } = await readCsv(
      [Buffer.from('1,a\n2,b\n')],
      { sourceName: 't.csv', header: false, columns: ['id', 'name'] },
      (h) => writer.header(h),
      (r) => writer.record(r),
    );
    writer.flush();
    expect({ rows, header, text: Buffer.concat(out).toString() }).toEqual({
      rows: 2,
      header: ['id', 'name'],
      text: 'id,name\n1,a\n2,b\n',
    });
    await expect(
      readCsv(
        [Buffer.from('1,a\n')],
        { sourceName: 't.csv', header: false },
        () => undefined,
        () => undefined,
      ),
    ).rejects.toThrow('needs column names');
  });

  it('names the line of a ragged row and of invalid UTF-8', async () => {
    await expect(canonical('a,b\n1,2\n3\n')).rejects.toThrow('t.csv: line 3 has 1 fields, the header has 2');
    const bad = Buffer.concat([Buffer.from('a,b\n1,2\n3,'), Buffer.from([0xc3, 0x28]), Buffer.from('\n4,5\n')]);
    await expect(canonical(bad)).rejects.toThrow('t.csv: line 3 is not valid UTF-8');
  });

  it('rejects duplicate and blank column names, and an empty file', async () => {
    await expect(canonical('a,b,a\n1,2,3\n')).rejects.toThrow('duplicate column name "a"');
    await expect(canonical('a,,c\n1,2,3\n')).rejects.toThrow('header column 2 has no name');
    await expect(canonical('')).rejects.toThrow('t.csv: the file is empty');
  });
});

describe('the delimiter of a CSV that names none', () => {
  it('is the candidate the first line holds most of outside quotes, a comma on a tie or when it holds none', () => {
    expect(detectDelimiter('id,price,label')).toBe(',');
    expect(detectDelimiter('id;price;label')).toBe(';');
    expect(detectDelimiter('id\tprice\tlabel')).toBe('\t');
    expect(detectDelimiter('id|price|label')).toBe('|');
    expect(detectDelimiter('1;3,5;a')).toBe(';'); // decimal commas in a semicolon file without a header
    expect(detectDelimiter('"a;b;c",d')).toBe(','); // quoted delimiters do not count
    expect(detectDelimiter("'a;b;c',d", "'")).toBe(',');
    expect(detectDelimiter('a,b;c')).toBe(',');
    expect(detectDelimiter('label')).toBe(',');
    expect(detectDelimiter('')).toBe(',');
  });

  it('is read from the first line when asked, and the table comes out as canonical CSV', async () => {
    const expected = 'id,price,label\n1,"3,5",a\n2,"4,0","multi\nline"\n3,,b\n';
    const semicolons = '\uFEFFid;price;label\r\n1;3,5;a\r\n2;"4,0";"multi\nline"\r\n3;;b\r\n';
    expect(await canonical(semicolons, { detectDelimiter: true })).toBe(expected);
    expect(await canonical(semicolons.replaceAll(';', '\t'), { detectDelimiter: true })).toBe(expected);
    // One line and no line feed: what is left at the end is sniffed too.
    expect(await canonical('x|y', { detectDelimiter: true })).toBe('x,y\n');
    // A configured delimiter is never second-guessed, and without the option a comma is assumed.
    expect(await canonical('a;b\n1;2\n', { delimiter: ',', detectDelimiter: true })).toBe('a;b\n1;2\n');
    expect(await canonical('a;b\n1;2\n')).toBe('a;b\n1;2\n');
    const { delimiter, header, rows } = await readCsv(
      [Buffer.from('x|y\n'), Buffer.from('1|2\n3|4')],
      { sourceName: 'p.csv', detectDelimiter: true },
      () => undefined,
      () => undefined,
    );
    expect({ delimiter, header, rows }).toEqual({ delimiter: '|', header: ['x', 'y'], rows: 2 });
  });
});
