/**
 * bench:api — Flywheel's MLflow-compatible tracking API against a real MLflow tracking server, in the same run, on
 * the same machine and the same Postgres: `runs/log-batch` throughput and `runs/search` latency.
 *
 * Servers (each on a database of its own, created by the bench on the stack's Postgres and dropped at the end):
 * - flywheel: `node --import tsx server/main.ts`, a child process (one Node process), DATABASE_URL pointing at its
 *   database (migrated by the bench), FLYWHEEL_SERVER_PORT. Every request carries a bearer token (an admin token
 *   inserted hashed); Flywheel verifies it (cached for a second), MLflow has no auth and ignores the header.
 * - mlflow: `mlflow server --backend-store-uri postgresql+psycopg2://… --workers BENCH_MLFLOW_WORKERS (1)` from a venv
 *   of scripts/python.ts (mlflow==3.17.2, psycopg2-binary; SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3,
 *   hence the explicit driver). One worker is the fair pairing: one application process each, both free to use
 *   Postgres' processes (MLflow's worker runs Flask handlers on a thread pool; Flywheel's one event loop overlaps its
 *   queries). MLflow's own default, 4 workers, runs beside it as a third side of the log-batch rounds (a second
 *   server on the same database; BENCH_MLFLOW_WORKERS_VARIANT, 0 skips), and the ratio against MLflow's better
 *   configuration is reported too. MLflow's background job runner (huey consumers, not part of tracking) is off:
 *   MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false.
 *
 * (a) log-batch: bench/apiLoad.ts in a child process, the same generator for both: BENCH_CLIENTS (4) closed-loop
 *     clients on keep-alive connections, each logging to a run of its own (created for the phase over the API), batches
 *     of BENCH_BATCH (1000) points: BENCH_KEYS (10) keys × the steps that fill the batch, steps moving on with every
 *     batch, so every point is new on both servers. BENCH_WARMUP_S (2) + BENCH_SECONDS (10) s per phase, BENCH_REPEATS
 *     (3) interleaved rounds (the order rotates: F M V, M V F, V F M), best phase of each side. After each phase the
 * points stored are counted in
 *     the server's own table (Flywheel run_metrics, MLflow metrics): they must equal the batches answered 200 × the
 *     batch size, else the bench fails. Server CPU (the process group, /proc), Postgres CPU (the postmaster's
 *     processes) and the machine's busy share are reported per phase.
 * (b) search: BENCH_RUNS (100,000) runs in one experiment on each side, bulk-inserted with SQL into each server's own
 *     normal tables (Flywheel: `runs` with jsonb params / tags / latest metrics, and `run_latest_metrics`; MLflow:
 * runs,
 *     params, tags, latest_metrics), then VACUUM ANALYZE; neither search reads metric history, so no history rows are
 *     written. Flywheel's secondary indexes on `runs` and `run_latest_metrics` are dropped for the load and recreated
 *     from their own definitions (pg_indexes), MLflow's schema is loaded as is; the servers then answer from their
 * normal schema. Data is a
 *     formula of the run's index i (a hash, no random generator): rmse / mae / r2 in [0, 1), lr one of 0.001 / 0.01 /
 *     0.1, batch_size, optimizer, epochs; 3 tags. Query: `metrics.rmse < 0.5 and params.lr = '0.01'`, order_by
 *     `metrics.rmse`, max_results 100 (about 1 run in 6 matches). One client, BENCH_SEARCH_WARMUP (3) unrecorded
 *     then BENCH_SEARCHES (30) measured per side per round, the same rounds interleaved; p50 / p99 over all measured
 *     requests. Each answer's run names must equal the reference computed here from the formula, else the bench fails.
 *     The learning rate is logged under BENCH_LR_PARAM (lr). Note: store/runFilter.ts maps `params.lr` (and
 *     learning_rate, batch_size, …) to Flywheel's pipeline names (learningRate), so a client's own `lr` param is not
 *     found and the check fails until that is fixed; BENCH_LR_PARAM=eta measures with a key the filter leaves alone.
 *     Then Flywheel alone at BENCH_RUNS_LARGE (1,000,000; 0 skips) runs in the same experiment (BENCH_SEARCHES_LARGE,
 *     20, requests). Flywheel's search plan (EXPLAIN ANALYZE of the SQL its store runs) is printed on stderr.
 *     BENCH_LARGE_ONLY=1 runs this part alone: no MLflow, no log-batch, BENCH_RUNS_LARGE runs loaded at once (5½ min
 *     on a fully loaded 2-core machine, most of it the load), then one JSON line with the large figures only.
 * (c) BENCH_PROFILE=1: a second Flywheel server under `node --cpu-prof` (bench/apiProfiledServer.ts, which exits on
 *     SIGTERM so the profile is written), one log-batch phase and a search phase against it, self time by function.
 *
 * Environment: BENCH_CLIENTS (4), BENCH_BATCH (1000), BENCH_KEYS (10), BENCH_SECONDS (10), BENCH_WARMUP_S (2),
 * BENCH_REPEATS (3), BENCH_RUNS (100000), BENCH_RUNS_LARGE (1000000), BENCH_SEARCHES (30), BENCH_SEARCH_WARMUP (3),
 * BENCH_SEARCHES_LARGE (20), BENCH_LARGE_ONLY (0), BENCH_MLFLOW_WORKERS (1), BENCH_MLFLOW_WORKERS_VARIANT (4),
 * BENCH_PROFILE (0),
 * BENCH_BUDGET_S (480: no log-batch round starts past it), BENCH_KEEP (1 keeps the databases), BENCH_LR_PARAM (lr),
 * BENCH_MLFLOW_PYTHON (a python with mlflow + psycopg2 instead of the venv). About 6 minutes on the 2-core reference
 * machine once the venv exists (its first creation takes about 3 minutes more; the 1,000,000-run load about 1 minute);
 * progress on stderr, a summary, then one JSON line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as schema from '../schema/index';
import { apiTokens } from '../schema/models';
import { ensureDatabase } from '../scripts/postgres';
import { choosePort } from '../scripts/proc';
import { ensurePythonEnv } from '../scripts/python';
import { closeDb, connectDb, migrateDb, type Db } from '../storage/db';
import { searchRuns } from '../store/runs';
import { hashToken } from '../store/tokens';
import { loadConfig, PROJECT_ROOT } from '../config/env';
import { cpuSeconds, statFields } from '../config/procStat';
import type { ApiLoadResult, ApiLoadSpec } from './apiLoad';
import { budgetedRounds, intFromEnv, lastJson, runProcess } from './peer';
import { busyPct, machineTicks, waitUntil } from './processes';

const CLIENTS = Math.max(1, intFromEnv('BENCH_CLIENTS', 4));
const BATCH = Math.max(1, intFromEnv('BENCH_BATCH', 1000));
const KEYS = Math.max(1, intFromEnv('BENCH_KEYS', 10));
const SECONDS = Math.max(1, intFromEnv('BENCH_SECONDS', 10));
const WARMUP_S = intFromEnv('BENCH_WARMUP_S', 2);
const REPEATS = Math.max(1, intFromEnv('BENCH_REPEATS', 3));
const RUNS = Math.max(1000, intFromEnv('BENCH_RUNS', 100_000));
const RUNS_LARGE = intFromEnv('BENCH_RUNS_LARGE', 1_000_000);
const SEARCHES = Math.max(1, intFromEnv('BENCH_SEARCHES', 30));
const SEARCH_WARMUP = intFromEnv('BENCH_SEARCH_WARMUP', 3);
const SEARCHES_LARGE = Math.max(1, intFromEnv('BENCH_SEARCHES_LARGE', 20));
const MLFLOW_WORKERS = Math.max(1, intFromEnv('BENCH_MLFLOW_WORKERS', 1));
const MLFLOW_WORKERS_VARIANT = intFromEnv('BENCH_MLFLOW_WORKERS_VARIANT', 4);
const PROFILE = process.env.BENCH_PROFILE === '1';
const BUDGET_S = intFromEnv('BENCH_BUDGET_S', 480);
const KEEP = process.env.BENCH_KEEP === '1';
const LARGE_ONLY = process.env.BENCH_LARGE_ONLY === '1';
if (BATCH % KEYS !== 0) throw new Error(`BENCH_KEYS (${KEYS}) must divide BENCH_BATCH (${BATCH})`);
if (LARGE_ONLY && RUNS_LARGE === 0) throw new Error('BENCH_LARGE_ONLY=1 needs BENCH_RUNS_LARGE > 0');
if (RUNS_LARGE !== 0 && RUNS_LARGE <= RUNS)
  throw new Error(`BENCH_RUNS_LARGE (${RUNS_LARGE}) must exceed BENCH_RUNS (${RUNS}), or be 0`);

const MLFLOW_REQUIREMENTS = ['mlflow==3.17.2', 'psycopg2-binary==2.9.13'] as const;
/** The key the learning rate is logged under on both servers (and filtered by). */
const LR_PARAM = process.env.BENCH_LR_PARAM || 'lr';
if (!/^[a-z_]{1,40}$/.test(LR_PARAM)) throw new Error(`BENCH_LR_PARAM must be a lower-case name, got "${LR_PARAM}"`);
const FILTER = `metrics.rmse < 0.5 and params.${LR_PARAM} = '0.01'`;
const ORDER_BY = 'metrics.rmse';
const MAX_RESULTS = 100;
const benchStarted = performance.now();
const elapsedS = () => (performance.now() - benchStarted) / 1000;
const tag = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (x: number | undefined, digits: number) =>
  x !== undefined && Number.isFinite(x) ? Number(x.toFixed(digits)) : null;
const log = (line: string) => console.error(line);

// ---------------------------------------------------------------------------------------------------------------
// The data: a formula of the run index (the same in SQL and here)

const P = 2147483647;
const A1 = 1103515245;
const A2 = 2146121005;
const B2 = 1013904223;
const LRS = ['0.001', '0.01', '0.1'] as const;

/** a * b mod P, exact in doubles for a, b < 2^31. */
function mulmod(a: number, b: number): number {
  return (((a * Math.floor(b / 65536)) % P) * 65536 + a * (b % 65536)) % P;
}
const hash = (x: number, salt: number) => (mulmod((mulmod(x, A1) + salt) % P, A2) + B2) % P;
/** The same for a bigint SQL expression (no overflow below 8e9). */
const hashSql = (x: string, salt: number) => `(((((${x}) * ${A1} + ${salt}) % ${P}) * ${A2} + ${B2}) % ${P})`;
const runName = (i: number) => `run-${String(i).padStart(7, '0')}`;
const runNameSql = `'run-' || lpad(i::text, 7, '0')`;
const START_MS = Date.UTC(2026, 0, 1);

/** The runs matching FILTER, by rmse, first MAX_RESULTS: what both servers must answer. */
function expectedNames(runs: number): string[] {
  const matches: { i: number; rmse: number }[] = [];
  for (let i = 0; i < runs; i++) {
    if (LRS[hash(i, 2) % 3] !== '0.01') continue;
    const rmse = hash(i, 1) / P;
    if (rmse < 0.5) matches.push({ i, rmse });
  }
  return matches
    .sort((a, b) => a.rmse - b.rmse)
    .slice(0, MAX_RESULTS)
    .map((m) => runName(m.i));
}

/** Per run: the values both loaders write. */
const valuesSql = `SELECT i, md5('bench-run-' || i) AS id, ${runNameSql} AS name, ${START_MS}::bigint + i * 1000 AS start_ms,
    ${hashSql('i', 1)}::float8 / ${P} AS rmse, ${hashSql('i', 3)}::float8 / ${P} AS mae, ${hashSql('i', 4)}::float8 / ${P} AS r2,
    (ARRAY['0.001','0.01','0.1'])[${hashSql('i', 2)} % 3 + 1] AS lr, (ARRAY['32','64','128','256'])[${hashSql('i', 5)} % 4 + 1] AS batch_size,
    CASE WHEN ${hashSql('i', 6)} % 2 = 0 THEN 'adam' ELSE 'sgd' END AS optimizer, (10 + ${hashSql('i', 7)} % 90)::text AS epochs`;

/** The runs (latest metrics in the jsonb) and their `run_latest_metrics` rows, in that order (a foreign key). */
function flywheelLoadSql(experiment: { name: string; id: number }, from: number, to: number): string[] {
  const source = `(${valuesSql} FROM generate_series(${from}::bigint, ${to - 1}::bigint) i) v`;
  return [
    `INSERT INTO runs (id, experiment, name, user_id, status, tags, params, metrics, started_at, ended_at)
      SELECT id, '${experiment.name.replace(/'/g, "''")}', name, 'bench', 'finished',
        jsonb_build_object('mlflow.runName', name, 'mlflow.user', 'bench', 'mlflow.source.type', 'LOCAL'),
        jsonb_build_object('${LR_PARAM}', lr, 'batch_size', batch_size, 'optimizer', optimizer, 'epochs', epochs),
        jsonb_build_object('rmse', rmse, 'mae', mae, 'r2', r2),
        to_timestamp(start_ms / 1000.0), to_timestamp((start_ms + 60000) / 1000.0)
      FROM ${source}`,
    `INSERT INTO run_latest_metrics (run_id, key, experiment_id, value, step, logged_at)
      SELECT id, m.key, ${experiment.id}, m.value, 0, to_timestamp((start_ms + 60000) / 1000.0) FROM ${source},
      LATERAL (VALUES ('rmse', rmse), ('mae', mae), ('r2', r2)) AS m(key, value)`,
  ];
}

function mlflowLoadSql(experimentId: number, from: number, to: number): string[] {
  const source = `(${valuesSql} FROM generate_series(${from}::bigint, ${to - 1}::bigint) i) v`;
  return [
    `INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id)
      SELECT id, name, 'LOCAL', '', '', 'bench', 'FINISHED', start_ms, start_ms + 60000, '', 'active', 'mlflow-artifacts:/${experimentId}/' || id || '/artifacts', ${experimentId} FROM ${source}`,
    `INSERT INTO params (key, value, run_uuid) SELECT p.key, p.value, id FROM ${source},
      LATERAL (VALUES ('${LR_PARAM}', lr), ('batch_size', batch_size), ('optimizer', optimizer), ('epochs', epochs)) AS p(key, value)`,
    `INSERT INTO tags (key, value, run_uuid) SELECT t.key, t.value, id FROM ${source},
      LATERAL (VALUES ('mlflow.runName', name), ('mlflow.user', 'bench'), ('mlflow.source.type', 'LOCAL')) AS t(key, value)`,
    `INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) SELECT m.key, m.value, start_ms + 60000, 0, false, id FROM ${source},
      LATERAL (VALUES ('rmse', rmse), ('mae', mae), ('r2', r2)) AS m(key, value)`,
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Processes and CPU accounting

/** CPU seconds of every process matching `member` (by its stat fields), plus what `leader`'s reaped children used. */
function cpuWhere(member: (f: string[], pid: number) => boolean, leader: number): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(entry);
    if (!f || !member(f, Number(entry))) continue;
    const cpu = cpuSeconds(f);
    total += cpu.self + (Number(entry) === leader ? cpu.children : 0);
  }
  return total;
}

/** A server started detached: its process group is everything it spawned (uvicorn workers, tsx's esbuild). */
const groupCpu = (pgid: number) => cpuWhere((f) => Number(f[2]) === pgid, pgid);
/** The postmaster and its processes (backends, parallel workers, autovacuum), reaped ones included. */
const postgresCpu = (postmaster: number) =>
  cpuWhere((f, pid) => pid === postmaster || Number(f[1]) === postmaster, postmaster);

const started = new Set<ChildProcess>();

/** SIGTERM to the group, SIGKILL after 10 s. */
async function stopGroup(child: ChildProcess): Promise<void> {
  started.delete(child);
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  kill('SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(timer);
}

interface Server {
  kind: 'flywheel' | 'mlflow';
  name: string;
  url: string;
  child: ChildProcess;
  pgid: number;
}

async function startFlywheel(databaseUrl: string, profileDir?: string): Promise<Server> {
  const port = await choosePort(18470);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    FLYWHEEL_SERVER_PORT: String(port),
    FLYWHEEL_SERVER_HOST: '127.0.0.1',
  };
  // The profiled server runs through bench/apiProfiledServer.ts, which exits on SIGTERM so the profile gets written.
  const args = profileDir
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${profileDir}`,
        '--import',
        'tsx',
        join(PROJECT_ROOT, 'bench', 'apiProfiledServer.ts'),
      ]
    : ['--import', 'tsx', join(PROJECT_ROOT, 'server', 'main.ts')];
  const child = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  started.add(child);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil('flywheel server', async () => (await fetch(`${url}/health`)).ok, 60_000, child);
  return { kind: 'flywheel', name: 'flywheel', url, child, pgid: child.pid! };
}

async function startMlflow(
  python: string,
  databaseUrl: string,
  workers: number,
  artifacts: string,
  name: string,
): Promise<Server> {
  const port = await choosePort(18500);
  const uri = databaseUrl.replace(/^postgres(ql)?:\/\//, 'postgresql+psycopg2://');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
    MLFLOW_DISABLE_TELEMETRY: 'true',
    DO_NOT_TRACK: 'true',
    PYTHONUNBUFFERED: '1',
  };
  const args = [
    '-m',
    'mlflow',
    'server',
    '--backend-store-uri',
    uri,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--workers',
    String(workers),
    '--artifacts-destination',
    artifacts,
    '--uvicorn-opts',
    '--no-access-log',
  ];
  const child = spawn(python, args, { cwd: artifacts, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  started.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-6000)));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil('mlflow server', async () => (await fetch(`${url}/health`)).ok, 180_000, child).catch(
    (error: Error) => {
      throw new Error(`${error.message}\n${stderr}`);
    },
  );
  return { kind: 'mlflow', name, url, child, pgid: child.pid! };
}

// ---------------------------------------------------------------------------------------------------------------
// API calls (setup only) and load phases

async function call<T>(server: Server, token: string, path: string, body: unknown): Promise<T> {
  const answer = await fetch(`${server.url}/api/2.0/mlflow/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const text = await answer.text();
  if (!answer.ok) throw new Error(`${server.name} ${path}: ${answer.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

interface Phase extends ApiLoadResult {
  server_cpu_s: number;
  postgres_cpu_s: number;
  machine_busy_pct: number;
}

async function loadPhase(server: Server, spec: ApiLoadSpec, dir: string, postmaster: number): Promise<Phase> {
  const file = join(dir, `load-${spec.mode}-${server.name}-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(spec));
  const cpu0 = groupCpu(server.pgid);
  const pg0 = postgresCpu(postmaster);
  const m0 = machineTicks();
  const { stdout } = await runProcess(
    process.execPath,
    ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'apiLoad.ts'), file],
    { stderr: 'inherit' },
  );
  const result = lastJson<ApiLoadResult>(stdout, 'bench/apiLoad.ts');
  return {
    ...result,
    server_cpu_s: groupCpu(server.pgid) - cpu0,
    postgres_cpu_s: postgresCpu(postmaster) - pg0,
    machine_busy_pct: busyPct(m0, machineTicks()),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// CPU profile summary (self time by function, as bench:serve prints it)

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples?: number[];
  timeDeltas?: number[];
}

function summariseProfile(profile: CpuProfile): { function: string; self_pct: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  (profile.samples ?? []).forEach((id, i) => {
    const frame = byId.get(id)?.callFrame;
    if (!frame || frame.functionName === '(idle)') return;
    const file = frame.url
      ? frame.url
          .replace(/^file:\/\//, '')
          .replace(`${PROJECT_ROOT}/`, '')
          .replace(/.*node_modules\//, '')
      : '';
    const key = `${frame.functionName || '(anonymous)'}${file ? ` ${file}:${frame.lineNumber + 1}` : ''}`;
    const dt = profile.timeDeltas?.[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([fn, t]) => ({ function: fn, self_pct: Number(((100 * t) / Math.max(1, total)).toFixed(1)) }));
}

// ---------------------------------------------------------------------------------------------------------------
// Databases

const databaseUrlFor = (base: string, database: string) => {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
};

async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Runs statements on `parallel` connections at once (one per core: the load is Postgres' CPU). */
async function runParallel(pool: pg.Pool, statements: string[]): Promise<void> {
  await Promise.all(statements.map((text) => pool.query(text)));
}

/**
 * Flywheel's secondary indexes on runs and run_latest_metrics: dropped around a bulk load, recreated from their own
 * definitions.
 */
async function withoutRunIndexes(pool: pg.Pool, load: () => Promise<void>): Promise<void> {
  const { rows } = await pool.query<{ indexname: string; indexdef: string }>(
    `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN ('runs', 'run_latest_metrics') AND indexname NOT IN (SELECT conname FROM pg_constraint)`,
  );
  for (const index of rows) await pool.query(`DROP INDEX "${index.indexname}"`);
  try {
    await load();
  } finally {
    await runParallel(
      pool,
      rows.map((index) => index.indexdef),
    );
  }
}

/** Flywheel's runs [from, to) on two connections, then VACUUM ANALYZE of both tables. */
async function loadFlywheelRuns(
  pool: pg.Pool,
  experiment: { name: string; id: number },
  from: number,
  to: number,
): Promise<void> {
  await withoutRunIndexes(pool, async () => {
    await Promise.all(
      ranges(from, to, 2).map(async ([a, b]) => {
        for (const text of flywheelLoadSql(experiment, a, b)) await pool.query(text);
      }),
    );
  });
  await pool.query('VACUUM ANALYZE runs');
  await pool.query('VACUUM ANALYZE run_latest_metrics');
}

function ranges(from: number, to: number, parts: number): [number, number][] {
  const size = Math.ceil((to - from) / parts);
  return Array.from(
    { length: parts },
    (_, k) => [from + k * size, Math.min(to, from + (k + 1) * size)] as [number, number],
  ).filter(([a, b]) => b > a);
}

/**
 * Flywheel's search, as its store runs it, under EXPLAIN ANALYZE: each of its statements (the page walk, the rows by
 * id,
 * the experiment lookups), plans on stderr; the summed execution time returned.
 */
async function explainFlywheelSearch(databaseUrl: string, experimentId: number): Promise<number | undefined> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  const captured: { sql: string; params: unknown[] }[] = [];
  const db = drizzle(pool, {
    schema,
    logger: { logQuery: (sql, params) => captured.push({ sql, params }) },
  }) as unknown as Db;
  try {
    await searchRuns(db, { experimentIds: [experimentId], filter: FILTER, orderBy: ORDER_BY, maxResults: MAX_RESULTS });
    let total: number | undefined = 0;
    for (const query of captured) {
      const { rows } = await pool.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS) ${query.sql}`,
        query.params,
      );
      const plan = rows.map((r) => r['QUERY PLAN']);
      log(`  flywheel search plan:\n${plan.map((line) => `    ${line}`).join('\n')}`);
      const time = /Execution Time: ([\d.]+) ms/.exec(plan.join('\n'));
      total = time && total !== undefined ? total + Number(time[1]) : undefined;
    }
    return total;
  } finally {
    await pool.end();
  }
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const config = loadConfig();
  const fwDatabase = `bench_api_fw_${tag}`;
  const mlDatabase = `bench_api_mlflow_${tag}`;
  const fwUrl = databaseUrlFor(config.databaseUrl, fwDatabase);
  const mlUrl = databaseUrlFor(config.databaseUrl, mlDatabase);
  const dir = mkdtempSync(join(tmpdir(), 'bench-api-'));
  let fwDb: Db | undefined;
  let fwPool: pg.Pool | undefined;
  let mlPool: pg.Pool | undefined;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    for (const child of [...started]) await stopGroup(child);
    await fwPool?.end().catch(() => undefined);
    await mlPool?.end().catch(() => undefined);
    if (fwDb) await closeDb(fwDb).catch(() => undefined);
    if (!KEEP) {
      for (const database of [fwDatabase, mlDatabase])
        await dropDatabase(config.databaseUrl, database).catch((error: Error) =>
          log(`  cleanup: ${database}: ${error.message}`),
        );
    } else log(`  BENCH_KEEP=1: kept databases ${fwDatabase} and ${mlDatabase}`);
    rmSync(dir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));

  try {
    const m0 = machineTicks();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const busyBefore = busyPct(m0, machineTicks());
    log(
      `bench:api — ${CLIENTS} clients × ${BATCH}-point log-batch, ${SECONDS} s per phase, ${REPEATS} rounds; search at ${fmt(RUNS)} runs${RUNS_LARGE ? ` (Flywheel also at ${fmt(RUNS_LARGE)})` : ''}`,
    );
    if (busyBefore > 25)
      log(`  warning: the machine was ${busyBefore.toFixed(0)} % busy before the bench (other work skews both sides)`);

    const python = LARGE_ONLY
      ? ''
      : process.env.BENCH_MLFLOW_PYTHON || (await ensurePythonEnv('mlflow-server', MLFLOW_REQUIREMENTS));
    for (const database of LARGE_ONLY ? [fwDatabase] : [fwDatabase, mlDatabase])
      await ensureDatabase(config.databaseUrl, database);
    fwDb = connectDb(fwUrl, 2);
    await migrateDb(fwDb);
    const token = `fw_admin_bench_${tag}`;
    await fwDb.insert(apiTokens).values({ name: `bench-api-${tag}`, scope: 'admin', hash: hashToken(token) });
    fwPool = new pg.Pool({ connectionString: fwUrl, max: 2 });
    const postmaster = Number(
      statFields((await fwPool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid)?.[1],
    );

    let t0 = performance.now();
    const flywheel = await startFlywheel(fwUrl);

    const expectNames = (server: Server, got: string[] | undefined, want: string[]) => {
      if (!got || got.length !== want.length || got.some((name, k) => name !== want[k])) {
        const at = (got ?? []).findIndex((name, k) => name !== want[k]);
        throw new Error(
          `${server.name} search: ${got?.length ?? 0} runs, expected ${want.length}; first difference at ${at}: ${got?.[at]} instead of ${want[at]}`,
        );
      }
    };
    const searchPhaseIn = async (
      server: Server,
      experimentId: number,
      requests: number,
      want: string[],
    ): Promise<Phase> => {
      const body = JSON.stringify({
        experiment_ids: [String(experimentId)],
        filter: FILTER,
        order_by: [ORDER_BY],
        max_results: MAX_RESULTS,
      });
      const phase = await loadPhase(
        server,
        { mode: 'search', baseUrl: server.url, token, body, warmup: SEARCH_WARMUP, requests },
        dir,
        postmaster,
      );
      if (phase.ok !== phase.measured)
        throw new Error(
          `${server.name} search: ${phase.measured - phase.ok} of ${phase.measured} not 200; first: ${phase.first_error}`,
        );
      expectNames(server, phase.run_names, want);
      log(
        `  ${`${server.name} search`.padEnd(22)} p50 ${phase.latency_ms.p50.toFixed(1)} ms  p99 ${phase.latency_ms.p99.toFixed(1)} ms  (${requests} requests; server ${((1000 * phase.server_cpu_s) / requests).toFixed(1)} ms CPU/request, postgres ${((1000 * phase.postgres_cpu_s) / requests).toFixed(1)} ms)`,
      );
      return phase;
    };
    const pooled = (phases: Phase[]) => {
      const sorted = Float64Array.from(phases.flatMap((p) => p.samples_ms ?? [])).sort();
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
      return { p50: at(0.5), p99: at(0.99), n: sorted.length };
    };
    /** The 1,000,000-run figures under their own names (null at another size). */
    const oneMillion = (search: { p50: number; p99: number } | undefined) => ({
      search_p50_ms_1m: search && RUNS_LARGE === 1_000_000 ? fixed(search.p50, 2) : null,
      search_p99_ms_1m: search && RUNS_LARGE === 1_000_000 ? fixed(search.p99, 2) : null,
    });

    if (LARGE_ONLY) {
      // (c) alone: the large experiment loaded at once, then searched.
      const experiment = { name: `bench-search-${tag}`, id: 0 };
      experiment.id = Number(
        (await call<{ experiment_id: string }>(flywheel, token, 'experiments/create', { name: experiment.name }))
          .experiment_id,
      );
      t0 = performance.now();
      await loadFlywheelRuns(fwPool, experiment, 0, RUNS_LARGE);
      const loadS = (performance.now() - t0) / 1000;
      log(`  loaded ${fmt(RUNS_LARGE)} runs into flywheel in ${loadS.toFixed(0)} s (indexes rebuilt, VACUUM ANALYZE)`);
      const search = pooled([await searchPhaseIn(flywheel, experiment.id, SEARCHES_LARGE, expectedNames(RUNS_LARGE))]);
      const planMs = await explainFlywheelSearch(fwUrl, experiment.id);
      console.log(
        [
          '',
          `bench:api (BENCH_LARGE_ONLY) — flywheel search at ${fmt(RUNS_LARGE)} runs ("${FILTER}", order_by ${ORDER_BY}, ${MAX_RESULTS} results): p50 ${search.p50.toFixed(1)} ms, p99 ${search.p99.toFixed(1)} ms (${search.n} requests); SQL alone ${planMs?.toFixed(1) ?? '?'} ms under EXPLAIN ANALYZE`,
          `  total ${elapsedS().toFixed(0)} s`,
          '',
        ].join('\n'),
      );
      console.log(
        JSON.stringify({
          bench: 'api',
          large_only: true,
          search_runs_large: RUNS_LARGE,
          search_large_p50_ms: fixed(search.p50, 2),
          search_large_p99_ms: fixed(search.p99, 2),
          search_large_sql_ms: fixed(planMs, 2),
          ...oneMillion(search),
          searches: search.n,
          load_s: { flywheel_large: fixed(loadS, 1) },
          machine_busy_before_pct: fixed(busyBefore, 0),
          total_s: fixed(elapsedS(), 0),
        }),
      );
      return;
    }

    mlPool = new pg.Pool({ connectionString: mlUrl, max: 2 });
    const mlflow = await startMlflow(python, mlUrl, MLFLOW_WORKERS, dir, 'mlflow');
    // Started after the first, which migrates the shared database.
    const variant =
      MLFLOW_WORKERS_VARIANT && MLFLOW_WORKERS_VARIANT !== MLFLOW_WORKERS
        ? await startMlflow(python, mlUrl, MLFLOW_WORKERS_VARIANT, dir, `mlflow-${MLFLOW_WORKERS_VARIANT}w`)
        : undefined;
    log(
      `  servers up in ${((performance.now() - t0) / 1000).toFixed(0)} s: flywheel ${flywheel.url}, mlflow ${mlflow.url} (${MLFLOW_WORKERS} worker${MLFLOW_WORKERS === 1 ? '' : 's'})` +
        `${variant ? `, ${variant.name} ${variant.url}` : ''}; databases ${fwDatabase}, ${mlDatabase}`,
    );

    // -------------------------------------------------------------------------------------------------------------
    // (a) log-batch

    const logExperiment = new Map<string, string>();
    for (const server of [flywheel, mlflow]) {
      logExperiment.set(
        server.kind,
        (await call<{ experiment_id: string }>(server, token, 'experiments/create', { name: `bench-log-batch-${tag}` }))
          .experiment_id,
      );
    }
    const storedPoints = async (server: Server, runIds: string[]) => {
      const pool = server.kind === 'flywheel' ? fwPool! : mlPool!;
      const text =
        server.kind === 'flywheel'
          ? 'SELECT count(*)::int AS n FROM run_metrics WHERE run_id = ANY($1)'
          : 'SELECT count(*)::int AS n FROM metrics WHERE run_uuid = ANY($1)';
      return (await pool.query<{ n: number }>(text, [runIds])).rows[0]!.n;
    };
    const logBatchPhase = async (server: Server, label: string): Promise<Phase> => {
      const runIds: string[] = [];
      for (let c = 0; c < CLIENTS; c++) {
        const created = await call<{ run: { info: { run_id: string } } }>(server, token, 'runs/create', {
          experiment_id: logExperiment.get(server.kind),
          run_name: `${label}-${c}`,
          start_time: Date.now(),
        });
        runIds.push(created.run.info.run_id);
      }
      const phase = await loadPhase(
        server,
        {
          mode: 'log-batch',
          baseUrl: server.url,
          token,
          runIds,
          metricsPerBatch: BATCH,
          keys: KEYS,
          warmupS: WARMUP_S,
          durationS: SECONDS,
        },
        dir,
        postmaster,
      );
      const stored = await storedPoints(server, runIds);
      if (stored !== phase.ok_total * BATCH)
        throw new Error(
          `${server.name}: ${fmt(stored)} points stored, but ${fmt(phase.ok_total)} batches of ${BATCH} were answered 200`,
        );
      if (phase.ok !== phase.measured || phase.errors)
        throw new Error(
          `${server.name} log-batch: ${phase.measured - phase.ok} of ${phase.measured} not 200 (${JSON.stringify(phase.statuses)}), ${phase.errors} errors; first: ${phase.first_error}`,
        );
      log(
        `  ${label.padEnd(22)} ${fmt(phase.points_per_s!).padStart(9)} points/s  batch p50 ${phase.latency_ms.p50.toFixed(1)} ms p99 ${phase.latency_ms.p99.toFixed(1)} ms  ` +
          `server ${phase.server_cpu_s.toFixed(1)} s CPU, postgres ${phase.postgres_cpu_s.toFixed(1)} s, machine ${phase.machine_busy_pct.toFixed(0)} % busy; ${fmt(stored)} points stored`,
      );
      return phase;
    };
    const sides = [flywheel, mlflow, ...(variant ? [variant] : [])];
    const logPhases: Record<string, Phase[]> = Object.fromEntries(sides.map((side) => [side.name, []]));
    const { rounds, stopped } = await budgetedRounds(REPEATS, BUDGET_S, elapsedS, async (round) => {
      const order = sides.map((_, k) => sides[(k + round) % sides.length]!);
      for (const server of order)
        logPhases[server.name]!.push(await logBatchPhase(server, `${server.name} log-batch r${round + 1}`));
    });
    if (variant) await stopGroup(variant.child);

    // -------------------------------------------------------------------------------------------------------------
    // (b) search at RUNS

    const searchExperiment = new Map<string, number>();
    for (const server of [flywheel, mlflow]) {
      searchExperiment.set(
        server.kind,
        Number(
          (await call<{ experiment_id: string }>(server, token, 'experiments/create', { name: `bench-search-${tag}` }))
            .experiment_id,
        ),
      );
    }
    const fwExperiment = { name: `bench-search-${tag}`, id: searchExperiment.get('flywheel')! };
    t0 = performance.now();
    await loadFlywheelRuns(fwPool, fwExperiment, 0, RUNS);
    const fwLoadS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const [runsSql, ...childSql] = mlflowLoadSql(searchExperiment.get('mlflow')!, 0, RUNS);
    await mlPool.query(runsSql!);
    await runParallel(mlPool, childSql);
    for (const table of ['runs', 'params', 'tags', 'latest_metrics']) await mlPool.query(`VACUUM ANALYZE ${table}`);
    const mlLoadS = (performance.now() - t0) / 1000;
    log(
      `  loaded ${fmt(RUNS)} runs: flywheel ${fwLoadS.toFixed(1)} s (indexes rebuilt, VACUUM ANALYZE), mlflow ${mlLoadS.toFixed(1)} s (runs, ${fmt(RUNS * 4)} params, ${fmt(RUNS * 3)} tags, ${fmt(RUNS * 3)} latest metrics, VACUUM ANALYZE)`,
    );

    const expected = expectedNames(RUNS);
    const searchPhase = (server: Server, requests: number, want: string[]) =>
      searchPhaseIn(server, searchExperiment.get(server.kind)!, requests, want);
    const searchPhases: Record<'flywheel' | 'mlflow', Phase[]> = { flywheel: [], mlflow: [] };
    for (let round = 0; round < Math.max(1, rounds); round++) {
      const order = round % 2 === 0 ? [flywheel, mlflow] : [mlflow, flywheel];
      for (const server of order) searchPhases[server.kind].push(await searchPhase(server, SEARCHES, expected));
    }
    const fwPlanMs = await explainFlywheelSearch(fwUrl, searchExperiment.get('flywheel')!);

    await stopGroup(mlflow.child);

    // -------------------------------------------------------------------------------------------------------------
    // (c) Flywheel alone at RUNS_LARGE

    let large: Phase | undefined;
    let largeLoadS: number | undefined;
    let largePlanMs: number | undefined;
    if (RUNS_LARGE) {
      t0 = performance.now();
      await loadFlywheelRuns(fwPool, fwExperiment, RUNS, RUNS_LARGE);
      largeLoadS = (performance.now() - t0) / 1000;
      log(
        `  loaded ${fmt(RUNS_LARGE - RUNS)} more runs into flywheel (${fmt(RUNS_LARGE)} in the experiment) in ${largeLoadS.toFixed(0)} s`,
      );
      large = await searchPhase(flywheel, SEARCHES_LARGE, expectedNames(RUNS_LARGE));
      largePlanMs = await explainFlywheelSearch(fwUrl, searchExperiment.get('flywheel')!);
    }

    // -------------------------------------------------------------------------------------------------------------
    // (d) optional CPU profile of a second Flywheel server

    let profileTop: { function: string; self_pct: number }[] | undefined;
    if (PROFILE) {
      await stopGroup(flywheel.child);
      const profileDir = join(dir, 'profile');
      const profiled = await startFlywheel(fwUrl, profileDir);
      await logBatchPhase(profiled, 'flywheel profiled');
      await searchPhase(profiled, SEARCHES, RUNS_LARGE ? expectedNames(RUNS_LARGE) : expected);
      await stopGroup(profiled.child);
      const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) profileTop = summariseProfile(JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as CpuProfile);
    }

    // -------------------------------------------------------------------------------------------------------------
    // Summary

    const best = (phases: Phase[]) => phases.reduce((a, b) => (b.points_per_s! > a.points_per_s! ? b : a));
    const fwLog = best(logPhases.flywheel!);
    const mlLog = best(logPhases.mlflow!);
    const variantLog = variant ? best(logPhases[variant.name]!) : undefined;
    const mlBest = variantLog && variantLog.points_per_s! > mlLog.points_per_s! ? variantLog : mlLog;
    const fwSearch = pooled(searchPhases.flywheel);
    const mlSearch = pooled(searchPhases.mlflow);
    const largeSearch = large ? pooled([large]) : undefined;
    const perPoint = (p: Phase, cpu: number) => (1e6 * cpu) / Math.max(1, p.ok_total * BATCH);
    const lines = [
      '',
      `bench:api — ${CLIENTS} clients, ${BATCH}-point batches (${KEYS} keys), ${SECONDS} s per phase, best of ${rounds} round${rounds === 1 ? '' : 's'}; MLflow 3.17.2, ${MLFLOW_WORKERS} worker${MLFLOW_WORKERS === 1 ? '' : 's'}`,
      `  ${'log-batch'.padEnd(26)} ${'points/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'server µs/pt'.padStart(12)} ${'pg µs/pt'.padStart(9)}`,
      ...[
        ['flywheel', fwLog],
        ['mlflow', mlLog],
        ...(variantLog ? [[`mlflow ${MLFLOW_WORKERS_VARIANT} workers`, variantLog]] : []),
      ].map(([label, p]) => {
        const phase = p as Phase;
        return `  ${(label as string).padEnd(26)} ${fmt(phase.points_per_s!).padStart(10)} ${phase.latency_ms.p50.toFixed(1).padStart(8)} ${phase.latency_ms.p99.toFixed(1).padStart(8)} ${perPoint(phase, phase.server_cpu_s).toFixed(2).padStart(12)} ${perPoint(phase, phase.postgres_cpu_s).toFixed(2).padStart(9)}`;
      }),
      `  search at ${fmt(RUNS)} runs ("${FILTER}", order_by ${ORDER_BY}, ${MAX_RESULTS} results): flywheel p50 ${fwSearch.p50.toFixed(1)} ms p99 ${fwSearch.p99.toFixed(1)} ms; mlflow p50 ${mlSearch.p50.toFixed(1)} ms p99 ${mlSearch.p99.toFixed(1)} ms (${fwSearch.n} / ${mlSearch.n} requests)`,
      ...(largeSearch
        ? [
            `  flywheel search at ${fmt(RUNS_LARGE)} runs: p50 ${largeSearch.p50.toFixed(1)} ms, p99 ${largeSearch.p99.toFixed(1)} ms (${largeSearch.n} requests); SQL alone ${largePlanMs?.toFixed(1) ?? '?'} ms under EXPLAIN ANALYZE (${fwPlanMs?.toFixed(1) ?? '?'} ms at ${fmt(RUNS)})`,
          ]
        : []),
      ...(profileTop
        ? [
            '  CPU profile of a second flywheel server (log-batch then search), self time:',
            ...profileTop.slice(0, 20).map((p) => `    ${p.self_pct.toFixed(1).padStart(5)} %  ${p.function}`),
          ]
        : []),
      ...(stopped ? [`  ${stopped}`] : []),
      `  log-batch ratio vs mlflow ${(fwLog.points_per_s! / mlLog.points_per_s!).toFixed(2)} (goal ≥ 3), vs mlflow's best configuration ${(fwLog.points_per_s! / mlBest.points_per_s!).toFixed(2)}; search p50 ratio ${(fwSearch.p50 / mlSearch.p50).toFixed(2)} (goal ≤ 1)`,
      `  total ${elapsedS().toFixed(0)} s`,
      '',
    ];
    console.log(lines.join('\n'));

    console.log(
      JSON.stringify({
        bench: 'api',
        log_batch_points_per_s: fixed(fwLog.points_per_s, 0),
        mlflow_log_batch_points_per_s: fixed(mlLog.points_per_s, 0),
        log_batch_ratio_vs_mlflow: fixed(fwLog.points_per_s! / mlLog.points_per_s!, 3),
        log_batch_p50_ms: fwLog.latency_ms.p50,
        log_batch_p99_ms: fwLog.latency_ms.p99,
        mlflow_log_batch_p50_ms: mlLog.latency_ms.p50,
        mlflow_log_batch_p99_ms: mlLog.latency_ms.p99,
        ...(variantLog
          ? {
              mlflow_variant_workers: MLFLOW_WORKERS_VARIANT,
              mlflow_variant_log_batch_points_per_s: fixed(variantLog.points_per_s, 0),
              log_batch_ratio_vs_mlflow_best: fixed(fwLog.points_per_s! / mlBest.points_per_s!, 3),
            }
          : {}),
        search_runs: RUNS,
        search_p50_ms: fixed(fwSearch.p50, 2),
        search_p99_ms: fixed(fwSearch.p99, 2),
        mlflow_search_p50_ms: fixed(mlSearch.p50, 2),
        mlflow_search_p99_ms: fixed(mlSearch.p99, 2),
        search_p50_ratio_vs_mlflow: fixed(fwSearch.p50 / mlSearch.p50, 3),
        search_runs_large: RUNS_LARGE,
        search_large_p50_ms: largeSearch ? fixed(largeSearch.p50, 2) : null,
        search_large_p99_ms: largeSearch ? fixed(largeSearch.p99, 2) : null,
        ...oneMillion(largeSearch),
        search_sql_ms: fixed(fwPlanMs, 2),
        search_large_sql_ms: fixed(largePlanMs, 2),
        log_batch_rounds: rounds,
        log_batch_rounds_points_per_s: Object.fromEntries(
          Object.entries(logPhases).map(([side, phases]) => [side, phases.map((p) => fixed(p.points_per_s, 0))]),
        ),
        server_cpu_us_per_point: {
          flywheel: fixed(perPoint(fwLog, fwLog.server_cpu_s), 2),
          mlflow: fixed(perPoint(mlLog, mlLog.server_cpu_s), 2),
        },
        postgres_cpu_us_per_point: {
          flywheel: fixed(perPoint(fwLog, fwLog.postgres_cpu_s), 2),
          mlflow: fixed(perPoint(mlLog, mlLog.postgres_cpu_s), 2),
        },
        clients: CLIENTS,
        batch: BATCH,
        keys: KEYS,
        seconds: SECONDS,
        mlflow_workers: MLFLOW_WORKERS,
        mlflow_version: '3.17.2',
        load_s: { flywheel: fixed(fwLoadS, 1), mlflow: fixed(mlLoadS, 1), flywheel_large: fixed(largeLoadS, 1) },
        machine_busy_before_pct: fixed(busyBefore, 0),
        ...(profileTop ? { profile_top: profileTop.slice(0, 20) } : {}),
        total_s: fixed(elapsedS(), 0),
      }),
    );
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`bench:api failed: ${(error as Error).stack ?? error}`);
    process.exit(1);
  },
);
