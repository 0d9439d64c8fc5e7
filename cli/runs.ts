/** `flywheel runs …` and `flywheel reproduce`: search, inspect and compare tracked runs; re-run one and check it. */
import type { Command } from 'commander';
import { asc, eq, inArray } from 'drizzle-orm';
import { lossPlotKey } from '../activities/train';
import { ConfigError } from '../config/pipeline';
import { FilterError, matches, parseFilter, parseOrderBy, sortRuns, type RunView } from '../ml/runFilter';
import { modelVersions } from '../schema/models';
import { runMetrics, runs, type RunRow } from '../schema/runs';
import type { Db } from '../storage/db';
import { temporalClient } from '../storage/temporal';
import { loadConfig } from '../temporal.config';
import type { ReproduceResult } from '../workflows/reproduce';
import { barLine, table, withDb, type Say } from './output';
import { failureMessage, uiLink } from './pipelines';


export function runView(run: RunRow): RunView & { row: RunRow } {
  return {
    row: run,
    metrics: run.metrics ?? {},
    params: run.params,
    tags: run.tags,
    attributes: {
      id: run.id, status: run.status, backend: run.backend, experiment: run.experiment, pipeline: run.pipelineName, model: run.modelName,
      dataset: run.datasetVersionId, started: run.startedAt.toISOString(), ended: run.endedAt?.toISOString() ?? null,
      sweep: run.sweepId, trial: run.trial, queue: run.taskQueue,
    },
  };
}

const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)))) : v === undefined || v === null ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** Runs by id or unique id prefix. */
async function findRuns(db: Db, refs: string[]): Promise<RunRow[]> {
  const all = await db.select().from(runs);
  return refs.map((ref) => {
    const found = all.filter((r) => r.id === ref || r.id.startsWith(ref) || r.id === `run-${ref}`);
    if (found.length === 0) throw new ConfigError(`no run ${ref}`);
    if (found.length > 1) throw new ConfigError(`run ${ref} is ambiguous: ${found.slice(0, 5).map((r) => r.id).join(', ')}`);
    return found[0]!;
  });
}

async function listRuns(options: { filter?: string; orderBy?: string; experiment?: string; limit: string }, say: Say): Promise<void> {
  let filter, order;
  try {
    filter = parseFilter(options.filter ?? '');
    order = parseOrderBy(options.orderBy ?? 'started desc');
  } catch (error) {
    if (error instanceof FilterError) throw new ConfigError(error.message);
    throw error;
  }
  await withDb(async (db) => {
    const rows = options.experiment ? await db.select().from(runs).where(eq(runs.experiment, options.experiment)) : await db.select().from(runs);
    const found = sortRuns(rows.map(runView).filter((r) => matches(r, filter)), order).slice(0, Number(options.limit));
    if (!found.length) return say('no runs match');
    const metricKeys = ['holdout_rmse', 'holdout_r2', 'holdout_accuracy', 'holdout_f1', 'objective'].filter((k) => found.some((r) => r.metrics[k] !== undefined));
    const out = [['run', 'experiment', 'status', 'started', 'backend', 'lr', 'hidden', 'batch', ...metricKeys]];
    for (const r of found) {
      const p = r.params as { learningRate?: number; batchSize?: number; model?: { hiddenUnits?: number[]; type?: string } };
      out.push([
        r.row.id, r.row.experiment + (r.row.trial !== null ? ` #${r.row.trial + 1}` : ''), r.row.status, r.row.startedAt.toISOString().slice(0, 19).replace('T', ' '),
        r.row.backend ?? '-', fmt(p.learningRate), p.model?.type === 'linear' ? 'linear' : fmt(p.model?.hiddenUnits), fmt(p.batchSize),
        ...metricKeys.map((k) => fmt(r.metrics[k])),
      ]);
    }
    table(out, say);
    say(`${found.length} run(s)`);
  });
}

function flatten(value: unknown, prefix = ''): [string, unknown][] {
  if (value && typeof value === 'object' && !Array.isArray(value)) return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  return [[prefix, value]];
}

async function stepSeries(db: Db, ids: string[]): Promise<Map<string, Map<string, { step: number; value: number }[]>>> {
  const points = ids.length ? await db.select().from(runMetrics).where(inArray(runMetrics.runId, ids)).orderBy(asc(runMetrics.step)) : [];
  const out = new Map<string, Map<string, { step: number; value: number }[]>>();
  for (const p of points) {
    if (!out.has(p.key)) out.set(p.key, new Map());
    const byRun = out.get(p.key)!;
    if (!byRun.has(p.runId)) byRun.set(p.runId, []);
    byRun.get(p.runId)!.push({ step: p.step, value: p.value });
  }
  return out;
}

async function showRun(ref: string, say: Say): Promise<void> {
  await withDb(async (db) => {
    const [run] = await findRuns(db, [ref]);
    const r = run!;
    say(`${r.id}  ${r.status}${r.error ? `: ${r.error}` : ''}`);
    const rows = [
      ['experiment', r.experiment], ['pipeline', r.pipelineName ?? '-'], ['registered model', r.modelName ?? '-'], ['dataset', r.datasetVersionId ?? '-'],
      ['workflow', r.workflowId ?? '-'], ['sweep', r.sweepId ? `${r.sweepId} trial ${r.trial}` : '-'], ['backend', `${r.backend ?? '-'} on ${r.taskQueue ?? '-'}`],
      ['seed', String(r.seed)], ['code', r.codeVersion ?? '-'], ['started', r.startedAt.toISOString()], ['ended', r.endedAt?.toISOString() ?? '-'],
      ['model', r.artifactKey ? `s3://${loadConfig().s3.bucket}/${r.artifactKey}` : '-'],
      ['loss plot', r.artifactKey && r.modelName ? `s3://${loadConfig().s3.bucket}/${lossPlotKey(r.modelName, r.id)}` : '-'],
    ];
    table(rows, say);
    say('\nparams');
    table(flatten(r.params).map(([k, v]) => [k, fmt(v)]), say);
    if (Object.keys(r.tags).length) {
      say('\ntags');
      table(Object.entries(r.tags).map(([k, v]) => [k, v]), say);
    }
    say('\nmetrics');
    table(Object.entries(r.metrics ?? {}).map(([k, v]) => [k, fmt(v)]), say);
    const series = await stepSeries(db, [r.id]);
    if (series.size) {
      say('\nper epoch');
      for (const [key, byRun] of series) {
        const values = byRun.get(r.id)!.map((p) => p.value);
        say(`  ${key.padEnd(10)} ${barLine(values)}  ${fmt(values[0])} → ${fmt(values[values.length - 1])}`);
      }
    }
    const models = await db.select().from(modelVersions).where(eq(modelVersions.runId, r.id));
    for (const m of models) say(`\nregistered as ${m.modelName} v${m.version}`);
  });
}

/** A small multi-series terminal chart: one digit per run, shared axes. */
export function lineChart(series: { label: string; points: { step: number; value: number }[] }[], height = 10, width = 48): string[] {
  const all = series.flatMap((s) => s.points);
  if (!all.length) return [];
  const minX = Math.min(...all.map((p) => p.step)), maxX = Math.max(...all.map((p) => p.step));
  const minY = Math.min(...all.map((p) => p.value)), maxY = Math.max(...all.map((p) => p.value));
  const grid = Array.from({ length: height }, () => new Array<string>(width).fill(' '));
  series.forEach((s, k) => {
    for (const p of s.points) {
      const x = maxX > minX ? Math.round(((p.step - minX) / (maxX - minX)) * (width - 1)) : 0;
      const y = maxY > minY ? Math.round(((p.value - minY) / (maxY - minY)) * (height - 1)) : 0;
      const cell = grid[height - 1 - y]![x]!;
      grid[height - 1 - y]![x] = cell === ' ' || cell === String((k % 9) + 1) ? String((k % 9) + 1) : '*';
    }
  });
  const label = (v: number) => fmt(v).padStart(9);
  return grid.map((row, i) => `${i === 0 ? label(maxY) : i === height - 1 ? label(minY) : ' '.repeat(9)} │${row.join('')}`)
    .concat([`${' '.repeat(9)} └${'─'.repeat(width)}`, `${' '.repeat(11)}step ${minX}${' '.repeat(Math.max(1, width - 10 - String(maxX).length))}${maxX}`]);
}

async function compareRuns(refs: string[], say: Say): Promise<void> {
  if (refs.length < 2) throw new ConfigError('compare needs at least two runs');
  await withDb(async (db) => {
    const found = await findRuns(db, refs);
    const header = ['', ...found.map((r, i) => `${i + 1}: ${r.id}`)];
    const params = new Map<string, string[]>();
    found.forEach((r, i) => flatten(r.params).forEach(([k, v]) => {
      if (!params.has(k)) params.set(k, new Array(found.length).fill('-'));
      params.get(k)![i] = fmt(v);
    }));
    say('params (differences marked *)');
    table([header, ...[...params].map(([k, values]) => [`${new Set(values).size > 1 ? '*' : ' '} ${k}`, ...values])], say);
    const keys = [...new Set(found.flatMap((r) => Object.keys(r.metrics ?? {})))].sort();
    say('\nmetrics');
    table([header, ...keys.map((k) => {
      const values = found.map((r) => r.metrics?.[k]);
      return [k, ...values.map((v) => fmt(v))];
    })], say);
    const series = await stepSeries(db, found.map((r) => r.id));
    for (const [key, byRun] of series) {
      say(`\n${key} per epoch`);
      lineChart(found.map((r, i) => ({ label: String(i + 1), points: byRun.get(r.id) ?? [] }))).forEach((line) => say(line));
    }
    say(`\n${found.map((r, i) => `${i + 1} = ${r.id}`).join('   ')}   (* = overlapping)`);
  });
}

async function reproduce(ref: string, say: Say): Promise<void> {
  const config = loadConfig();
  const runId = await withDb(async (db) => (await findRuns(db, [ref]))[0]!.id);
  const client = await temporalClient(config.temporal);
  const workflowId = `reproduce-${runId}-${Date.now().toString(36)}`;
  const handle = await client.workflow.start('reproduceWorkflow', { workflowId, taskQueue: config.taskQueues.main, args: [{ runId }] });
  say(`re-running ${runId} with its dataset version, params and seed\n  ${uiLink(config, workflowId)}`);
  let result: ReproduceResult;
  try {
    result = await handle.result();
  } catch (error) {
    throw new Error(`reproduce ${runId}: ${failureMessage(error)}`);
  }
  const rows = [['metric', 'original', 'reproduced', '']];
  for (const [key, original] of Object.entries(result.original)) {
    const again = result.reproduced[key];
    rows.push([key, fmt(original), fmt(again), original === again ? 'identical' : `differs by ${fmt(Math.abs((again ?? NaN) - original))}`]);
  }
  table(rows, say);
  say(`original on ${result.originalBackend}, reproduction ${result.runId} on ${result.backend}`);
  say(result.identical ? 'reproduced exactly: every metric is bit-for-bit the same' : result.sameBackend
    ? 'NOT reproduced exactly on the same backend: this is a bug worth reporting'
    : 'metrics differ; the backends differ, so small floating-point differences are expected');
  if (!result.identical && result.sameBackend) process.exitCode = 1;
}

export function registerRunCommands(program: Command, say: Say): void {
  const command = program.command('runs').description('tracked training runs: list (search), show, compare');
  command.command('list')
    .description('runs, newest first; --filter takes MLflow-style conditions with and / or / parentheses')
    .option('--filter <expr>', `e.g. "metrics.holdout_rmse < 10 and (params.lr = 0.01 or params.lr = 0.001) and tags.team = 'ml'"`)
    .option('--order-by <keys>', 'e.g. "metrics.holdout_rmse asc, started desc"', 'started desc')
    .option('--experiment <name>', 'only this experiment')
    .option('--limit <n>', 'at most this many', '50')
    .action((options: { filter?: string; orderBy?: string; experiment?: string; limit: string }) => listRuns(options, say));
  command.command('show <run>').description('params, tags, metrics, per-epoch curves, artifact and lineage of a run (id or prefix)')
    .action((ref: string) => showRun(ref, say));
  command.command('compare <runs...>').description('params and metrics side by side, with per-epoch charts')
    .action((refs: string[]) => compareRuns(refs, say));
  program.command('reproduce <run>').description('re-run a run with the same dataset version, params and seed, and check the metrics match')
    .action((ref: string) => reproduce(ref, say));
}
