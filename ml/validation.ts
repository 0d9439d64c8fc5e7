/**
 * Checks a dataset against its contract record by record, and its distributions against a reference version.
 * The report names column, check, failing share and example rows (data row and file line).
 */
import type { RecordFields } from './csv';
import { categoricalPsi, ksTest, psiFromCounts, binCounts } from './drift';
import { parseBoolean } from './numbers';
import type { ColumnProfile } from './profile';
import { seededRandom } from './random';
import { Reservoir } from './sketch';

export type Severity = 'error' | 'warning';

export interface ColumnRule {
  type: 'number' | 'integer' | 'boolean' | 'string';
  nullable: boolean;
  min?: number;
  max?: number;
  allowed?: string[];
  /** Every non-null value differs from every other. */
  unique?: boolean;
  /** Share of non-null rows that must pass the value checks (type, min, max, allowed), as in Great Expectations. @default 1 */
  mostly?: number;
  /** What a failing check of this column is. @default 'error' */
  severity?: Severity;
}

export interface DriftRule {
  /** Columns compared with the reference; empty means every column. */
  columns: string[];
  /** PSI at or above this is drift (0.1 moderate, 0.25 major, the usual reading). @default 0.25 */
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
  | 'missing_column' | 'unexpected_column' | 'type' | 'not_null' | 'min' | 'max' | 'allowed_values' | 'unique' | 'row_count' | 'drift';

export interface Example { row: number; line: number; value: string }

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
  method: 'psi';
  psi: number;
  /** Two-sample KS against the reference sample, for numeric columns. */
  ks?: { statistic: number; pValue: number };
  threshold: number;
  drifted: boolean;
}

export interface ValidationReport {
  passed: boolean;
  rowCount: number;
  issues: ValidationIssue[];
  drift: { reference: string; results: DriftResult[] } | null;
}

const MAX_EXAMPLES = 5;
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
    for (const [name, rule] of Object.entries(contract.columns)) {
      const index = position.get(name);
      if (index === undefined) {
        const near = header.find((h) => !(h in contract.columns) && (squash(h).includes(squash(name)) || squash(name).includes(squash(h))));
        this.structural.push({
          severity: rule.severity ?? 'error', column: name, check: 'missing_column', failingRows: 0, examples: [],
          message: `column "${name}" is declared in the schema but missing from the data${near ? ` (found "${near}" — renamed?)` : ''}; header: ${header.join(', ')}`,
        });
        continue;
      }
      this.checked.push({
        index,
        state: { name, rule, allowed: rule.allowed ? new Set(rule.allowed) : undefined, seen: rule.unique ? new Set() : undefined, present: 0, counters: new Map() },
      });
    }
    for (const name of header) {
      if (!(name in contract.columns)) {
        this.structural.push({
          severity: contract.allowExtraColumns ? 'warning' : 'error', column: name, check: 'unexpected_column', failingRows: 0, examples: [],
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
        this.drifting.push({ index, reference, numeric, values: [], categories: new Map(), sample: new Reservoir(2_000, random), sum: 0, n: 0 });
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
      if (state.allowed && !state.allowed.has(record.text(index))) this.fail(state, 'allowed_values', row, line, record.text(index));
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
          severity: state.rule.severity ?? 'error', column: state.name, check, failingRows: counter.failingRows, examples: counter.examples,
          message: describe(state, check, counter.failingRows, this.rows, counter.examples),
        });
      }
    }
    if (this.rows < this.contract.minRows) {
      issues.push({ severity: 'error', column: '*', check: 'row_count', failingRows: 0, examples: [], message: `dataset has ${this.rows} rows; the schema requires at least ${this.contract.minRows}` });
    }
    if (this.contract.maxRows !== undefined && this.rows > this.contract.maxRows) {
      issues.push({ severity: 'error', column: '*', check: 'row_count', failingRows: 0, examples: [], message: `dataset has ${this.rows} rows; the schema allows at most ${this.contract.maxRows}` });
    }
    let drift: ValidationReport['drift'] = null;
    if (this.drift) {
      const results: DriftResult[] = [];
      const { rule } = this.drift;
      for (const d of this.drifting) {
        const ref = d.reference;
        let value: number;
        let ks: DriftResult['ks'];
        if (d.numeric) {
          this.binValues(d);
          value = psiFromCounts(ref.bins!.shares, d.counts!);
          if (ref.sample?.length && d.sample.values.length) ks = ksTest(ref.sample, d.sample.values);
        } else {
          value = categoricalPsi(ref.topValues ?? [], Math.max(1, ref.count - ref.nulls), d.categories);
        }
        const drifted = value >= rule.psiThreshold;
        results.push({ column: ref.name, method: 'psi', psi: value, ks, threshold: rule.psiThreshold, drifted });
        if (drifted) {
          const current = d.n ? d.sum / d.n : undefined;
          const shift = d.numeric && ref.mean !== undefined && current !== undefined
            ? `; mean ${fmt(ref.mean)} → ${fmt(current)}${ref.mean !== 0 ? ` (×${fmt(current / ref.mean)})` : ''}`
            : '';
          issues.push({
            severity: rule.severity, column: ref.name, check: 'drift', failingRows: 0, examples: [],
            message: `column "${ref.name}": distribution shifted from reference ${this.drift.reference.id}: PSI ${fmt(value)} ≥ ${rule.psiThreshold}${shift}${ks ? `; KS D=${fmt(ks.statistic)}, p=${ks.pValue.toExponential(2)}` : ''}`,
          });
        }
      }
      drift = { reference: this.drift.reference.id, results };
    }
    return { passed: !issues.some((i) => i.severity === 'error'), rowCount: this.rows, issues, drift };
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

function squash(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

function fmt(value: number): string {
  return String(Number(value.toPrecision(4)));
}

function describe(state: ColumnState, check: ValidationCheck, failing: number, rows: number, examples: Example[]): string {
  const { name, rule } = state;
  const share = `${failing} of ${rows} rows`;
  const shown = examples.map((e) => `row ${e.row}: "${e.value}"`).join('; ');
  const tolerance = rule.mostly !== undefined && rule.mostly < 1 ? `, more than the ${fmt((1 - rule.mostly) * 100)} % "mostly" allows` : '';
  switch (check) {
    case 'type': return `column "${name}": ${share} are not ${rule.type === 'integer' ? 'an integer' : `a ${rule.type}`}${tolerance} (${shown})`;
    case 'not_null': return `column "${name}": ${share} are empty but the column is not nullable (${shown})`;
    case 'min': return `column "${name}": ${share} are below the minimum ${rule.min}${tolerance} (${shown})`;
    case 'max': return `column "${name}": ${share} are above the maximum ${rule.max}${tolerance} (${shown})`;
    case 'allowed_values': return `column "${name}": ${share} hold values outside the allowed set${tolerance} (${shown})`;
    case 'unique': return `column "${name}": ${share} repeat an earlier value but the column is unique (${shown})`;
    default: return `column "${name}": ${check} failed for ${share}`;
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
    if (p.type === 'string' && !temporal && !p.distinctApprox && p.distinct <= 20 && p.count - p.nulls >= 10 * p.distinct) {
      rule.allowed = (p.topValues ?? []).map((t) => t.value).sort();
    }
    columns[p.name] = rule;
  }
  return { columns, allowExtraColumns: false, minRows: 1 };
}
