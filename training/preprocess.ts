/**
 * The preprocessing transform, fitted on the training split only and saved with the model,
 * so serving applies exactly the transform training saw: standardise numerics (mean-impute nulls),
 * one-hot categoricals (unknown or null → all zeros), scale a regression target.
 */
import { isNullToken, parseNumber } from '../ml/profiling/profile';

export interface Preprocessor {
  numeric: { name: string; mean: number; std: number }[];
  categorical: { name: string; vocabulary: string[] }[];
  target:
    | { task: 'regression'; name: string; mean: number; std: number }
    | { task: 'classification'; name: string; classes: string[] };
}

export interface FeatureSpec {
  task: 'regression' | 'classification';
  target: string;
  numeric: string[];
  categorical: string[];
}

/** A table as columns of raw strings, the way CSV arrives. */
export type RawColumns = Record<string, string[]>;

export class FeatureError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'FeatureError';
  }
}

const MAX_VOCABULARY = 1_000;

export function fitPreprocessor(columns: RawColumns, rows: ArrayLike<number>, spec: FeatureSpec): Preprocessor {
  const numeric = spec.numeric.map((name) => {
    const values = columns[name]!;
    let n = 0,
      mean = 0,
      m2 = 0;
    for (let i = 0; i < rows.length; i++) {
      const value = parseNumber(values[rows[i]!]!);
      if (value === undefined) continue;
      n++;
      const delta = value - mean;
      mean += delta / n;
      m2 += delta * (value - mean);
    }
    const std = n > 1 ? Math.sqrt(m2 / (n - 1)) : 1;
    return { name, mean, std: std > 1e-12 ? std : 1 };
  });
  const categorical = spec.categorical.map((name) => {
    const counts = new Map<string, number>();
    const values = columns[name]!;
    for (let i = 0; i < rows.length; i++) {
      const raw = values[rows[i]!]!;
      if (!isNullToken(raw)) counts.set(raw, (counts.get(raw) ?? 0) + 1);
    }
    const vocabulary = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, MAX_VOCABULARY)
      .map(([v]) => v)
      .sort();
    return { name, vocabulary };
  });
  const targetValues = columns[spec.target]!;
  let target: Preprocessor['target'];
  if (spec.task === 'regression') {
    let n = 0,
      mean = 0,
      m2 = 0;
    for (let i = 0; i < rows.length; i++) {
      const value = parseNumber(targetValues[rows[i]!]!);
      if (value === undefined)
        throw new FeatureError(
          `target column "${spec.target}" has a non-numeric value "${targetValues[rows[i]!]}" at data row ${rows[i]! + 1}`,
          spec.target,
        );
      n++;
      const delta = value - mean;
      mean += delta / n;
      m2 += delta * (value - mean);
    }
    const std = n > 1 ? Math.sqrt(m2 / (n - 1)) : 1;
    target = { task: 'regression', name: spec.target, mean, std: std > 1e-12 ? std : 1 };
  } else {
    const classes = new Set<string>();
    for (let i = 0; i < rows.length; i++) classes.add(targetValues[rows[i]!]!);
    if (classes.size < 2)
      throw new FeatureError(
        `target column "${spec.target}" has ${classes.size} class(es) in the training split; classification needs at least 2`,
        spec.target,
      );
    target = { task: 'classification', name: spec.target, classes: [...classes].sort() };
  }
  return { numeric, categorical, target };
}

export function featureWidth(pre: Preprocessor): number {
  return pre.numeric.length + pre.categorical.reduce((sum, c) => sum + c.vocabulary.length, 0);
}

/** Encodes chosen rows of a raw table into a dense row-major feature matrix. */
export function encodeColumns(pre: Preprocessor, columns: RawColumns, rows: ArrayLike<number>): Float32Array {
  const width = featureWidth(pre);
  const out = new Float32Array(rows.length * width);
  // Column by column: one column's values and lookup table stay hot while its cells are written.
  let offset = 0;
  for (const { name, mean, std } of pre.numeric) {
    const values = columns[name]!;
    for (let r = 0; r < rows.length; r++) {
      const value = parseNumber(values[rows[r]!]!);
      out[r * width + offset] = value === undefined ? 0 : (value - mean) / std;
    }
    offset++;
  }
  for (const c of pre.categorical) {
    const lookup = new Map(c.vocabulary.map((v, i) => [v, i]));
    const values = columns[c.name]!;
    for (let r = 0; r < rows.length; r++) {
      const index = lookup.get(values[rows[r]!]!);
      if (index !== undefined) out[r * width + offset + index] = 1;
    }
    offset += c.vocabulary.length;
  }
  return out;
}

/** Encodes the training target: scaled values for regression, class indices for classification. */
export function encodeTarget(pre: Preprocessor, columns: RawColumns, rows: ArrayLike<number>): Float32Array {
  const values = columns[pre.target.name]!;
  const out = new Float32Array(rows.length);
  const target = pre.target;
  if (target.task === 'regression') {
    for (let r = 0; r < rows.length; r++)
      out[r] = ((parseNumber(values[rows[r]!]!) ?? target.mean) - target.mean) / target.std;
  } else {
    const index = new Map(target.classes.map((c, i) => [c, i]));
    for (let r = 0; r < rows.length; r++) out[r] = index.get(values[rows[r]!]!) ?? -1;
  }
  return out;
}

/**
 * Encodes one serving request, validating it against the model's inputs: every feature must be present,
 * numerics finite; unknown fields are rejected so a renamed upstream field can't pass silently.
 */
export function encodeInstance(pre: Preprocessor, instance: Record<string, unknown>, where = 'instance'): Float32Array {
  if (instance === null || typeof instance !== 'object' || Array.isArray(instance))
    throw new FeatureError(`${where} must be a JSON object of feature values`, where);
  const known = new Set([...pre.numeric.map((n) => n.name), ...pre.categorical.map((c) => c.name), pre.target.name]);
  for (const key of Object.keys(instance)) {
    if (!known.has(key))
      throw new FeatureError(
        `${where}.${key}: unknown feature (expected ${[...known].filter((k) => k !== pre.target.name).join(', ')})`,
        `${where}.${key}`,
      );
  }
  const out = new Float32Array(featureWidth(pre));
  let offset = 0;
  for (const { name, mean, std } of pre.numeric) {
    const raw = instance[name];
    if (raw === undefined) throw new FeatureError(`${where}.${name}: missing feature`, `${where}.${name}`);
    if (raw === null) {
      offset++;
      continue;
    }
    const value =
      typeof raw === 'number'
        ? raw
        : typeof raw === 'boolean'
          ? Number(raw)
          : typeof raw === 'string'
            ? parseNumber(raw)
            : undefined;
    if (value === undefined || !Number.isFinite(value))
      throw new FeatureError(
        `${where}.${name}: expected a finite number, got ${JSON.stringify(raw)}`,
        `${where}.${name}`,
      );
    out[offset++] = (value - mean) / std;
  }
  for (const c of pre.categorical) {
    const raw = instance[c.name];
    if (raw === undefined) throw new FeatureError(`${where}.${c.name}: missing feature`, `${where}.${c.name}`);
    if (raw !== null && typeof raw === 'object')
      throw new FeatureError(
        `${where}.${c.name}: expected a string or number, got ${JSON.stringify(raw)}`,
        `${where}.${c.name}`,
      );
    const index = raw === null ? -1 : c.vocabulary.indexOf(String(raw));
    if (index >= 0) out[offset + index] = 1;
    offset += c.vocabulary.length;
  }
  return out;
}

/** Turns a model output back into the target's units (regression) or a class (classification). */
export function decodeRegression(pre: Preprocessor, scaled: number): number {
  const target = pre.target;
  return target.task === 'regression' ? scaled * target.std + target.mean : scaled;
}
