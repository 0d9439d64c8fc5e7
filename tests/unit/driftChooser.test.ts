import { describe, expect, it } from 'vitest';
import { ArrayRecord } from '../../ml/formats/csv';
import {
  chiSquareTest,
  DRIFT_TESTS,
  isDrift,
  jensenShannonDistance,
  ksTest,
  psiFromCounts,
  wassersteinNormed,
  type DriftTestId,
} from '../../ml/quality/drift';
import {
  chooseDriftTest,
  MIN_DISTRIBUTION_ROWS,
  PSI_LARGE_SAMPLE_TESTS,
  STAT_TEST_MAX_ROWS,
} from '../../ml/quality/driftChooser';
import { ProfileBuilder } from '../../ml/profiling/profile';
import { normal, seededRandom } from '../../ml/random';
import { ContractChecker, inferContract, type DatasetContract, type DriftRule } from '../../ml/quality/validation';
import { readCsv } from '../../ml/formats/csvStream';

const random = seededRandom(3);
const HEADER = ['store_id', 'price', 'promo'];
/** A row of the reference distribution (or shifted): a store, a price around 10, a 12 % promotion flag. */
const row = (shift = 0) => [
  `S${Math.floor(random() * 4)}`,
  (10 + shift + 2 * normal(random)).toFixed(2),
  random() < 0.12 ? '1' : '0',
];
const rows = (n: number, shift = 0) => Array.from({ length: n }, () => row(shift));

function profileOf(data: string[][]) {
  const builder = new ProfileBuilder(HEADER);
  data.forEach((r) => builder.addRow(r));
  return builder.finish();
}

const reference = profileOf(rows(10_000));
const contract: DatasetContract = inferContract(reference);
const rule: DriftRule = { columns: [], psiThreshold: 0.25, severity: 'error' };

function validate(data: string[][], header = HEADER) {
  const checker = new ContractChecker(header, contract, { rule, reference: { id: 'd@ref', profile: reference } });
  data.forEach((r, i) => checker.checkRow(new ArrayRecord(r), i + 2));
  return checker.finish();
}

/** One known case per registered test: the guard that fails when a test is added without one. */
const CASES: Record<
  DriftTestId,
  () => { same: { statistic: number; pValue?: number }; shifted: { statistic: number; pValue?: number } }
> = {
  ks: () => ({ same: ksTest(gauss(300), gauss(300)), shifted: ksTest(gauss(300), gauss(300, 1)) }),
  chi2: () => ({ same: chiSquareTest([0.5, 0.5], [50, 50], 100), shifted: chiSquareTest([0.5, 0.5], [90, 10], 100) }),
  wasserstein_normed: () => ({
    same: { statistic: wassersteinNormed(gauss(5000), gauss(5000), 1) },
    shifted: { statistic: wassersteinNormed(gauss(5000), gauss(5000, 1), 1) },
  }),
  jensen_shannon: () => ({
    same: { statistic: jensenShannonDistance([0.5, 0.5], [0.5, 0.5]) },
    shifted: { statistic: jensenShannonDistance([0.5, 0.5], [0.95, 0.05]) },
  }),
  psi: () => ({
    same: { statistic: psiFromCounts([0.5, 0.5], [500, 500]) },
    shifted: { statistic: psiFromCounts([0.5, 0.5], [950, 50]) },
  }),
  psi_categorical: () => ({
    same: { statistic: psiFromCounts([0.25, 0.75], [25, 75]) },
    shifted: { statistic: psiFromCounts([0.25, 0.75], [90, 10]) },
  }),
};
const gauss = (n: number, shift = 0) => Array.from({ length: n }, () => normal(random) + shift);

describe('drift test registry and chooser', () => {
  it('has a known case for every registered test, judged by its default threshold', () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(DRIFT_TESTS).sort());
    for (const [id, make] of Object.entries(CASES) as [DriftTestId, (typeof CASES)[DriftTestId]][]) {
      const { same, shifted } = make();
      expect([id, isDrift(id, same)]).toEqual([id, false]);
      expect([id, isDrift(id, shifted)]).toEqual([id, true]);
    }
  });

  it('picks a p-value test up to 1,000 rows and the caller’s distance above, by column type', () => {
    expect(chooseDriftTest('numeric', 20)).toBe('ks');
    expect(chooseDriftTest('numeric', STAT_TEST_MAX_ROWS)).toBe('ks');
    expect(chooseDriftTest('categorical', 500)).toBe('chi2');
    expect(chooseDriftTest('numeric', STAT_TEST_MAX_ROWS + 1)).toBe('wasserstein_normed');
    expect(chooseDriftTest('categorical', 50_000)).toBe('jensen_shannon');
    expect(chooseDriftTest('numeric', 50_000, PSI_LARGE_SAMPLE_TESTS)).toBe('psi');
  });
});

describe('validation’s distribution check', () => {
  it('passes a 20-row drop from the reference distribution with one warning, BOM and CRLF or no final newline alike', async () => {
    const drop = rows(20);
    const body = drop.map((r) => r.join(',')).join('\r\n');
    for (const file of [
      `\uFEFF${HEADER.join(',')}\r\n${body}\r\n`,
      `${HEADER.join(',')}\n${drop.map((r) => r.join(',')).join('\n')}`,
    ]) {
      let checker: ContractChecker | undefined;
      await readCsv(
        [Buffer.from(file)],
        { sourceName: 'drop.csv' },
        (header) =>
          (checker = new ContractChecker(header, contract, { rule, reference: { id: 'd@ref', profile: reference } })),
        (record) => checker!.checkRow(record, record.line),
      );
      const report = checker!.finish();
      expect(report.passed).toBe(true);
      expect(report.rowCount).toBe(20);
      expect(report.issues).toEqual([
        expect.objectContaining({
          severity: 'warning',
          check: 'drift',
          message: expect.stringContaining(`too few rows (20) for a distribution check`),
        }),
      ]);
    }
  });

  it('judges a small drop by KS / chi² and a large one by PSI, and flags only a real shift', () => {
    expect(MIN_DISTRIBUTION_ROWS).toBe(30);
    const small = validate(rows(200));
    expect(small.passed).toBe(true);
    expect(small.drift!.results.map((r) => `${r.column}:${r.method}`).sort()).toEqual([
      'price:ks',
      'promo:ks',
      'store_id:chi2',
    ]);
    const shifted = validate(rows(200, 3));
    expect(shifted.passed).toBe(false);
    const issue = shifted.issues.find((i) => i.check === 'drift')!;
    expect(issue.column).toBe('price');
    expect(issue.message).toMatch(
      /^column "price": distribution shifted from reference d@ref: KS D=[\d.]+, p=[\d.e+-]+ < 0\.05 \(200 rows\); PSI [\d.]+ ≥ 0\.25; mean [\d.]+ → [\d.]+/,
    );
    const large = validate(rows(5000));
    expect(large.passed).toBe(true);
    expect(large.drift!.results.map((r) => r.method).sort()).toEqual(['psi', 'psi', 'psi_categorical']);
  });

  it('reports a header far from the contract as one error, with counts and the first names', () => {
    const header = Array.from({ length: 10_000 }, (_, i) => `c${i}`);
    const report = validate([header.map(() => '1')], header);
    const errors = report.issues.filter((i) => i.severity === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ check: 'header', column: '*' });
    expect(errors[0]!.message).toBe(
      'header does not match the contract: 10,000 unexpected columns (c0, c1, c2, c3, c4, … (9,995 more)), 3 missing: store_id, price, promo',
    );
  });
});
