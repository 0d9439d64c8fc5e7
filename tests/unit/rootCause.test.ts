// rootCause(): the innermost cause, or the last link the `through` test lets the walk pass.
import { describe, expect, it } from 'vitest';
import { rootCause } from '../../config/errors';

describe('rootCause', () => {
  it('returns the innermost cause of a chain', () => {
    const root = new Error('connect ECONNREFUSED 127.0.0.1:9');
    expect(rootCause(new Error('fetch failed', { cause: new Error('socket', { cause: root }) }))).toBe(root);
  });

  it('returns the error itself when it has no cause, and non-errors as they are', () => {
    const lone = new Error('lone');
    expect(rootCause(lone)).toBe(lone);
    expect(rootCause('a string')).toBe('a string');
    expect(rootCause(undefined)).toBeUndefined();
  });

  it('stops at the first link `through` rejects', () => {
    const inner = new Error('inner');
    const middle = new Error('middle', { cause: inner });
    const outer = new Error('outer', { cause: middle });
    expect(rootCause(outer, (link) => link === outer)).toBe(middle);
  });

  it('ends on a cyclic chain', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect([a, b]).toContain(rootCause(a));
  });
});
