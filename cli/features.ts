/**
 * `flywheel features …`: register feature views declared in a TypeScript file (read here, sent as JSON), load their
 * sources, materialise them into the online store (now, or on a Temporal Schedule), look entities up, and show each
 * view's statistics — all over the API.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { tsImport } from 'tsx/esm/api';
import { ConfigError } from '../config/pipeline';
import { isFeatureView, outputFeatures, type FeatureView } from '../features/define';
import { ttlSeconds } from '../features/sql';
import type { FeatureStatistics } from '../features/store';
import type { MaterializeResult } from '../features/workflow';
import { api, ApiCallError } from './api';
import { followJob } from './jobs';
import { table, when, type Say } from './output';

/** What the API answers for a view (dates as ISO strings). */
interface ViewJson {
  ref: string;
  name: string;
  version: number;
  definition: FeatureView;
  offlineTable: string;
  loadedFrom: string | null;
  loadedAt: string | null;
  rowCount: number | null;
  materializedUntil: string | null;
}

const path = (ref: string, ...parts: string[]) =>
  `/api/v1/features/${[ref, ...parts].map(encodeURIComponent).join('/')}`;

async function apply(file: string, say: Say): Promise<void> {
  let module: Record<string, unknown>;
  try {
    // tsImport loads the file as an ES module wherever it lives (a plain import would follow the nearest package.json).
    module = (await tsImport(pathToFileURL(resolve(file)).href, import.meta.url)) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`cannot load feature views from ${file}: ${(error as Error).message}`, file);
  }
  const views = Object.values(module).filter(isFeatureView);
  if (!views.length)
    throw new ConfigError(
      `${file} exports no feature view (declare them with defineFeatureView and export them)`,
      file,
    );
  let answer: { views: { ref: string; created: boolean; entities: string[]; features: string[]; ttl: string }[] };
  try {
    answer = await api('POST', '/api/v1/features', { views });
  } catch (error) {
    // The server names `body.views[i]`: the line says which view of which file.
    if (!(error instanceof ApiCallError)) throw error;
    const message = error.message
      .replace(/^body\.views\[(\d+)\]\.?/, (_, i: string) => `feature view ${views[Number(i)]?.name ?? i}: `)
      .replace(/: : /, ': ');
    throw new ConfigError(`${file}: ${message}`, file);
  }
  for (const view of answer.views) {
    say(
      `${view.ref}  ${view.created ? 'registered' : 'unchanged'}  entities ${view.entities.join(', ')}; ${view.features.length} features; ttl ${view.ttl}`,
    );
  }
}

async function load(ref: string, say: Say): Promise<void> {
  const started = performance.now();
  const { workflowId } = await api<{ workflowId: string }>('POST', path(ref, 'load'));
  const job = await followJob<{ ref: string; rows: number; loadedFrom: string }>(
    path(ref, 'jobs', workflowId),
    (progress) => {
      if (typeof progress.rows === 'number') process.stderr.write(`\r  ${progress.rows.toLocaleString('en-US')} rows`);
    },
  );
  process.stderr.write('\n');
  if (!job.result) throw new Error(`feature view ${ref}: ${job.failure ?? job.status}`);
  const result = job.result;
  say(
    `${result.ref}: ${result.rows.toLocaleString('en-US')} rows from ${result.loadedFrom} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

async function list(say: Say): Promise<void> {
  const { views } = await api<{ views: ViewJson[] }>('GET', '/api/v1/features');
  if (!views.length) return say('no feature views yet (flywheel features apply <file.ts>)');
  table(
    [
      ['VIEW', 'ENTITIES', 'FEATURES', 'TTL', 'ROWS', 'LOADED', 'MATERIALIZED UNTIL'],
      ...views.map((r) => [
        r.ref,
        r.definition.entities.join(','),
        String(outputFeatures(r.definition).length),
        r.definition.ttl,
        r.rowCount?.toLocaleString('en-US') ?? '-',
        when(r.loadedAt),
        when(r.materializedUntil),
      ]),
    ],
    say,
  );
}

async function show(ref: string, say: Say): Promise<void> {
  const row = await api<ViewJson & { statistics: FeatureStatistics[] | null }>('GET', path(ref));
  const view = row.definition;
  say(`${row.ref}${view.description ? `  ${view.description}` : ''}`);
  table(
    [
      ['entities', view.entities.join(', ')],
      ['timestamp', `${view.timestamp}${view.createdTimestamp ? ` (ties: ${view.createdTimestamp})` : ''}`],
      ['ttl', `${view.ttl} (${ttlSeconds(view)} s)`],
      ['source', 'query' in view.source ? view.source.query : `dataset ${view.source.dataset}`],
      [
        'offline table',
        `${row.offlineTable}: ${row.rowCount?.toLocaleString('en-US') ?? 'not loaded'} rows, loaded ${when(row.loadedAt)} from ${row.loadedFrom ?? '-'}`,
      ],
      [
        'online',
        `materialised until ${when(row.materializedUntil)}; unknown entities ${view.onMissing === 'error' ? 'refused (404)' : 'get nulls'}`,
      ],
    ],
    say,
  );
  if (!row.statistics) return;
  // Statistics per feature, from the offline table (the training data's profile feeds the drift monitor).
  const fmt = (v: number | null) => (v === null ? '-' : String(Number(v.toPrecision(5))));
  const stats: string[][] = [['FEATURE', 'TYPE', 'NON-NULL', 'NULL %', 'MIN', 'MEAN', 'MAX', 'DISTINCT']];
  for (const s of row.statistics) {
    stats.push([
      s.feature,
      s.type,
      s.nonNull.toLocaleString('en-US'),
      s.total ? ((1 - s.nonNull / s.total) * 100).toFixed(1) : '-',
      fmt(s.min),
      fmt(s.mean),
      fmt(s.max),
      s.distinct.toLocaleString('en-US'),
    ]);
  }
  for (const [name, t] of Object.entries(view.transforms))
    stats.push([name, `${t.type} (on demand)`, '', '', '', '', '', t.expression]);
  table(stats, say);
}

async function materialize(
  ref: string,
  options: { until?: string; window?: string; full?: boolean; load: boolean },
  say: Say,
): Promise<void> {
  if (options.until && Number.isNaN(Date.parse(options.until)))
    throw new ConfigError(`--until must be an ISO 8601 time, got "${options.until}"`);
  const { workflowId, uiUrl } = await api<{ workflowId: string; uiUrl: string }>('POST', path(ref, 'materialize'), {
    until: options.until,
    window: options.window,
    full: options.full,
    load: options.load,
  });
  say(`materialising ${ref}: workflow ${workflowId} (${uiUrl})`);
  const job = await followJob<MaterializeResult>(path(ref, 'jobs', workflowId));
  if (!job.result) throw new Error(job.failure ?? `materialising ${ref}: ${job.status}`);
  const result = job.result;
  say(
    `${result.ref}: ${result.loadedRows !== undefined ? `${result.loadedRows.toLocaleString('en-US')} rows loaded; ` : ''}${result.windows} windows, ${result.upserted.toLocaleString('en-US')} entities written; online until ${result.watermark ?? '-'}`,
  );
}

async function schedule(
  ref: string,
  options: { every: string; id?: string; window?: string },
  say: Say,
): Promise<void> {
  if (!/^\d+(s|m|h|d)$/.test(options.every))
    throw new ConfigError(`--every must be a duration such as 15m or 1h, got "${options.every}"`);
  const { scheduleId } = await api<{ scheduleId: string }>('POST', path(ref, 'schedules'), {
    every: options.every,
    id: options.id,
    window: options.window,
  });
  say(`schedule ${scheduleId}: materialise ${ref} every ${options.every} (flywheel schedule describe ${scheduleId})`);
}

async function get(ref: string, pairs: string[], say: Say): Promise<void> {
  const entity = Object.fromEntries(
    pairs.map((p) => {
      const at = p.indexOf('=');
      if (at < 1) throw new ConfigError(`entity keys are key=value, got "${p}"`);
      return [p.slice(0, at), p.slice(at + 1)];
    }),
  );
  const { values } = await api<{ values: Record<string, unknown> }>('GET', path(ref, 'online'), undefined, entity);
  say(JSON.stringify(values, null, 2));
}

export function registerFeatureCommands(program: Command, say: Say): void {
  const features = program.command('features').description('the feature store: views, offline and online stores');
  features
    .command('apply <file>')
    .description('register (or version) every feature view a TypeScript file exports')
    .action((file: string) => apply(file, say));
  features
    .command('list')
    .description('registered views, their rows and materialisation watermark')
    .action(() => list(say));
  features
    .command('show <view>')
    .description('definition and per-feature statistics of name[@version]')
    .action((ref: string) => show(ref, say));
  features
    .command('load <view>')
    .description("load the view's source into its offline table")
    .action((ref: string) => load(ref, say));
  features
    .command('materialize <view>')
    .description('load, then write the latest values per entity into the online store (incremental)')
    .option('--until <time>', 'event time to materialise up to (ISO 8601; default now)')
    .option('--window <d>', 'event time per activity (default 1d)')
    .option('--full', 'clear the online rows and start from the oldest event')
    .option('--no-load', 'skip reloading the offline table')
    .action((ref: string, options: { until?: string; window?: string; full?: boolean; load: boolean }) =>
      materialize(ref, options, say),
    );
  features
    .command('schedule <view>')
    .description('materialise on a Temporal Schedule')
    .requiredOption('--every <d>', 'interval, e.g. 15m')
    .option('--id <id>', 'schedule id')
    .option('--window <d>', 'event time per activity')
    .action((ref: string, options: { every: string; id?: string; window?: string }) => schedule(ref, options, say));
  features
    .command('get <view> <keys...>')
    .description('online values for one entity: key=value …')
    .action((ref: string, keys: string[]) => get(ref, keys, say));
}
