import { describe, expect, it } from 'vitest';
import {
  chiSquareTest,
  columnDrift,
  dataQuality,
  jensenShannonDistance,
  regularizedGammaP,
  wassersteinNormed,
} from '../../ml/quality/monitoring';
import { ProfileBuilder } from '../../ml/profiling/profile';
import { normal, seededRandom } from '../../ml/random';

function profile(name: string, values: string[]) {
  const builder = new ProfileBuilder([name]);
  values.forEach((v) => builder.addRow([v]));
  return builder.finish()[0]!;
}
const random = seededRandom(5);
const gauss = (n: number, shift = 0) => Array.from({ length: n }, () => normal(random) + shift);

describe('monitoring tests', () => {
  it('computes chi² p-values, Jensen–Shannon and normed Wasserstein distances like the references', () => {
    expect(1 - regularizedGammaP(0.5, 3.841 / 2)).toBeCloseTo(0.05, 3); // chi² 3.841, 1 dof
    expect(1 - regularizedGammaP(2, 9.488 / 2)).toBeCloseTo(0.05, 3); // chi² 9.488, 4 dof
    expect(chiSquareTest([0.5, 0.5], [50, 50], 100).pValue).toBeCloseTo(1, 6);
    expect(jensenShannonDistance([0.5, 0.5], [0.5, 0.5])).toBe(0);
    expect(jensenShannonDistance([1, 0], [0, 1])).toBeCloseTo(1, 9);
    const reference = gauss(5000);
    expect(wassersteinNormed(reference, gauss(5000, 1), 1)).toBeCloseTo(1, 1);
    expect(wassersteinNormed(reference, gauss(5000), 1)).toBeLessThan(0.1);
  });

  it('picks Evidently’s test by reference size and flags only the shifted column', () => {
    const large = profile('x', gauss(5000).map(String));
    expect(columnDrift(large, gauss(300))).toMatchObject({ test: 'wasserstein_normed', drifted: false });
    expect(columnDrift(large, gauss(300, 0.5))).toMatchObject({ test: 'wasserstein_normed', drifted: true });
    const small = profile('x', gauss(400).map(String));
    expect(columnDrift(small, gauss(300))).toMatchObject({ test: 'ks', drifted: false });
    expect(columnDrift(small, gauss(300, 1))).toMatchObject({ test: 'ks', drifted: true });
    const stores = Array.from({ length: 3000 }, (_, i) => `S${i % 3}`);
    expect(
      columnDrift(
        profile('store', stores),
        Array.from({ length: 300 }, (_, i) => `S${i % 3}`),
      ),
    ).toMatchObject({ test: 'jensen_shannon', drifted: false });
    expect(
      columnDrift(
        profile('store', stores),
        Array.from({ length: 300 }, () => 'S0'),
      ),
    ).toMatchObject({ test: 'jensen_shannon', drifted: true });
    expect(
      columnDrift(
        profile('store', stores.slice(0, 600)),
        Array.from({ length: 300 }, () => 'S0'),
      ),
    ).toMatchObject({ test: 'chi2', drifted: true });
    expect(columnDrift(large, [null, null])).toBeUndefined();
  });

  it('reports a null rate above training’s and categories training never saw', () => {
    const stores = profile(
      'store',
      Array.from({ length: 3000 }, (_, i) => `S${i % 3}`),
    );
    expect(
      dataQuality(
        stores,
        Array.from({ length: 100 }, () => null),
      ),
    ).toEqual([expect.objectContaining({ check: 'null_rate', value: 1, reference: 0 })]);
    const issues = dataQuality(
      stores,
      Array.from({ length: 100 }, (_, i) => (i < 20 ? 'S99' : 'S1')),
    );
    expect(issues).toEqual([expect.objectContaining({ check: 'unseen_categories', value: 0.2 })]);
    expect(issues[0]!.message).toContain('"S99"');
    expect(dataQuality(stores, [])).toEqual([]);
  });
});
