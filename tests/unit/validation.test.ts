import { describe, expect, it } from 'vitest';
import { ContractChecker, type DatasetContract } from '../../ml/validation';

const contract: DatasetContract = {
  columns: {
    store_id: { type: 'string', nullable: false },
    price: { type: 'number', nullable: false, min: 0, max: 100 },
    promo: { type: 'integer', nullable: false, allowed: ['0', '1'] },
  },
  allowExtraColumns: false,
  minRows: 1,
};

function check(header: string[], rows: string[][]) {
  const checker = new ContractChecker(header, contract);
  rows.forEach((row, i) => checker.checkRow(row, i + 2));
  return checker.finish();
}

describe('contract checker', () => {
  it('passes data that keeps its contract', () => {
    expect(check(['store_id', 'price', 'promo'], [['S1', '9.5', '0'], ['S2', '12', '1']]).passed).toBe(true);
  });

  it('names the column, the check and example lines when a feature is rescaled (price in cents)', () => {
    const report = check(['store_id', 'price', 'promo'], [['S1', '950', '0'], ['S2', '1200', '1']]);
    expect(report.passed).toBe(false);
    const issue = report.issues.find((i) => i.column === 'price')!;
    expect(issue.check).toBe('max');
    expect(issue.failingRows).toBe(2);
    expect(issue.examples[0]).toEqual({ line: 2, value: '950' });
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
    const report = check(['store_id', 'price', 'promo'], [['S1', 'cheap', '0'], ['', '3', '2']]);
    expect(report.issues.map((i) => `${i.column}:${i.check}`).sort()).toEqual(['price:type', 'promo:allowed_values', 'store_id:not_null']);
  });

  it('fails a dataset with fewer rows than required', () => {
    expect(check(['store_id', 'price', 'promo'], []).issues[0]!.check).toBe('row_count');
  });
});
