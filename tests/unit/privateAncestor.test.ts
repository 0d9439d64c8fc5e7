/** Run as root, the embedded Postgres runs as `postgres`: a private directory above the checkout is named. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { privateAncestor } from '../../scripts/postgres';

const base = mkdtempSync(join(tmpdir(), 'fw-private-')); // mkdtemp makes it 700
afterAll(() => rmSync(base, { recursive: true, force: true }));

it('names the nearest directory other users cannot enter, and none when every one above is open', () => {
  const checkout = join(base, 'checkout');
  mkdirSync(join(checkout, 'node_modules', 'bin'), { recursive: true, mode: 0o755 });
  const initdb = join(checkout, 'node_modules', 'bin', 'initdb');
  expect(privateAncestor(initdb)).toBe(base);
  chmodSync(checkout, 0o700);
  expect(privateAncestor(initdb)).toBe(checkout);
  // Directories that do not exist yet (a data dir still to be made) are skipped.
  expect(privateAncestor(join(checkout, 'not', 'yet', 'here'))).toBe(checkout);
  chmodSync(checkout, 0o755);
  chmodSync(base, 0o755);
  // What is left is above the temporary directory: usually nothing (/tmp and / are open).
  expect(privateAncestor(initdb)).toBe(privateAncestor(join(base, 'x')));
});
