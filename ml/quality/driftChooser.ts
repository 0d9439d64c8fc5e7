/** Evidently's chooser, kept apart from the tests: which registered drift test a column gets, by kind and size. */
import type { DriftColumnKind, DriftTestId } from './drift';

/** Evidently's bound: samples up to this size get a statistical test (a p-value), larger ones a distance. */
export const STAT_TEST_MAX_ROWS = 1000;

/** Fewer values than this are too few for any distribution check: a drop this small is not compared at all. */
export const MIN_DISTRIBUTION_ROWS = 30;

/** The distance each caller uses past `STAT_TEST_MAX_ROWS`: Evidently's by default; validation keeps its PSI. */
export type LargeSampleTests = Record<DriftColumnKind, DriftTestId>;
export const EVIDENTLY_LARGE_SAMPLE_TESTS: LargeSampleTests = {
  numeric: 'wasserstein_normed',
  categorical: 'jensen_shannon',
};
export const PSI_LARGE_SAMPLE_TESTS: LargeSampleTests = { numeric: 'psi', categorical: 'psi_categorical' };

/** Evidently's choice: KS (numbers) or chi² (categories) for at most 1,000 rows, else the caller's distance. */
export function chooseDriftTest(
  columns: DriftColumnKind,
  rows: number,
  large: LargeSampleTests = EVIDENTLY_LARGE_SAMPLE_TESTS,
): DriftTestId {
  if (rows <= STAT_TEST_MAX_ROWS) return columns === 'numeric' ? 'ks' : 'chi2';
  return large[columns];
}
