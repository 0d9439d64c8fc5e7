import { describe, expect, it } from 'vitest';
import { CsvParser, CsvSyntaxError, parseCsv } from '../../ml/csv';

describe('CSV parser', () => {
  it('parses quoted fields with delimiters, escaped quotes and newlines', () => {
    const records = parseCsv('a,b\n"x, y","say ""hi"""\n"multi\nline",2\n');
    expect(records.map((r) => r.fields)).toEqual([['a', 'b'], ['x, y', 'say "hi"'], ['multi\nline', '2']]);
    expect(records[2]!.line).toBe(3);
  });

  it('gives the same records however the text is split into chunks', () => {
    const text = 'id,name\r\n1,"a ""quoted"" name"\r\n2,plain\r\n3,"x,y"';
    const whole = parseCsv(text).map((r) => r.fields);
    for (let size = 1; size < 8; size++) {
      const parser = new CsvParser();
      const out: ReturnType<typeof parseCsv> = [];
      for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size), out);
      parser.end(out);
      expect(out.map((r) => r.fields)).toEqual(whole);
    }
  });

  it('reports an unterminated quote with the line where the record starts', () => {
    expect(() => parseCsv('a,b\n1,2\n3,"open\n')).toThrowError(/line 3: unterminated quoted field/);
  });

  it('rejects a quote inside an unquoted field', () => {
    expect(() => parseCsv('a,b\n1,2"x\n')).toThrowError(CsvSyntaxError);
  });

  it('honours another delimiter', () => {
    expect(parseCsv('a;b\n1;2', { delimiter: ';' }).map((r) => r.fields)).toEqual([['a', 'b'], ['1', '2']]);
  });
});
