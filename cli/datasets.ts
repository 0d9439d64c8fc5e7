/** `flywheel datasets …`: versions, profiles, diffs, aliases, the inferred contract, and ingest from the command line. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { and, desc, eq, inArray } from 'drizzle-orm';
import { Document, YAMLMap } from 'yaml';
import { resolveDatasetVersion } from '../activities/validate';
import { ConfigError } from '../config/pipeline';
import { categoricalPsi, psi } from '../ml/drift';
import type { ColumnProfile } from '../ml/profile';
import { inferContract } from '../ml/validation';
import { datasetAliases, datasets, datasetVersions, validationReports, type DatasetVersionRow } from '../schema/datasets';
import { modelVersions } from '../schema/models';
import { runs } from '../schema/runs';
import type { Db } from '../storage/db';
import { temporalClient } from '../storage/temporal';
import type { DataFormat } from '../storage/tables';
import { loadConfig } from '../temporal.config';
import type { DatasetWorkflowInput, DatasetWorkflowResult } from '../workflows/dataset';
import { DATASET_VERSION_KEY } from '../workflows/searchAttributes';
import { sparkline, table, when, withDb, type Say } from './output';
import { failureMessage, uiLink } from './pipelines';


/** `name`, `name@alias` or `name@hash-prefix`; a bare name means `latest`, else the newest version. */
export async function findVersion(db: Db, ref: string): Promise<DatasetVersionRow> {
  const at = ref.indexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const pointer = at < 0 ? 'latest' : ref.slice(at + 1);
  let id = await resolveDatasetVersion(db, name, pointer);
  if (!id && at >= 0) {
    const candidates = (await db.select({ id: datasetVersions.id }).from(datasetVersions).where(eq(datasetVersions.datasetName, name)))
      .filter((v) => v.id.slice(name.length + 1).startsWith(pointer));
    if (candidates.length > 1) throw new ConfigError(`${ref} is ambiguous: ${candidates.map((c) => c.id).join(', ')}`);
    id = candidates[0]?.id;
  }
  if (!id && at < 0) {
    const [newest] = await db.select({ id: datasetVersions.id }).from(datasetVersions).where(eq(datasetVersions.datasetName, name)).orderBy(desc(datasetVersions.createdAt)).limit(1);
    id = newest?.id;
  }
  const [version] = id ? await db.select().from(datasetVersions).where(eq(datasetVersions.id, id)) : [];
  if (!version) {
    const known = await db.select({ name: datasets.name }).from(datasets);
    throw new ConfigError(`no dataset version ${ref}${known.length ? ` (datasets: ${known.map((k) => k.name).join(', ')})` : ' (no datasets yet)'}`);
  }
  return version;
}

const num = (value: number | undefined): string => (value === undefined || Number.isNaN(value) ? '-' : String(Number(value.toPrecision(5))));
const psiText = (value: number): string => (value < 0.001 ? '0.000' : value.toFixed(3));
const pct = (part: number, whole: number): string => (whole ? `${Number(((100 * part) / whole).toPrecision(3))}%` : '-');

function profileRows(profile: ColumnProfile[]): string[][] {
  const rows = [['column', 'type', 'nulls', 'distinct', 'min', 'mean', 'std', 'p50', 'max', 'distribution / top values']];
  for (const p of profile) {
    const shape = p.sample?.length ? sparkline(p.sample, p.min!, p.max!) : (p.topValues ?? []).slice(0, 4).map((t) => `${t.value} ${pct(t.count, p.count - p.nulls)}`).join(', ');
    rows.push([p.name, p.type, pct(p.nulls, p.count), `${p.distinctApprox ? '~' : ''}${p.distinct}`, num(p.min), num(p.mean), num(p.std), num(p.quantiles?.p50), num(p.max), shape]);
  }
  return rows;
}

async function listDatasets(name: string | undefined, say: Say): Promise<void> {
  await withDb(async (db) => {
    if (!name) {
      const all = await db.select().from(datasets).orderBy(datasets.name);
      if (!all.length) return say('no datasets yet: run a pipeline or `flywheel datasets add <name> <source>`');
      const versions = await db.select().from(datasetVersions);
      const latest = await db.select().from(datasetAliases).where(eq(datasetAliases.alias, 'latest'));
      const rows = [['dataset', 'versions', 'latest', 'rows', 'last version']];
      for (const d of all) {
        const mine = versions.filter((v) => v.datasetName === d.name).sort((a, b) => +b.createdAt - +a.createdAt);
        const pointer = latest.find((l) => l.datasetName === d.name)?.versionId;
        rows.push([d.name, String(mine.length), pointer ?? '-', String(mine.find((v) => v.id === pointer)?.rowCount ?? '-'), mine[0] ? when(mine[0].createdAt) : '-']);
      }
      return table(rows, say);
    }
    const versions = await db.select().from(datasetVersions).where(eq(datasetVersions.datasetName, name)).orderBy(desc(datasetVersions.createdAt));
    if (!versions.length) throw new ConfigError(`dataset ${name} has no versions`);
    const aliases = await db.select().from(datasetAliases).where(eq(datasetAliases.datasetName, name));
    const reports = await db.select().from(validationReports).where(inArray(validationReports.datasetVersionId, versions.map((v) => v.id))).orderBy(desc(validationReports.createdAt));
    const rows = [['version', 'created', 'format', 'rows', 'columns', 'validation', 'aliases']];
    for (const v of versions) {
      const report = reports.find((r) => r.datasetVersionId === v.id);
      const verdict = report ? (report.passed ? `passed${report.warningCount ? ` (${report.warningCount} warnings)` : ''}` : `FAILED (${report.errorCount} errors)`) : 'not validated';
      rows.push([v.id, when(v.createdAt), v.format, String(v.rowCount), String(v.columns.length), verdict, aliases.filter((a) => a.versionId === v.id).map((a) => a.alias).join(', ')]);
    }
    table(rows, say);
  });
}

async function showVersion(ref: string, say: Say): Promise<void> {
  await withDb(async (db) => {
    const v = await findVersion(db, ref);
    const aliases = await db.select().from(datasetAliases).where(eq(datasetAliases.versionId, v.id));
    say(`${v.id}${aliases.length ? `  (${aliases.map((a) => `@${a.alias}`).join(' ')})` : ''}`);
    say(`  source    ${v.sourceUri}  (${v.format})`);
    say(`  stored    s3://${loadConfig().s3.bucket}/${v.objectKey}  ${v.rowCount} rows, ${v.byteSize} bytes canonical CSV`);
    say(`  sha256    ${v.contentHash}`);
    say(`  created   ${when(v.createdAt)} by ${v.createdByWorkflowId ?? '-'}`);
    say('');
    table(profileRows(v.profile), say);
    const reports = await db.select().from(validationReports).where(eq(validationReports.datasetVersionId, v.id)).orderBy(desc(validationReports.createdAt)).limit(5);
    if (reports.length) {
      say('\nvalidation');
      for (const r of reports) {
        say(`  ${when(r.createdAt)}  ${r.passed ? 'passed' : 'FAILED'}  ${r.errorCount} errors, ${r.warningCount} warnings  (${r.workflowId})`);
        for (const issue of r.summary.slice(0, 5)) say(`    ${issue.severity}: ${issue.message}`);
      }
    }
    const usedBy = await db.select().from(runs).where(eq(runs.datasetVersionId, v.id)).orderBy(desc(runs.startedAt));
    const models = await db.select().from(modelVersions).where(eq(modelVersions.datasetVersionId, v.id));
    say('\nlineage');
    if (!usedBy.length && !models.length) say('  no run has used this version yet');
    for (const run of usedBy) say(`  run ${run.id}  ${run.status}  pipeline ${run.pipelineName}  (${when(run.startedAt)})`);
    for (const m of models) say(`  model ${m.modelName} v${m.version}  from run ${m.runId}`);
  });
}

async function diffVersions(refA: string, refB: string, say: Say): Promise<void> {
  await withDb(async (db) => {
    const a = await findVersion(db, refA);
    const b = await findVersion(db, refB);
    say(`${a.id}  →  ${b.id}`);
    say(`  rows ${a.rowCount} → ${b.rowCount}  (${b.rowCount >= a.rowCount ? '+' : ''}${b.rowCount - a.rowCount})`);
    const pa = new Map(a.profile.map((p) => [p.name, p]));
    const pb = new Map(b.profile.map((p) => [p.name, p]));
    const schema: string[] = [];
    for (const [name, p] of pa) {
      const q = pb.get(name);
      if (!q) schema.push(`  - removed  ${name} (${p.type})`);
      else if (q.type !== p.type) schema.push(`  ~ type     ${name}: ${p.type} → ${q.type}`);
    }
    for (const [name, q] of pb) if (!pa.has(name)) schema.push(`  + added    ${name} (${q.type})`);
    say(schema.length ? `\nschema changes\n${schema.join('\n')}` : '\nschema: same columns and types');
    say('\nper column (a → b)');
    const rows = [['column', 'nulls', 'distinct', 'mean', 'std', 'min', 'max', 'PSI', 'a | b']];
    for (const [name, p] of pa) {
      const q = pb.get(name);
      if (!q) continue;
      const arrow = (x: string, y: string) => (x === y ? x : `${x} → ${y}`);
      let drift = '-';
      let shape = '';
      if (p.bins && q.sample?.length) {
        drift = psiText(psi(p.bins, q.sample));
        const lo = Math.min(p.min!, q.min!), hi = Math.max(p.max!, q.max!);
        shape = `${sparkline(p.sample ?? [], lo, hi, 12)} | ${sparkline(q.sample, lo, hi, 12)}`;
      } else if (p.topValues && q.topValues) {
        // b's values beyond its top list go to the "other" bucket, like a's.
        const current = new Map(q.topValues.map((t) => [t.value, t.count]));
        current.set('\u0000other', q.count - q.nulls - q.topValues.reduce((sum, t) => sum + t.count, 0));
        drift = psiText(categoricalPsi(p.topValues, Math.max(1, p.count - p.nulls), current));
      }
      rows.push([
        name, arrow(pct(p.nulls, p.count), pct(q.nulls, q.count)), arrow(String(p.distinct), String(q.distinct)), arrow(num(p.mean), num(q.mean)),
        arrow(num(p.std), num(q.std)), arrow(num(p.min), num(q.min)), arrow(num(p.max), num(q.max)), drift, shape,
      ]);
    }
    table(rows, say);
    say('\nPSI: < 0.1 stable, 0.1–0.25 moderate, ≥ 0.25 major shift (same test as validation and monitoring).');
  });
}

async function setAlias(ref: string, alias: string, say: Say): Promise<void> {
  if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/i.test(alias)) throw new ConfigError(`alias "${alias}" must be 1-63 letters, digits, ".", "_" or "-"`);
  await withDb(async (db) => {
    const v = await findVersion(db, ref);
    const [before] = await db.select().from(datasetAliases).where(and(eq(datasetAliases.datasetName, v.datasetName), eq(datasetAliases.alias, alias)));
    await db.insert(datasetAliases).values({ datasetName: v.datasetName, alias, versionId: v.id, updatedBy: `cli:${process.env.USER ?? 'unknown'}` })
      .onConflictDoUpdate({ target: [datasetAliases.datasetName, datasetAliases.alias], set: { versionId: v.id, updatedBy: `cli:${process.env.USER ?? 'unknown'}`, updatedAt: new Date() } });
    say(`${v.datasetName}@${alias} → ${v.id}${before && before.versionId !== v.id ? ` (was ${before.versionId})` : ''}`);
  });
}

async function printSchema(ref: string, say: Say): Promise<void> {
  await withDb(async (db) => {
    const v = await findVersion(db, ref);
    const [dataset] = await db.select().from(datasets).where(eq(datasets.name, v.datasetName));
    const pinned = dataset?.inferredContract && dataset.inferredFrom === v.id;
    const inferred = pinned ? dataset!.inferredContract! : inferContract(v.profile);
    // Postgres jsonb does not keep key order: list columns in the data's order.
    const columns = v.profile.filter((p) => inferred.columns[p.name]).map((p) => {
      const { type, nullable, ...rest } = inferred.columns[p.name]!;
      return [p.name, { type, nullable, ...rest }];
    });
    const contract = { columns: Object.fromEntries(columns), allowExtraColumns: inferred.allowExtraColumns, minRows: inferred.minRows };
    say(`# Contract ${pinned ? 'in use for' : 'inferred from'} ${v.id}. Review it, add ranges (min/max), "unique" or "mostly",`);
    say('# and paste it as `schema:` in the pipeline config to pin it.');
    const doc = new Document({ schema: contract });
    const node = doc.getIn(['schema', 'columns']) as YAMLMap;
    for (const item of node.items) (item.value as YAMLMap).flow = true;
    say(doc.toString({ lineWidth: 0 }).trimEnd());
  });
}

async function addVersion(name: string, source: string, options: { format?: DataFormat; delimiter?: string; query?: string; header?: boolean }, say: Say): Promise<void> {
  const config = loadConfig();
  const client = await temporalClient(config.temporal);
  const input: DatasetWorkflowInput = {
    dataset: name,
    table: { source: /^[a-z]+:\/\//.test(source) ? source : resolve(source), format: options.format, delimiter: options.delimiter, query: options.query, header: options.header },
  };
  const workflowId = `dataset-${name}-${Date.now().toString(36)}`;
  const handle = await client.workflow.start('datasetWorkflow', {
    workflowId, taskQueue: config.taskQueues.main, args: [input], typedSearchAttributes: [{ key: DATASET_VERSION_KEY, value: name }],
  });
  say(`started ${workflowId}\n  ${uiLink(config, workflowId)}`);
  let shown = -1;
  const progress = setInterval(() => {
    handle.describe().then((d) => {
      const bytes = (d.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.length ? decodeBytes(d.raw.pendingActivities[0]!.heartbeatDetails!.payloads![0]!.data) : undefined);
      if (bytes !== undefined && bytes !== shown) {
        shown = bytes;
        say(`  … ${(bytes / 2 ** 20).toFixed(0)} MiB read`);
      }
    }, () => undefined);
  }, 1000);
  try {
    const result = (await handle.result()) as DatasetWorkflowResult;
    const { version, validation } = result;
    say(`${version.datasetVersionId}: ${version.rowCount} rows from ${version.format}${version.reused ? ' (same content as an existing version; nothing uploaded)' : ''}`);
    say(`  validation passed (${validation.contract} contract${validation.reference ? `, distributions checked against ${validation.reference}` : ''})`);
    for (const warning of validation.warnings) say(`  warning: ${warning}`);
  } catch (error) {
    throw new Error(`dataset ${name}: ${failureMessage(error)}`);
  } finally {
    clearInterval(progress);
  }
}

function decodeBytes(data: Uint8Array | null | undefined): number | undefined {
  if (!data) return undefined;
  try {
    const value = JSON.parse(Buffer.from(data).toString()) as { bytes?: number };
    return typeof value.bytes === 'number' ? value.bytes : undefined;
  } catch {
    return undefined;
  }
}

export function registerDatasetCommands(program: Command, say: Say): void {
  const command = program.command('datasets').description('dataset versions: list, show, diff, alias, schema, add');
  command.command('list [name]').description('all datasets, or the versions of one').action((name?: string) => listDatasets(name, say));
  command.command('show <ref>').description('a version (name, name@alias or name@hash) with its profile, validation and lineage')
    .action((ref: string) => showVersion(ref, say));
  command.command('diff <a> <b>').description('schema and per-column statistic changes between two versions, side by side')
    .action((a: string, b: string) => diffVersions(a, b, say));
  command.command('alias <ref> <alias>').description('point a custom alias (e.g. "golden") at a version').action((ref: string, alias: string) => setAlias(ref, alias, say));
  command.command('schema <ref>').description('print the contract inferred from a version, ready to pin in a pipeline config')
    .action((ref: string) => printSchema(ref, say));
  command.command('add <name> <source>').description('ingest and validate a file, URL, s3:// object or postgres:// query as a new version')
    .option('--format <format>', 'csv, jsonl, parquet or sql (default: from the source)')
    .option('--delimiter <char>', 'CSV field separator')
    .option('--no-header', 'the CSV has no header line')
    .option('--query <sql>', 'the SELECT to run against a postgres:// source')
    .action((name: string, source: string, options: { format?: DataFormat; delimiter?: string; query?: string; header?: boolean }) => addVersion(name, source, options, say));
}
