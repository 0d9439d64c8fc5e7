/** Checks a dataset against its declared contract row by row; the report names column, check and example rows. */
import { isNullToken, parseBoolean, parseNumber } from './profile';

export interface ColumnRule {
  type: 'number' | 'integer' | 'boolean' | 'string';
  nullable: boolean;
  min?: number;
  max?: number;
  allowed?: string[];
}

export interface DatasetContract {
  columns: Record<string, ColumnRule>;
  allowExtraColumns: boolean;
  minRows: number;
}

export type ValidationCheck = 'missing_column' | 'unexpected_column' | 'type' | 'not_null' | 'min' | 'max' | 'allowed_values' | 'row_count';

export interface ValidationIssue {
  severity: 'error' | 'warning';
  column: string;
  check: ValidationCheck;
  message: string;
  failingRows: number;
  /** Up to five offending rows: file line and raw value. */
  examples: { line: number; value: string }[];
}

export interface ValidationReport {
  passed: boolean;
  rowCount: number;
  issues: ValidationIssue[];
}

const MAX_EXAMPLES = 5;

interface ColumnState {
  name: string;
  rule: ColumnRule;
  allowed?: Set<string>;
  counters: Map<ValidationCheck, { failingRows: number; examples: { line: number; value: string }[] }>;
}

export class ContractChecker {
  private readonly structural: ValidationIssue[] = [];
  private readonly checked: { index: number; state: ColumnState }[] = [];
  private rows = 0;

  constructor(header: string[], private readonly contract: DatasetContract) {
    const position = new Map(header.map((name, index) => [name, index]));
    for (const [name, rule] of Object.entries(contract.columns)) {
      const index = position.get(name);
      if (index === undefined) {
        const near = header.find((h) => h.toLowerCase().replace(/[^a-z0-9]/g, '') === name.toLowerCase().replace(/[^a-z0-9]/g, ''));
        this.structural.push({
          severity: 'error', column: name, check: 'missing_column', failingRows: 0, examples: [],
          message: `column "${name}" is declared in the schema but missing from the data${near ? ` (found "${near}" — renamed?)` : ''}; header: ${header.join(', ')}`,
        });
        continue;
      }
      this.checked.push({ index, state: { name, rule, allowed: rule.allowed ? new Set(rule.allowed) : undefined, counters: new Map() } });
    }
    for (const name of header) {
      if (!(name in contract.columns)) {
        this.structural.push({
          severity: contract.allowExtraColumns ? 'warning' : 'error', column: name, check: 'unexpected_column', failingRows: 0, examples: [],
          message: `column "${name}" is in the data but not declared in the schema`,
        });
      }
    }
  }

  checkRow(fields: string[], line: number): void {
    this.rows++;
    for (const { index, state } of this.checked) {
      const raw = fields[index] ?? '';
      const { rule } = state;
      if (isNullToken(raw)) {
        if (!rule.nullable) this.fail(state, 'not_null', line, raw);
        continue;
      }
      if (rule.type === 'string') {
        if (state.allowed && !state.allowed.has(raw)) this.fail(state, 'allowed_values', line, raw);
        continue;
      }
      if (rule.type === 'boolean') {
        if (parseBoolean(raw) === undefined) this.fail(state, 'type', line, raw);
        continue;
      }
      const value = parseNumber(raw);
      if (value === undefined || (rule.type === 'integer' && !Number.isInteger(value))) {
        this.fail(state, 'type', line, raw);
        continue;
      }
      if (rule.min !== undefined && value < rule.min) this.fail(state, 'min', line, raw);
      if (rule.max !== undefined && value > rule.max) this.fail(state, 'max', line, raw);
      if (state.allowed && !state.allowed.has(raw)) this.fail(state, 'allowed_values', line, raw);
    }
  }

  finish(): ValidationReport {
    const issues = [...this.structural];
    for (const { state } of this.checked) {
      for (const [check, counter] of state.counters) {
        issues.push({ severity: 'error', column: state.name, check, failingRows: counter.failingRows, examples: counter.examples, message: describe(state, check, counter.failingRows, this.rows, counter.examples) });
      }
    }
    if (this.rows < this.contract.minRows) {
      issues.push({ severity: 'error', column: '*', check: 'row_count', failingRows: 0, examples: [], message: `dataset has ${this.rows} rows; the schema requires at least ${this.contract.minRows}` });
    }
    return { passed: !issues.some((i) => i.severity === 'error'), rowCount: this.rows, issues };
  }

  private fail(state: ColumnState, check: ValidationCheck, line: number, value: string): void {
    let counter = state.counters.get(check);
    if (!counter) state.counters.set(check, (counter = { failingRows: 0, examples: [] }));
    counter.failingRows++;
    if (counter.examples.length < MAX_EXAMPLES) counter.examples.push({ line, value });
  }
}

function describe(state: ColumnState, check: ValidationCheck, failing: number, rows: number, examples: { line: number; value: string }[]): string {
  const { name, rule } = state;
  const share = `${failing} of ${rows} rows`;
  const shown = examples.map((e) => `line ${e.line}: "${e.value}"`).join('; ');
  switch (check) {
    case 'type': return `column "${name}": ${share} are not ${rule.type === 'integer' ? 'an integer' : `a ${rule.type}`} (${shown})`;
    case 'not_null': return `column "${name}": ${share} are empty but the column is not nullable (${shown})`;
    case 'min': return `column "${name}": ${share} are below the minimum ${rule.min} (${shown})`;
    case 'max': return `column "${name}": ${share} are above the maximum ${rule.max} (${shown})`;
    case 'allowed_values': return `column "${name}": ${share} hold values outside the allowed set (${shown})`;
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
