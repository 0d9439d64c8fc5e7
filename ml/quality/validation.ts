/**
 * Checks a dataset against its contract record by record, and its distributions against a reference version with a
 * test chosen by sample size and column type (the monitor's chooser): KS / chi² (p < 0.05) while either sample has at
 * most 1,000 values, PSI past that; a drop of fewer than 30 rows is not compared at all (one warning says so).
 * The report names column, check, failing share and example rows (data row and file line).
 */
import type { RecordFields } from '../formats/csv';
import {
  binCounts,
  categoricalPsi,
  categoryShares,
  chiSquareTest,
  DRIFT_TESTS,
  isDrift,
  ksTest,
  psiFromCounts,
  type DriftTestId,
} from './drift';
import { chooseDriftTest, MIN_DISTRIBUTION_ROWS, PSI_LARGE_SAMPLE_TESTS } from './driftChooser';
import { parseBoolean } from '../formats/numbers';
import type { ColumnProfile } from '../profiling/profile';
import { seededRandom } from '../random';
import { Reservoir } from '../profiling/sketch';

export type Severity = 'error' | 'warning';

export interface ColumnRule {
  type: 'number' | 'integer' | 'boolean' | 'string';
  nullable: boolean;
  min?: number;
  max?: number;
  allowed?: string[];
  /** Every non-null value differs from every other. */
  unique?: boolean;
  /**
   * Share of non-null rows that must pass the value checks (type, min, max, allowed), as in Great Expectations.
   * @default 1
   */
  mostly?: number;
  /** What a failing check of this column is. @default 'error' */
  severity?: Severity;
}

export interface DriftRule {
  /** Columns compared with the reference; empty means every column. */
  columns: string[];
  /**
   * PSI at or above this is drift (0.1 moderate, 0.25 major, the usual reading) when both samples are large; smaller
   * ones are judged by KS / chi² at p < 0.05. @default 0.25
   */
  psiThreshold: number;
  /** @default 'error' */
  severity: Severity;
}

export interface DatasetContract {
  columns: Record<string, ColumnRule>;
  allowExtraColumns: boolean;
  minRows: number;
  maxRows?: number;
}

export type ValidationCheck =
  | 'header'
  | 'missing_column'
  | 'unexpected_column'
  | 'type'
  | 'not_null'
  | 'min'
  | 'max'
  | 'allowed_values'
  | 'unique'
  | 'row_count'
  | 'drift';

export interface Example {
  row: number;
  line: number;
  value: string;
}

export interface ValidationIssue {
  severity: Severity;
  column: string;
  check: ValidationCheck;
  message: string;
  failingRows: number;
  /** Up to five offending rows: data row (1-based), line in the stored file, raw value. */
  examples: Example[];
}

export interface DriftResult {
  column: string;
  /** The test that decided, chosen by sample size and column type. */
  method: DriftTestId;
  statistic: number;
  pValue?: number;
  threshold: number;
  drifted: boolean;
  /** Non-null values compared. */
  rows: number;
  /** PSI over the reference's bins or top values, reported whatever decided. */
  psi: number;
  /** Two-sample KS against the reference sample, for numeric columns. */
  ks?: { statistic: number; pValue: number };
}

export interface ValidationReport {
  passed: boolean;
  rowCount: number;
  issues: ValidationIssue[];
  drift: { reference: string; results: DriftResult[] } | null;
}

const MAX_EXAMPLES = 5;
/** A header mismatch naming more columns than this is one issue, not one per column. */
const MAX_HEADER_ISSUES = 5;
/** Column names listed in one message. */
const NAMES_SHOWN = 5;
const VALUE_CHECKS = new Set<ValidationCheck>(['type', 'min', 'max', 'allowed_values']);

interface ColumnState {
  name: string;
  rule: ColumnRule;
  allowed?: Set<string>;
  seen?: Set<string>;
  present: number;
  counters: Map<ValidationCheck, { failingRows: number; examples: Example[] }>;
}

interface DriftState {
  index: number;
  reference: ColumnProfile;
  numeric: boolean;
  values: number[];
  categories: Map<string, number>;
  sample: Reservoir;
  counts?: number[];
  sum: number;
  n: number;
}

export class ContractChecker {
  private readonly structural: ValidationIssue[] = [];
  private readonly checked: { index: number; state: ColumnState }[] = [];
  private readonly drifting: DriftState[] = [];
  private rows = 0;

  constructor(
    header: string[],
    private readonly contract: DatasetContract,
    private readonly drift?: { rule: DriftRule; reference: { id: string; profile: ColumnProfile[] } },
  ) {
    const position = new Map(header.map((name, index) => [name, index]));
    const missing = Object.keys(contract.columns).filter((name) => !position.has(name));
    const unexpected = header.filter((name) => !(name in contract.columns));
    for (const [name, rule] of Object.entries(contract.columns)) {
      const index = position.get(name);
      if (index === undefined) continue;
      this.checked.push({
        index,
        state: {
          name,
          rule,
          allowed: rule.allowed ? new Set(rule.allowed) : undefined,
          seen: rule.unique ? new Set() : undefined,
          present: 0,
          counters: new Map(),
        },
      });
    }
    if (missing.length + unexpected.length > MAX_HEADER_ISSUES)
      this.structural.push(headerMismatch(contract, missing, unexpected));
    else {
      const squashed = unexpected.map(squash);
      for (const name of missing) {
        const rule = contract.columns[name]!;
        const near = unexpected.find(
          (_, i) => squashed[i]!.includes(squash(name)) || squash(name).includes(squashed[i]!),
        );
        this.structural.push({
          severity: rule.severity ?? 'error',
          column: name,
          check: 'missing_column',
          failingRows: 0,
          examples: [],
          message: `column "${name}" is declared in the schema but missing from the data${near ? ` (found "${near}" — renamed?)` : ''}; header: ${listNames(header, 30)}`,
        });
      }
      for (const name of unexpected) {
        this.structural.push({
          severity: contract.allowExtraColumns ? 'warning' : 'error',
          column: name,
          check: 'unexpected_column',
          failingRows: 0,
          examples: [],
          message: `column "${name}" is in the data but not declared in the schema`,
        });
      }
    }
    if (drift) {
      const random = seededRandom(7);
      for (const column of drift.rule.columns.length ? drift.rule.columns : header) {
        const index = position.get(column);
        const reference = drift.reference.profile.find((p) => p.name === column);
        if (index === undefined || !reference) continue;
        const numeric = (reference.type === 'number' || reference.type === 'integer') && !!reference.bins;
        this.drifting.push({
          index,
          reference,
          numeric,
          values: [],
          categories: new Map(),
          sample: new Reservoir(2_000, random),
          sum: 0,
          n: 0,
        });
      }
    }
  }

  checkRow(record: RecordFields, line: number): void {
    const row = ++this.rows;
    for (const { index, state } of this.checked) {
      const { rule } = state;
      if (record.isNull(index)) {
        if (!rule.nullable) this.fail(state, 'not_null', row, line, '');
        continue;
      }
      state.present++;
      if (state.seen) {
        const text = record.text(index);
        if (state.seen.has(text)) this.fail(state, 'unique', row, line, text);
        else state.seen.add(text);
      }
      if (rule.type === 'string') {
        if (state.allowed) {
          const text = record.text(index);
          if (!state.allowed.has(text)) this.fail(state, 'allowed_values', row, line, text);
        }
        continue;
      }
      if (rule.type === 'boolean') {
        const text = record.text(index);
        if (parseBoolean(text) === undefined) this.fail(state, 'type', row, line, text);
        continue;
      }
      const value = record.number(index);
      if (value !== value || (rule.type === 'integer' && !Number.isInteger(value))) {
        this.fail(state, 'type', row, line, record.text(index));
        continue;
      }
      if (rule.min !== undefined && value < rule.min) this.fail(state, 'min', row, line, record.text(index));
      if (rule.max !== undefined && value > rule.max) this.fail(state, 'max', row, line, record.text(index));
      if (state.allowed && !state.allowed.has(record.text(index)))
        this.fail(state, 'allowed_values', row, line, record.text(index));
    }
    for (const d of this.drifting) {
      if (record.isNull(d.index)) continue;
      if (d.numeric) {
        const value = record.number(d.index);
        if (value === value) {
          d.values.push(value);
          d.sample.add(value);
          if (d.values.length >= 65_536) this.binValues(d);
        }
      } else if (d.categories.size < 100_000) {
        const text = record.text(d.index);
        d.categories.set(text, (d.categories.get(text) ?? 0) + 1);
      }
    }
  }

  finish(): ValidationReport {
    const issues = [...this.structural];
    for (const { state } of this.checked) {
      const mostly = state.rule.mostly ?? 1;
      for (const [check, counter] of state.counters) {
        if (VALUE_CHECKS.has(check) && state.present > 0 && 1 - counter.failingRows / state.present >= mostly) continue;
        issues.push({
          severity: state.rule.severity ?? 'error',
          column: state.name,
          check,
          failingRows: counter.failingRows,
          examples: counter.examples,
          message: describe(state, check, counter.failingRows, this.rows, counter.examples),
        });
      }
    }
    if (this.rows < this.contract.minRows) {
      issues.push({
        severity: 'error',
        column: '*',
        check: 'row_count',
        failingRows: 0,
        examples: [],
        message: `dataset has ${this.rows} rows; the schema requires at least ${this.contract.minRows}`,
      });
    }
    if (this.contract.maxRows !== undefined && this.rows > this.contract.maxRows) {
      issues.push({
        severity: 'error',
        column: '*',
        check: 'row_count',
        failingRows: 0,
        examples: [],
        message: `dataset has ${this.rows} rows; the schema allows at most ${this.contract.maxRows}`,
      });
    }
    let drift: ValidationReport['drift'] = null;
    if (this.drift) {
      const { rule, reference } = this.drift;
      const results: DriftResult[] = [];
      if (this.rows < MIN_DISTRIBUTION_ROWS) {
        issues.push({
          severity: 'warning',
          column: '*',
          check: 'drift',
          failingRows: 0,
          examples: [],
          message: `too few rows (${this.rows}) for a distribution check: at least ${MIN_DISTRIBUTION_ROWS} are needed; not compared with reference ${reference.id}`,
        });
      } else {
        for (const d of this.drifting) {
          const result = this.compare(d, rule);
          if (!result) continue;
          results.push(result);
          if (result.drifted)
            issues.push({
              severity: rule.severity,
              column: result.column,
              check: 'drift',
              failingRows: 0,
              examples: [],
              message: this.describeDrift(d, result, rule),
            });
        }
      }
      drift = { reference: reference.id, results };
    }
    return { passed: !issues.some((i) => i.severity === 'error'), rowCount: this.rows, issues, drift };
  }

  /** One column against the reference, by the test its type and the smaller sample's size call for. */
  private compare(d: DriftState, rule: DriftRule): DriftResult | undefined {
    const ref = d.reference;
    const referenceRows = Math.max(0, ref.count - ref.nulls);
    if (d.numeric) {
      this.binValues(d);
      const current = d.sample.values;
      if (d.n < MIN_DISTRIBUTION_ROWS) return undefined;
      const psi = psiFromCounts(ref.bins!.shares, d.counts!);
      const ks = ref.sample?.length ? ksTest(ref.sample, current) : undefined;
      const chosen = chooseDriftTest('numeric', Math.min(referenceRows, d.n), PSI_LARGE_SAMPLE_TESTS);
      // A profile stored before samples were kept has only its bins: PSI it is.
      const method: DriftTestId = chosen === 'ks' && !ks ? 'psi' : chosen;
      const outcome = method === 'ks' ? ks! : { statistic: psi };
      const threshold = method === 'ks' ? DRIFT_TESTS.ks.defaultThreshold : rule.psiThreshold;
      return {
        column: ref.name,
        method,
        ...outcome,
        threshold,
        drifted: isDrift(method, outcome, threshold),
        rows: d.n,
        psi,
        ks,
      };
    }
    let n = 0;
    for (const count of d.categories.values()) n += count;
    if (n < MIN_DISTRIBUTION_ROWS) return undefined;
    const top = ref.topValues ?? [];
    const psi = categoricalPsi(top, Math.max(1, referenceRows), d.categories);
    const method = top.length
      ? chooseDriftTest('categorical', Math.min(referenceRows, n), PSI_LARGE_SAMPLE_TESTS)
      : 'psi_categorical';
    const outcome =
      method === 'chi2'
        ? (() => {
            const { expected, observed } = categoryShares(top, referenceRows, d.categories);
            return chiSquareTest(expected, observed, n);
          })()
        : { statistic: psi };
    const threshold = method === 'chi2' ? DRIFT_TESTS.chi2.defaultThreshold : rule.psiThreshold;
    return {
      column: ref.name,
      method,
      ...outcome,
      threshold,
      drifted: isDrift(method, outcome, threshold),
      rows: n,
      psi,
    };
  }

  private describeDrift(d: DriftState, result: DriftResult, rule: DriftRule): string {
    const ref = d.reference;
    const current = d.n ? d.sum / d.n : undefined;
    const shift =
      d.numeric && ref.mean !== undefined && current !== undefined
        ? `; mean ${fmt(ref.mean)} → ${fmt(current)}${ref.mean !== 0 ? ` (×${fmt(current / ref.mean)})` : ''}`
        : '';
    const psi = `PSI ${fmt(result.psi)} ${result.psi >= rule.psiThreshold ? '≥' : '<'} ${rule.psiThreshold}`;
    const decided =
      result.method === 'ks' || result.method === 'chi2'
        ? `${DRIFT_TESTS[result.method].label} ${result.method === 'ks' ? `D=${fmt(result.statistic)}` : fmt(result.statistic)}, p=${result.pValue!.toExponential(2)} < ${result.threshold} (${result.rows} rows); ${psi}`
        : `${psi}${result.ks ? `; KS D=${fmt(result.ks.statistic)}, p=${result.ks.pValue.toExponential(2)}` : ''}`;
    return `column "${ref.name}": distribution shifted from reference ${this.drift!.reference.id}: ${decided}${shift}`;
  }

  private binValues(d: DriftState): void {
    const counts = binCounts(d.values, d.reference.bins!.edges);
    d.counts = d.counts ? d.counts.map((c, i) => c + counts[i]!) : counts;
    for (const v of d.values) d.sum += v;
    d.n += d.values.length;
    d.values.length = 0;
  }

  private fail(state: ColumnState, check: ValidationCheck, row: number, line: number, value: string): void {
    let counter = state.counters.get(check);
    if (!counter) state.counters.set(check, (counter = { failingRows: 0, examples: [] }));
    counter.failingRows++;
    if (counter.examples.length < MAX_EXAMPLES) counter.examples.push({ row, line, value });
  }
}

/** One issue for a header far from the contract: counts, and the first few names of each side. */
function headerMismatch(contract: DatasetContract, missing: string[], unexpected: string[]): ValidationIssue {
  const missingErrors = missing.some((name) => (contract.columns[name]!.severity ?? 'error') === 'error');
  const severity: Severity =
    missingErrors || (unexpected.length > 0 && !contract.allowExtraColumns) ? 'error' : 'warning';
  const parts: string[] = [];
  if (unexpected.length)
    parts.push(
      `${count(unexpected.length, 'unexpected column')} (${listNames(unexpected, NAMES_SHOWN)})${contract.allowExtraColumns ? ', allowed' : ''}`,
    );
  if (missing.length) parts.push(`${count(missing.length, 'missing', 'missing')}: ${listNames(missing, NAMES_SHOWN)}`);
  return {
    severity,
    column: '*',
    check: 'header',
    failingRows: 0,
    examples: [],
    message: `header does not match the contract: ${parts.join(', ')}`,
  };
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** The first `shown` names, then how many more. */
function listNames(names: string[], shown: number): string {
  return names.length <= shown
    ? names.join(', ')
    : `${names.slice(0, shown).join(', ')}, … (${(names.length - shown).toLocaleString('en-US')} more)`;
}

function squash(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

function fmt(value: number): string {
  return String(Number(value.toPrecision(4)));
}

function describe(
  state: ColumnState,
  check: ValidationCheck,
  failing: number,
  rows: number,
  examples: Example[],
): string {
  const { name, rule } = state;
  const share = `${failing} of ${rows} rows`;
  const shown = examples.map((e) => `row ${e.row}: "${e.value}"`).join('; ');
  const tolerance =
    rule.mostly !== undefined && rule.mostly < 1
      ? `, more than the ${fmt((1 - rule.mostly) * 100)} % "mostly" allows`
      : '';
  switch (check) {
    case 'type':
      return `column "${name}": ${share} are not ${rule.type === 'integer' ? 'an integer' : `a ${rule.type}`}${tolerance} (${shown})`;
    case 'not_null':
      return `column "${name}": ${share} are empty but the column is not nullable (${shown})`;
    case 'min':
      return `column "${name}": ${share} are below the minimum ${rule.min}${tolerance} (${shown})`;
    case 'max':
      return `column "${name}": ${share} are above the maximum ${rule.max}${tolerance} (${shown})`;
    case 'allowed_values':
      return `column "${name}": ${share} hold values outside the allowed set${tolerance} (${shown})`;
    case 'unique':
      return `column "${name}": ${share} repeat an earlier value but the column is unique (${shown})`;
    default:
      return `column "${name}": ${check} failed for ${share}`;
  }
}

/** One paragraph naming every error, for a failure message. */
export function summarizeErrors(report: ValidationReport, limit = 5): string {
  const errors = report.issues.filter((i) => i.severity === 'error');
  const lines = errors.slice(0, limit).map((i) => `- ${i.message}`);
  if (errors.length > limit) lines.push(`- … and ${errors.length - limit} more`);
  return lines.join('\n');
}

/**
 * A contract suggested from a profile (what TFDV and SageMaker's baseline do): types, nullability, and the allowed
 * set of a low-cardinality string column. Ranges are left to the distribution check, which compares with the
 * reference version instead of freezing today's min and max.
 */
export function inferContract(profiles: ColumnProfile[]): DatasetContract {
  const columns: Record<string, ColumnRule> = {};
  for (const p of profiles) {
    const rule: ColumnRule = { type: p.type, nullable: p.nulls > 0 };
    // Dates and timestamps move on with every drop: a few distinct days are not a closed set of categories.
    const temporal = (p.topValues ?? []).every((t) => /^\d{4}-\d{2}-\d{2}([ T]|$)/.test(t.value));
    if (
      p.type === 'string' &&
      !temporal &&
      !p.distinctApprox &&
      p.distinct <= 20 &&
      p.count - p.nulls >= 10 * p.distinct
    ) {
      rule.allowed = (p.topValues ?? []).map((t) => t.value).sort();
    }
    columns[p.name] = rule;
  }
  return { columns, allowExtraColumns: false, minRows: 1 };
}
