import { describe, expect, it } from 'vitest';
import { ArrayRecord } from '../../ml/formats/csv';
import { ProfileBuilder } from '../../ml/profiling/profile';
import { ContractChecker, inferContract, type DatasetContract } from '../../ml/quality/validation';

const contract: DatasetContract = {
  columns: {
    store_id: { type: 'string', nullable: false },
    price: { type: 'number', nullable: false, min: 0, max: 100 },
    promo: { type: 'integer', nullable: false, allowed: ['0', '1'] },
  },
  allowExtraColumns: false,
  minRows: 1,
};

function check(header: string[], rows: string[][], rules: DatasetContract = contract) {
  const checker = new ContractChecker(header, rules);
  rows.forEach((row, i) => checker.checkRow(new ArrayRecord(row), i + 2));
  return checker.finish();
}

function profileOf(header: string[], rows: string[][]) {
  const builder = new ProfileBuilder(header);
  rows.forEach((row) => builder.addRow(row));
  return builder.finish();
}

describe('contract checker', () => {
  it('passes data that keeps its contract', () => {
    expect(
      check(
        ['store_id', 'price', 'promo'],
        [
          ['S1', '9.5', '0'],
          ['S2', '12', '1'],
        ],
      ).passed,
    ).toBe(true);
  });

  it('names the column, the check and example lines when a feature is rescaled (price in cents)', () => {
    const report = check(
      ['store_id', 'price', 'promo'],
      [
        ['S1', '950', '0'],
        ['S2', '1200', '1'],
      ],
    );
    expect(report.passed).toBe(false);
    const issue = report.issues.find((i) => i.column === 'price')!;
    expect(issue.check).toBe('max');
    expect(issue.failingRows).toBe(2);
    expect(issue.examples[0]).toEqual({ row: 1, line: 2, value: '950' });
    expect(issue.message).toContain('column "price"');
  });

  it('spots a renamed column and suggests the new name', () => {
    const report = check(['store_id', 'Price', 'promo'], [['S1', '9.5', '0']]);
    const missing = report.issues.find((i) => i.check === 'missing_column')!;
    expect(missing.column).toBe('price');
    expect(missing.message).toContain('renamed?');
    expect(report.issues.some((i) => i.check === 'unexpected_column' && i.column === 'Price')).toBe(true);
  });

  it('reports a type change, nulls and values outside the allowed set', () => {
    const report = check(
      ['store_id', 'price', 'promo'],
      [
        ['S1', 'cheap', '0'],
        ['', '3', '2'],
      ],
    );
    expect(report.issues.map((i) => `${i.column}:${i.check}`).sort()).toEqual([
      'price:type',
      'promo:allowed_values',
      'store_id:not_null',
    ]);
  });

  it('fails a dataset with fewer rows than required', () => {
    expect(check(['store_id', 'price', 'promo'], []).issues[0]!.check).toBe('row_count');
  });
  it('lets a "mostly" share of rows fail value checks, and no more', () => {
    const rows = Array.from({ length: 100 }, (_, i) => ['S1', i < 3 ? '500' : '5', '0']);
    const lenient: DatasetContract = {
      ...contract,
      columns: { ...contract.columns, price: { ...contract.columns.price!, mostly: 0.95 } },
    };
    expect(check(['store_id', 'price', 'promo'], rows, lenient).passed).toBe(true);
    const strict: DatasetContract = {
      ...contract,
      columns: { ...contract.columns, price: { ...contract.columns.price!, mostly: 0.99 } },
    };
    expect(check(['store_id', 'price', 'promo'], rows, strict).issues[0]!.message).toContain('"mostly" allows');
  });

  it('finds repeated values of a unique column, and downgrades a warning column', () => {
    const rules: DatasetContract = {
      columns: {
        id: { type: 'integer', nullable: false, unique: true },
        note: { type: 'integer', nullable: true, severity: 'warning' },
      },
      allowExtraColumns: false,
      minRows: 1,
      maxRows: 2,
    };
    const report = check(
      ['id', 'note'],
      [
        ['1', 'x'],
        ['2', ''],
        ['1', ''],
      ],
      rules,
    );
    expect(report.issues.map((i) => `${i.severity}:${i.column}:${i.check}`).sort()).toEqual([
      'error:*:row_count',
      'error:id:unique',
      'warning:note:type',
    ]);
    expect(report.issues.find((i) => i.check === 'unique')!.examples[0]).toEqual({ row: 3, line: 4, value: '1' });
  });

  it('rejects NaN and Infinity in a numeric column', () => {
    const report = check(
      ['store_id', 'price', 'promo'],
      [
        ['S1', 'NaN', '0'],
        ['S1', 'Infinity', '0'],
      ],
    );
    expect(report.issues[0]).toMatchObject({ column: 'price', check: 'type', failingRows: 2 });
  });

  it('flags a column whose distribution moved from the reference (price ×100) and not one that kept it', () => {
    const reference = profileOf(
      ['price', 'store_id'],
      Array.from({ length: 2000 }, (_, i) => [String(5 + (i % 50) / 10), `S${i % 4}`]),
    );
    const rows = Array.from({ length: 2000 }, (_, i) => [String((5 + (i % 50) / 10) * 100), `S${i % 4}`]);
    const checker = new ContractChecker(['price', 'store_id'], inferContract(reference), {
      rule: { columns: ['price', 'store_id'], psiThreshold: 0.25, severity: 'error' },
      reference: { id: 'd@ref', profile: reference },
    });
    rows.forEach((row, i) => checker.checkRow(new ArrayRecord(row), i + 2));
    const report = checker.finish();
    expect(report.passed).toBe(false);
    const drift = report.issues.find((i) => i.check === 'drift')!;
    expect(drift.column).toBe('price');
    expect(drift.message).toMatch(/×100/);
    expect(report.drift!.results.find((r) => r.column === 'store_id')!.drifted).toBe(false);
  });

  it('infers types, nullability and the allowed set of a low-cardinality column (not of dates)', () => {
    const rows = Array.from({ length: 50 }, (_, i) => [
      i === 3 ? '' : String(i),
      `c${i % 3}`,
      i % 2 ? 'true' : 'false',
      `2026-01-0${1 + (i % 3)}`,
    ]);
    expect(inferContract(profileOf(['n', 'c', 'b', 'd'], rows)).columns).toEqual({
      n: { type: 'integer', nullable: true },
      c: { type: 'string', nullable: false, allowed: ['c0', 'c1', 'c2'] },
      b: { type: 'boolean', nullable: false },
      d: { type: 'string', nullable: false },
    });
  });
});
