/**
 * The one string hash: pinned values, since a changed hash would move keys across a running A/B split and change seeds.
 */
import { describe, expect, it } from 'vitest';
import { fmix32, fnv1a, unitHash } from '../../ml/hash';
import { seedFromString } from '../../ml/random';

describe('ml/hash', () => {
  it('keeps FNV-1a, its murmur3 finish and the [0, 1) share stable', () => {
    expect(['', 'a', 'abc', 'user-123'].map(fnv1a)).toEqual([2166136261, 3826002220, 440920331, 2358496403]);
    expect(fmix32(0)).toBe(0);
    expect(unitHash('user-123')).toBeCloseTo(0.7068206975236535, 15);
    expect(seedFromString('abc')).toBe(fnv1a('abc'));
  });

  it('spreads near keys evenly over [0, 1)', () => {
    const shares = Array.from({ length: 10_000 }, (_, i) => unitHash(`rollout-1:customer-${i}`));
    expect(shares.every((s) => s >= 0 && s < 1)).toBe(true);
    const belowHalf = shares.filter((s) => s < 0.5).length / shares.length;
    expect(belowHalf).toBeGreaterThan(0.48);
    expect(belowHalf).toBeLessThan(0.52);
  });
});
