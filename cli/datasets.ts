/**
 * `flywheel datasets …`: versions, profiles, diffs, aliases, the inferred contract, and a new version ingested — all
 * over the API.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Document, YAMLMap } from 'yaml';
import { ConfigError } from '../config/pipeline';
import type { ColumnProfile } from '../ml/profiling/profile';
import type { ColumnStatistics, ProfileDiff } from '../ml/profiling/profileDiff';
import type { DatasetContract, ValidationReport } from '../ml/quality/validation';
import type { DataFormat } from '../storage/tables';
import type { DatasetWorkflowResult } from '../workflows/dataset';
import { describeFormat } from '../workflows/summaries';
import { api } from './api';
import { followJob } from './jobs';
import { uploadLocalSource, UploadUnavailableError } from './upload';
import { histogramBars, sparkline, table, when, type Say } from './output';

/** What the API answers (dates as ISO strings). */
interface VerdictJson {
  passed: boolean;
  errorCount: number;
  warningCount: number;
  workflowId: string;
  createdAt: string;
}
interface DatasetJson {
  name: string;
  versionCount: number;
  latestVersionId: string | null;
  latestRowCount: number | null;
  lastVersionAt: string | null;
}
interface VersionSummaryJson {
  id: string;
  createdAt: string;
  format: string;
  rowCount: number;
  columnCount: number;
  aliases: string[];
  validation: VerdictJson | null;
}
interface VersionJson {
  id: string;
  datasetName: string;
  sourceUri: string;
  format: string;
  storedUri: string;
  rowCount: number;
  byteSize: number;
  contentHash: string;
  createdByWorkflowId: string | null;
  createdAt: string;
  aliases: string[];
  profile: ColumnProfile[];
  validationReports: (VerdictJson & { issues: ValidationReport['issues'] })[];
  lineage: {
    runs: { id: string; status: string; pipelineName: string | null; startedAt: string }[];
    modelVersions: { modelName: string; version: number; runId: string | null }[];
  };
}
type DiffJson = ProfileDiff & { a: { id: string; rowCount: number }; b: { id: string; rowCount: number } };

const path = (...parts: string[]) => `/api/v1/datasets/${parts.map(encodeURIComponent).join('/')}`;

const num = (value: number | undefined | null): string =>
  value === undefined || value === null || Number.isNaN(value) ? '-' : String(Number(value.toPrecision(5)));
const psiText = (value: number): string => (value < 0.001 ? '0.000' : value.toFixed(3));
const pct = (part: number, whole: number): string =>
  whole ? `${Number(((100 * part) / whole).toPrecision(3))}%` : '-';

function profileRows(profile: ColumnProfile[]): string[][] {
  const rows = [
    ['column', 'type', 'nulls', 'distinct', 'min', 'mean', 'std', 'p50', 'max', 'distribution / top values'],
  ];
  for (const p of profile) {
    const shape = p.sample?.length
      ? sparkline(p.sample, p.min!, p.max!)
      : (p.topValues ?? [])
          .slice(0, 4)
          .map((t) => `${t.value} ${pct(t.count, p.count - p.nulls)}`)
          .join(', ');
    rows.push([
      p.name,
      p.type,
      pct(p.nulls, p.count),
      `${p.distinctApprox ? '~' : ''}${p.distinct}`,
      num(p.min),
      num(p.mean),
      num(p.std),
      num(p.quantiles?.p50),
      num(p.max),
      shape,
    ]);
  }
  return rows;
}

async function listDatasets(name: string | undefined, say: Say): Promise<void> {
  if (!name) {
    const { datasets } = await api<{ datasets: DatasetJson[] }>('GET', '/api/v1/datasets');
    if (!datasets.length) return say('no datasets yet: run a pipeline or `flywheel datasets add <name> <source>`');
    const rows = [['dataset', 'versions', 'latest', 'rows', 'last version']];
    for (const d of datasets)
      rows.push([
        d.name,
        String(d.versionCount),
        d.latestVersionId ?? '-',
        String(d.latestRowCount ?? '-'),
        when(d.lastVersionAt),
      ]);
    return table(rows, say);
  }
  const { versions } = await api<{ versions: VersionSummaryJson[] }>('GET', path(name, 'versions'));
  if (!versions.length) throw new ConfigError(`dataset ${name} has no versions`);
  const rows = [['version', 'created', 'format', 'rows', 'columns', 'validation', 'aliases']];
  for (const v of versions) {
    const report = v.validation;
    const verdict = report
      ? report.passed
        ? `passed${report.warningCount ? ` (${report.warningCount} warnings)` : ''}`
        : `FAILED (${report.errorCount} errors)`
      : 'not validated';
    rows.push([
      v.id,
      when(v.createdAt),
      v.format,
      String(v.rowCount),
      String(v.columnCount),
      verdict,
      v.aliases.join(', '),
    ]);
  }
  table(rows, say);
}

async function showVersion(ref: string, say: Say): Promise<void> {
  const v = await api<VersionJson>('GET', path(ref));
  say(`${v.id}${v.aliases.length ? `  (${v.aliases.map((a) => `@${a}`).join(' ')})` : ''}`);
  say(`  source    ${v.sourceUri}  (${v.format})`);
  say(`  stored    ${v.storedUri}  ${v.rowCount} rows, ${v.byteSize} bytes canonical CSV`);
  say(`  sha256    ${v.contentHash}`);
  say(`  created   ${when(v.createdAt)} by ${v.createdByWorkflowId ?? '-'}`);
  say('');
  table(profileRows(v.profile), say);
  const reports = v.validationReports.slice(0, 5);
  if (reports.length) {
    say('\nvalidation');
    for (const r of reports) {
      say(
        `  ${when(r.createdAt)}  ${r.passed ? 'passed' : 'FAILED'}  ${r.errorCount} errors, ${r.warningCount} warnings  (${r.workflowId})`,
      );
      for (const issue of r.issues.slice(0, 5)) say(`    ${issue.severity}: ${issue.message}`);
    }
  }
  const { runs, modelVersions } = v.lineage;
  say('\nlineage');
  if (!runs.length && !modelVersions.length) say('  no run has used this version yet');
  for (const run of runs) say(`  run ${run.id}  ${run.status}  pipeline ${run.pipelineName}  (${when(run.startedAt)})`);
  for (const m of modelVersions) say(`  model ${m.modelName} v${m.version}  from run ${m.runId}`);
}

async function diffVersions(refA: string, refB: string, say: Say): Promise<void> {
  const diff = await api<DiffJson>('GET', path(refA, 'diff', refB));
  const { a, b } = diff;
  say(`${a.id}  →  ${b.id}`);
  say(`  rows ${a.rowCount} → ${b.rowCount}  (${b.rowCount >= a.rowCount ? '+' : ''}${b.rowCount - a.rowCount})`);
  const schema = diff.schemaChanges.map((c) =>
    c.change === 'removed'
      ? `  - removed  ${c.column} (${c.type})`
      : c.change === 'added'
        ? `  + added    ${c.column} (${c.type})`
        : `  ~ type     ${c.column}: ${c.from} → ${c.to}`,
  );
  say(schema.length ? `\nschema changes\n${schema.join('\n')}` : '\nschema: same columns and types');
  say('\nper column (a → b)');
  const rows = [['column', 'nulls', 'distinct', 'mean', 'std', 'min', 'max', 'PSI', 'a | b']];
  const arrow = (x: string, y: string) => (x === y ? x : `${x} → ${y}`);
  const side = (s: ColumnStatistics) => ({
    nulls: pct(s.nulls, s.count),
    distinct: String(s.distinct),
    mean: num(s.mean),
    std: num(s.std),
    min: num(s.min),
    max: num(s.max),
  });
  for (const column of diff.columns) {
    const p = side(column.a),
      q = side(column.b);
    rows.push([
      column.column,
      arrow(p.nulls, q.nulls),
      arrow(p.distinct, q.distinct),
      arrow(p.mean, q.mean),
      arrow(p.std, q.std),
      arrow(p.min, q.min),
      arrow(p.max, q.max),
      column.psi === undefined ? '-' : psiText(column.psi),
      column.shape ? `${histogramBars(column.shape.a)} | ${histogramBars(column.shape.b)}` : '',
    ]);
  }
  table(rows, say);
  say('\nPSI: < 0.1 stable, 0.1–0.25 moderate, ≥ 0.25 major shift (same test as validation and monitoring).');
}

async function setAlias(ref: string, alias: string, options: { force?: boolean }, say: Say): Promise<void> {
  // A bare name means what `show` shows (@latest, else the newest version): resolve it first.
  const version = ref.includes('@') ? ref : (await api<VersionJson>('GET', path(ref))).id;
  const name = version.slice(0, version.indexOf('@'));
  const move = await api<{ datasetName: string; alias: string; versionId: string; previousVersionId: string | null }>(
    'PUT',
    path(name, 'aliases', alias),
    { version, ...(options.force ? { force: true } : {}) },
  );
  say(
    `${move.datasetName}@${move.alias} → ${move.versionId}${move.previousVersionId && move.previousVersionId !== move.versionId ? ` (was ${move.previousVersionId})` : ''}`,
  );
}

async function printSchema(ref: string, say: Say): Promise<void> {
  const { datasetVersionId, inUse, contract } = await api<{
    datasetVersionId: string;
    inUse: boolean;
    contract: DatasetContract;
  }>('GET', path(ref, 'schema'));
  say(
    `# Contract ${inUse ? 'in use for' : 'inferred from'} ${datasetVersionId}. Review it, add ranges (min/max), "unique" or "mostly",`,
  );
  say('# and paste it as `schema:` in the pipeline config to pin it.');
  const doc = new Document({ schema: contract });
  const node = doc.getIn(['schema', 'columns']) as YAMLMap;
  for (const item of node.items) (item.value as YAMLMap).flow = true;
  say(doc.toString({ lineWidth: 0 }).trimEnd());
}

async function addVersion(
  name: string,
  source: string,
  options: { format?: DataFormat; delimiter?: string; query?: string; header?: boolean },
  say: Say,
): Promise<void> {
  // A local file is uploaded (the workers may run elsewhere); failures then name the file as the user wrote it.
  const local = /^[a-z][a-z0-9+.-]*:\/\//i.test(source) ? undefined : resolve(source);
  let sent = source;
  if (local) {
    try {
      sent = await uploadLocalSource(local, (line) => console.error(line));
    } catch (error) {
      if (!(error instanceof UploadUnavailableError)) throw error;
      sent = local;
    }
  }
  const spec = {
    source: sent,
    format: options.format,
    delimiter: options.delimiter,
    query: options.query,
    header: options.header,
  };
  const { workflowId, uiUrl } = await api<{ workflowId: string; uiUrl: string }>('POST', path(name, 'ingests'), spec);
  say(`started ${workflowId}\n  ${uiUrl}`);
  const job = await followJob<DatasetWorkflowResult>(path(name, 'ingests', workflowId), (progress) => {
    if (typeof progress.bytes === 'number') say(`  … ${(progress.bytes / 2 ** 20).toFixed(0)} MiB read`);
  });
  if (!job.result) throw new Error(`dataset ${name}: ${(job.failure ?? job.status).replaceAll(sent, source)}`);
  const { version, validation } = job.result;
  say(
    `${version.datasetVersionId}: ${version.rowCount} rows from ${describeFormat(version)}${version.reused ? ' (same content as an existing version; nothing uploaded)' : ''}`,
  );
  say(
    `  validation passed (${validation.contract} contract${validation.reference ? `, distributions checked against ${validation.reference}` : ''})`,
  );
  for (const warning of validation.warnings) say(`  warning: ${warning}`);
}

export function registerDatasetCommands(program: Command, say: Say): void {
  const command = program.command('datasets').description('dataset versions: list, show, diff, alias, schema, add');
  command
    .command('list [name]')
    .description('all datasets, or the versions of one')
    .action((name?: string) => listDatasets(name, say));
  command
    .command('show <ref>')
    .description('a version (name, name@alias or name@hash) with its profile, validation and lineage')
    .action((ref: string) => showVersion(ref, say));
  command
    .command('diff <a> <b>')
    .description('schema and per-column statistic changes between two versions, side by side')
    .action((a: string, b: string) => diffVersions(a, b, say));
  command
    .command('alias <ref> <alias>')
    .description('point a custom alias (e.g. "golden") at a version')
    .option('--force', 'even at a version whose validation FAILED')
    .action((ref: string, alias: string, options: { force?: boolean }) => setAlias(ref, alias, options, say));
  command
    .command('schema <ref>')
    .description('print the contract inferred from a version, ready to pin in a pipeline config')
    .action((ref: string) => printSchema(ref, say));
  command
    .command('add <name> <source>')
    .description('ingest and validate a file, URL, s3:// object or postgres:// query as a new version')
    .option('--format <format>', 'csv, jsonl, parquet or sql (default: from the source)')
    .option('--delimiter <char>', 'CSV field separator')
    .option('--no-header', 'the CSV has no header line')
    .option('--query <sql>', 'the SELECT to run against a postgres:// source')
    .action(
      (
        name: string,
        source: string,
        options: { format?: DataFormat; delimiter?: string; query?: string; header?: boolean },
      ) => addVersion(name, source, options, say),
    );
}
