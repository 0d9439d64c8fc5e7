/** `flywheel runs …` and `flywheel reproduce`: search, inspect and compare tracked runs; re-run one and check it. */
import type { Command } from 'commander';
import { lossPlotKey } from '../activities/train';
import { ConfigError } from '../config/pipeline';
import { temporalClient } from '../storage/temporal';
import { loadConfig } from '../config/env';
import { reproduceWorkflow, type ReproduceResult } from '../workflows/reproduce';
import { api } from './api';
import { barLine, table, type Say } from './output';
import { failureMessage, uiLink } from './pipelines';

/** A run as the API returns it (dates as ISO strings). */
export interface RunJson {
  id: string;
  name: string | null;
  experiment: string;
  experimentId: number;
  status: string;
  startedAt: string;
  endedAt: string | null;
  params: Record<string, unknown>;
  tags: Record<string, string>;
  metrics: Record<string, number>;
  backend: string | null;
  taskQueue: string | null;
  pipelineName: string | null;
  modelName: string | null;
  datasetVersionId: string | null;
  workflowId: string | null;
  sweepId: string | null;
  trial: number | null;
  seed: number | null;
  codeVersion: string | null;
  artifactKey: string | null;
  artifactUri: string;
  error: string | null;
  userId: string | null;
}

const fmt = (v: unknown): string =>
  typeof v === 'number'
    ? Number.isInteger(v)
      ? String(v)
      : String(Number(v.toPrecision(4)))
    : v === undefined || v === null
      ? '-'
      : typeof v === 'object'
        ? JSON.stringify(v)
        : String(v);

/** Runs by id or unique id prefix. */
async function findRuns(refs: string[]): Promise<RunJson[]> {
  return Promise.all(
    refs.map(async (ref) => (await api<{ run: RunJson }>('GET', `/api/v1/runs/${encodeURIComponent(ref)}`)).run),
  );
}

async function listRuns(
  options: { filter?: string; orderBy?: string; experiment?: string; limit: string },
  say: Say,
): Promise<void> {
  const found = (
    await api<{ runs: RunJson[] }>('GET', '/api/v1/runs', undefined, {
      filter: options.filter,
      orderBy: options.orderBy ?? 'started desc',
      experiment: options.experiment,
      limit: Number(options.limit) || 50,
    })
  ).runs;
  if (!found.length) return say('no runs match');
  const metricKeys = ['holdout_rmse', 'holdout_r2', 'holdout_accuracy', 'holdout_f1', 'objective'].filter((k) =>
    found.some((r) => r.metrics[k] !== undefined),
  );
  const out = [['run', 'experiment', 'status', 'started', 'backend', 'lr', 'hidden', 'batch', ...metricKeys]];
  for (const r of found) {
    const p = r.params as {
      learningRate?: number;
      batchSize?: number;
      model?: { hiddenUnits?: number[]; type?: string };
    };
    out.push([
      r.id,
      r.experiment + (r.trial !== null ? ` #${r.trial + 1}` : ''),
      r.status,
      r.startedAt.slice(0, 19).replace('T', ' '),
      r.backend ?? (r.workflowId ? '-' : 'client'),
      fmt(p.learningRate),
      p.model?.type === 'linear' ? 'linear' : fmt(p.model?.hiddenUnits),
      fmt(p.batchSize),
      ...metricKeys.map((k) => fmt(r.metrics[k])),
    ]);
  }
  table(out, say);
  say(`${found.length} run(s)`);
}

function flatten(value: unknown, prefix = ''): [string, unknown][] {
  if (value && typeof value === 'object' && !Array.isArray(value))
    return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  return [[prefix, value]];
}

type Series = Map<string, Map<string, { step: number; value: number }[]>>;

async function stepSeries(ids: string[]): Promise<Series> {
  const out: Series = new Map();
  for (const id of ids) {
    const { series } = await api<{ series: Record<string, { step: number; value: number }[]> }>(
      'GET',
      `/api/v1/runs/${encodeURIComponent(id)}/metrics`,
    );
    for (const [key, points] of Object.entries(series)) {
      if (!out.has(key)) out.set(key, new Map());
      out.get(key)!.set(
        id,
        points.map((p) => ({ step: p.step, value: Number(p.value) })),
      );
    }
  }
  return out;
}

async function showRun(ref: string, say: Say): Promise<void> {
  const [r] = await findRuns([ref]);
  const run = r!;
  say(`${run.id}  ${run.status}${run.error ? `: ${run.error}` : ''}`);
  const bucket = loadConfig().s3.bucket;
  table(
    [
      ['experiment', run.experiment],
      ['pipeline', run.pipelineName ?? '-'],
      ['registered model', run.modelName ?? '-'],
      ['dataset', run.datasetVersionId ?? '-'],
      ['workflow', run.workflowId ?? '-'],
      ['sweep', run.sweepId ? `${run.sweepId} trial ${run.trial}` : '-'],
      ['backend', `${run.backend ?? '-'} on ${run.taskQueue ?? '-'}`],
      ['seed', fmt(run.seed)],
      ['code', run.codeVersion ?? '-'],
      ['started', run.startedAt],
      ['ended', run.endedAt ?? '-'],
      ['model', run.artifactKey ? `s3://${bucket}/${run.artifactKey}` : '-'],
      ['loss plot', run.artifactKey && run.modelName ? `s3://${bucket}/${lossPlotKey(run.modelName, run.id)}` : '-'],
      ['artifacts', run.artifactUri],
    ],
    say,
  );
  say('\nparams');
  table(
    flatten(run.params).map(([k, v]) => [k, fmt(v)]),
    say,
  );
  if (Object.keys(run.tags).length) {
    say('\ntags');
    table(
      Object.entries(run.tags).map(([k, v]) => [k, v]),
      say,
    );
  }
  say('\nmetrics');
  table(
    Object.entries(run.metrics).map(([k, v]) => [k, fmt(v)]),
    say,
  );
  const series = await stepSeries([run.id]);
  if (series.size) {
    say('\nper epoch');
    for (const [key, byRun] of series) {
      const values = byRun.get(run.id)!.map((p) => p.value);
      say(`  ${key.padEnd(10)} ${barLine(values)}  ${fmt(values[0])} → ${fmt(values[values.length - 1])}`);
    }
  }
  const { modelVersions } = await api<{ modelVersions: { name: string; version: number }[] }>(
    'GET',
    `/api/v1/runs/${encodeURIComponent(run.id)}/model-versions`,
  );
  for (const m of modelVersions) say(`\nregistered as ${m.name} v${m.version}`);
}

/** A small multi-series terminal chart: one digit per run, shared axes. */
export function lineChart(
  series: { label: string; points: { step: number; value: number }[] }[],
  height = 10,
  width = 48,
): string[] {
  const all = series.flatMap((s) => s.points);
  if (!all.length) return [];
  const minX = Math.min(...all.map((p) => p.step)),
    maxX = Math.max(...all.map((p) => p.step));
  const minY = Math.min(...all.map((p) => p.value)),
    maxY = Math.max(...all.map((p) => p.value));
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
  return grid
    .map((row, i) => `${i === 0 ? label(maxY) : i === height - 1 ? label(minY) : ' '.repeat(9)} │${row.join('')}`)
    .concat([
      `${' '.repeat(9)} └${'─'.repeat(width)}`,
      `${' '.repeat(11)}step ${minX}${' '.repeat(Math.max(1, width - 10 - String(maxX).length))}${maxX}`,
    ]);
}

async function compareRuns(refs: string[], say: Say): Promise<void> {
  if (refs.length < 2) throw new ConfigError('compare needs at least two runs');
  const found = await findRuns(refs);
  const header = ['', ...found.map((r, i) => `${i + 1}: ${r.id}`)];
  const params = new Map<string, string[]>();
  found.forEach((r, i) =>
    flatten(r.params).forEach(([k, v]) => {
      if (!params.has(k)) params.set(k, new Array(found.length).fill('-'));
      params.get(k)![i] = fmt(v);
    }),
  );
  say('params (differences marked *)');
  table(
    [header, ...[...params].map(([k, values]) => [`${new Set(values).size > 1 ? '*' : ' '} ${k}`, ...values])],
    say,
  );
  const keys = [...new Set(found.flatMap((r) => Object.keys(r.metrics)))].sort();
  say('\nmetrics');
  table([header, ...keys.map((k) => [k, ...found.map((r) => fmt(r.metrics[k]))])], say);
  const series = await stepSeries(found.map((r) => r.id));
  for (const [key, byRun] of series) {
    say(`\n${key} per epoch`);
    lineChart(found.map((r, i) => ({ label: String(i + 1), points: byRun.get(r.id) ?? [] }))).forEach((line) =>
      say(line),
    );
  }
  say(`\n${found.map((r, i) => `${i + 1} = ${r.id}`).join('   ')}   (* = overlapping)`);
}

async function reproduce(ref: string, say: Say): Promise<void> {
  const config = loadConfig();
  const runId = (await findRuns([ref]))[0]!.id;
  const client = await temporalClient(config.temporal);
  const workflowId = `reproduce-${runId}-${Date.now().toString(36)}`;
  const handle = await client.workflow.start(reproduceWorkflow, {
    workflowId,
    taskQueue: config.taskQueues.main,
    args: [{ runId }],
  });
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
    rows.push([
      key,
      fmt(original),
      fmt(again),
      original === again ? 'identical' : `differs by ${fmt(Math.abs((again ?? NaN) - original))}`,
    ]);
  }
  table(rows, say);
  say(`original on ${result.originalBackend}, reproduction ${result.runId} on ${result.backend}`);
  say(
    result.identical
      ? 'reproduced exactly: every metric is bit-for-bit the same'
      : result.sameBackend
        ? 'NOT reproduced exactly on the same backend: this is a bug worth reporting'
        : 'metrics differ; the backends differ, so small floating-point differences are expected',
  );
  if (!result.identical && result.sameBackend) process.exitCode = 1;
}

export function registerRunCommands(program: Command, say: Say): void {
  const command = program.command('runs').description('tracked training runs: list (search), show, compare');
  command
    .command('list')
    .description('runs, newest first; --filter takes MLflow-style conditions with and / or / parentheses')
    .option(
      '--filter <expr>',
      `e.g. "metrics.holdout_rmse < 10 and (params.lr = 0.01 or params.lr = 0.001) and tags.team = 'ml'"`,
    )
    .option('--order-by <keys>', 'e.g. "metrics.holdout_rmse asc, started desc"', 'started desc')
    .option('--experiment <name>', 'only this experiment')
    .option('--limit <n>', 'at most this many', '50')
    .action((options: { filter?: string; orderBy?: string; experiment?: string; limit: string }) =>
      listRuns(options, say),
    );
  command
    .command('show <run>')
    .description('params, tags, metrics, per-epoch curves, artifact and lineage of a run (id or prefix)')
    .action((ref: string) => showRun(ref, say));
  command
    .command('compare <runs...>')
    .description('params and metrics side by side, with per-epoch charts')
    .action((refs: string[]) => compareRuns(refs, say));
  program
    .command('reproduce <run>')
    .description('re-run a run with the same dataset version, params and seed, and check the metrics match')
    .action((ref: string) => reproduce(ref, say));
}
