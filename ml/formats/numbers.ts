/** How Flywheel reads a cell: missing-value tokens, strict numbers, booleans. One set of rules for every format. */

const NULL_TOKENS = new Set(['', 'NA', 'N/A', 'null', 'NULL']);
const NON_FINITE_TOKENS = new Set([
  'NaN',
  'nan',
  'NAN',
  'Infinity',
  '-Infinity',
  '+Infinity',
  'inf',
  '-inf',
  '+inf',
  'Inf',
  '-Inf',
]);

/** True for the tokens Flywheel reads as a missing value. */
export function isNullToken(raw: string): boolean {
  return NULL_TOKENS.has(raw);
}

/** True for NaN / Infinity spellings: numeric-looking, but never a valid value. */
export function isNonFiniteToken(raw: string): boolean {
  return raw.length >= 3 && raw.length <= 16 && NON_FINITE_TOKENS.has(raw.trim());
}

/** Parses a numeric cell strictly: finite decimal/scientific numbers only (no NaN, Infinity, hex, blanks). */
export function parseNumber(raw: string): number | undefined {
  if (!/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(raw)) return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

export function parseBoolean(raw: string): boolean | undefined {
  if (raw.length < 4 || raw.length > 16) return undefined;
  const lower = raw.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  return undefined;
}
