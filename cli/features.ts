/**
 * `flywheel features …`: register feature views from a TypeScript file, load their sources, materialise them into the
 * online store (now, or on a Temporal Schedule), look entities up, and show each view's statistics.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { Command } from 'commander';
import { tsImport } from 'tsx/esm/api';
import { asc } from 'drizzle-orm';
import { findFeatureView, loadFeatureSource, registerFeatureView } from '../activities/features';
import { ConfigError } from '../config/pipeline';
import { isFeatureView, outputFeatures } from '../features/define';
import { quote, servedView, ttlSeconds, viewRef } from '../features/sql';
import { featureViews } from '../schema/features';
import { S3ObjectStore } from '../storage/objectStore';
import { temporalClient } from '../storage/temporal';
import { loadConfig } from '../temporal.config';
import { withOnlineFeatures } from '../serving/onlineFeatures';
import type { MaterializeInput, MaterializeResult } from '../workflows/features';
import { table, when, withDb, type Say } from './output';
import { failureMessage, uiLink } from './pipelines';


async function apply(file: string, say: Say): Promise<void> {
  let module: Record<string, unknown>;
  try {
    // tsImport loads the file as an ES module wherever it lives (a plain import would follow the nearest package.json).
    module = await tsImport(pathToFileURL(resolve(file)).href, import.meta.url) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`cannot load feature views from ${file}: ${(error as Error).message}`, file);
  }
  const views = Object.values(module).filter(isFeatureView);
  if (!views.length) throw new ConfigError(`${file} exports no feature view (declare them with defineFeatureView and export them)`, file);
  await withDb(async (db) => {
    for (const view of views) {
      const { row, created } = await registerFeatureView(db, view);
      say(`${viewRef(row.name, row.version)}  ${created ? 'registered' : 'unchanged'}  entities ${view.entities.join(', ')}; ${outputFeatures(view).length} features; ttl ${view.ttl}`);
    }
  });
}

async function load(ref: string, say: Say): Promise<void> {
  const config = loadConfig();
  await withDb(async (db) => {
    const row = await findFeatureView(db, ref);
    const started = performance.now();
    const result = await loadFeatureSource(db, new S3ObjectStore(config.s3), row, (rows) => process.stderr.write(`\r  ${rows.toLocaleString('en-US')} rows`));
    process.stderr.write('\n');
    say(`${viewRef(row.name, row.version)}: ${result.rows.toLocaleString('en-US')} rows from ${result.loadedFrom} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
}

async function list(say: Say): Promise<void> {
  await withDb(async (db) => {
    const rows = await db.select().from(featureViews).orderBy(asc(featureViews.name), asc(featureViews.version));
    if (!rows.length) return say('no feature views yet (flywheel features apply <file.ts>)');
    table([['VIEW', 'ENTITIES', 'FEATURES', 'TTL', 'ROWS', 'LOADED', 'MATERIALIZED UNTIL'],
      ...rows.map((r) => [viewRef(r.name, r.version), r.definition.entities.join(','), String(outputFeatures(r.definition).length), r.definition.ttl,
        r.rowCount?.toLocaleString('en-US') ?? '-', when(r.loadedAt), when(r.materializedUntil)])], say);
  });
}

async function show(ref: string, say: Say): Promise<void> {
  await withDb(async (db) => {
    const row = await findFeatureView(db, ref);
    const view = row.definition;
    say(`${viewRef(row.name, row.version)}${view.description ? `  ${view.description}` : ''}`);
    table([
      ['entities', view.entities.join(', ')], ['timestamp', `${view.timestamp}${view.createdTimestamp ? ` (ties: ${view.createdTimestamp})` : ''}`],
      ['ttl', `${view.ttl} (${ttlSeconds(view)} s)`], ['source', 'query' in view.source ? view.source.query : `dataset ${view.source.dataset}`],
      ['offline table', `${row.offlineTable}: ${row.rowCount?.toLocaleString('en-US') ?? 'not loaded'} rows, loaded ${when(row.loadedAt)} from ${row.loadedFrom ?? '-'}`],
      ['online', `materialised until ${when(row.materializedUntil)}; unknown entities ${view.onMissing === 'error' ? 'refused (404)' : 'get nulls'}`],
    ], say);
    if (!row.loadedAt) return;
    // Statistics per feature, from the offline table (the training data's profile feeds the drift monitor).
    const stats: string[][] = [['FEATURE', 'TYPE', 'NON-NULL', 'NULL %', 'MIN', 'MEAN', 'MAX', 'DISTINCT']];
    for (const [feature, type] of Object.entries(view.features)) {
      const numeric = type === 'number' || type === 'integer';
      const { rows } = await db.$client.query(`SELECT count(${quote(feature)})::bigint AS n, count(*)::bigint AS total,
        ${numeric ? `min(${quote(feature)})::float8 AS lo, avg(${quote(feature)})::float8 AS mean, max(${quote(feature)})::float8 AS hi` : 'NULL AS lo, NULL AS mean, NULL AS hi'},
        count(DISTINCT ${quote(feature)})::bigint AS distinct FROM ${quote(row.offlineTable)}`);
      const s = rows[0] as { n: string; total: string; lo: number | null; mean: number | null; hi: number | null; distinct: string };
      const fmt = (v: number | null) => (v === null ? '-' : String(Number(v.toPrecision(5))));
      stats.push([feature, type, Number(s.n).toLocaleString('en-US'), Number(s.total) ? ((1 - Number(s.n) / Number(s.total)) * 100).toFixed(1) : '-', fmt(s.lo), fmt(s.mean), fmt(s.hi), Number(s.distinct).toLocaleString('en-US')]);
    }
    for (const [name, t] of Object.entries(view.transforms)) stats.push([name, `${t.type} (on demand)`, '', '', '', '', '', t.expression]);
    table(stats, say);
  });
}

async function materialize(ref: string, options: { until?: string; window?: string; full?: boolean; load: boolean }, say: Say): Promise<void> {
  if (options.until && Number.isNaN(Date.parse(options.until))) throw new ConfigError(`--until must be an ISO 8601 time, got "${options.until}"`);
  const config = loadConfig();
  const client = await temporalClient(config.temporal);
  const workflowId = `materialize-${ref.replace(/@/g, '-v')}-${Date.now().toString(36)}`;
  try {
    const input: MaterializeInput = { view: ref, until: options.until, window: options.window, full: options.full, load: options.load };
    const handle = await client.workflow.start('materializeWorkflow', { workflowId, taskQueue: config.taskQueues.main, args: [input] });
    say(`materialising ${ref}: workflow ${workflowId} (${uiLink(config, workflowId)})`);
    const result = await handle.result() as MaterializeResult;
    say(`${result.ref}: ${result.loadedRows !== undefined ? `${result.loadedRows.toLocaleString('en-US')} rows loaded; ` : ''}${result.windows} windows, ${result.upserted.toLocaleString('en-US')} entities written; online until ${result.watermark ?? '-'}`);
  } catch (error) {
    throw new Error(failureMessage(error));
  } finally {
    await client.connection.close();
  }
}

async function schedule(ref: string, options: { every: string; id?: string; window?: string }, say: Say): Promise<void> {
  if (!/^\d+(s|m|h|d)$/.test(options.every)) throw new ConfigError(`--every must be a duration such as 15m or 1h, got "${options.every}"`);
  const config = loadConfig();
  await withDb((db) => findFeatureView(db, ref));
  const client = await temporalClient(config.temporal);
  const scheduleId = options.id ?? `materialize-${ref.replace(/@/g, '-v')}`;
  try {
    const input: MaterializeInput = { view: ref, window: options.window };
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: options.every }] },
      action: { type: 'startWorkflow', workflowType: 'materializeWorkflow', taskQueue: config.taskQueues.main, args: [input] },
      // A slow run is never doubled: the next one waits (the watermark makes it pick up where that one ended).
      policies: { overlap: ScheduleOverlapPolicy.BUFFER_ONE },
      // What `flywheel schedule list | describe` show as its calendar.
      memo: { cron: `every ${options.every}`, view: ref },
    });
    say(`schedule ${scheduleId}: materialise ${ref} every ${options.every} (flywheel schedule describe ${scheduleId})`);
  } finally {
    await client.connection.close();
  }
}

async function get(ref: string, pairs: string[], say: Say): Promise<void> {
  const entity = Object.fromEntries(pairs.map((p) => {
    const at = p.indexOf('=');
    if (at < 1) throw new ConfigError(`entity keys are key=value, got "${p}"`);
    return [p.slice(0, at), p.slice(at + 1)];
  }));
  await withDb(async (db) => {
    const row = await findFeatureView(db, ref);
    const view = servedView(row);
    const [values] = await withOnlineFeatures(db, [view], new Set(view.entities), [entity]);
    say(JSON.stringify(values, null, 2));
  });
}

export function registerFeatureCommands(program: Command, say: Say): void {
  const features = program.command('features').description('the feature store: views, offline and online stores');
  features.command('apply <file>').description('register (or version) every feature view a TypeScript file exports').action((file: string) => apply(file, say));
  features.command('list').description('registered views, their rows and materialisation watermark').action(() => list(say));
  features.command('show <view>').description('definition and per-feature statistics of name[@version]').action((ref: string) => show(ref, say));
  features.command('load <view>').description("load the view's source into its offline table").action((ref: string) => load(ref, say));
  features.command('materialize <view>').description('load, then write the latest values per entity into the online store (incremental)')
    .option('--until <time>', 'event time to materialise up to (ISO 8601; default now)')
    .option('--window <d>', 'event time per activity (default 1d)')
    .option('--full', 'clear the online rows and start from the oldest event')
    .option('--no-load', 'skip reloading the offline table')
    .action((ref: string, options: { until?: string; window?: string; full?: boolean; load: boolean }) => materialize(ref, options, say));
  features.command('schedule <view>').description('materialise on a Temporal Schedule')
    .requiredOption('--every <d>', 'interval, e.g. 15m').option('--id <id>', 'schedule id').option('--window <d>', 'event time per activity')
    .action((ref: string, options: { every: string; id?: string; window?: string }) => schedule(ref, options, say));
  features.command('get <view> <keys...>').description('online values for one entity: key=value …').action((ref: string, keys: string[]) => get(ref, keys, say));
}
