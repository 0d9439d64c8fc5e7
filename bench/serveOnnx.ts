/**
 * bench:serve's ONNX variant: one scikit-learn model served by Flywheel (onnxruntime-node) and by FastAPI +
 * onnxruntime (Python) on the same machine in the same run. bench/serve.ts runs it as its last phase and merges its
 * figures into its JSON line (BENCH_ONNX=0 skips it); alone: `npm run bench:serve-onnx` (the stack must be up:
 * `flywheel up --infra-only`).
 *
 * Model: examples/churn-sklearn/train.py's fit (one-hot contract and plan, GradientBoostingClassifier, 150 trees of
 * depth 3) on the example's generated customers (8,000 rows, seed 7), exported by flywheel.onnx.from_sklearn:
 * bench/python/churn_model.py runs it with a stand-in context in the Python worker's venv. Flywheel gets the file the
 * way a model trained elsewhere arrives: a pipeline with `training.runner: import` (evaluated on the data, registered,
 * deployed to the alias BENCH_ONNX_ALIAS, default `bench-onnx`, of the model `bench-serve-onnx`) on this process's
 * own main worker and task queue. Each run imports a new version; the alias moves to it.
 *
 * Sides:
 * - flywheel: a serving process of its own (serving/main.ts, one Node process, the real app: onnxruntime-node with one
 *   intra-op thread, the prediction log written to Postgres in batches) on a free port, answering for the bench's
 *   alias only (FLYWHEEL_SERVING_ALIAS), so the shared stack's models and traffic stay out of it. POST /predict.
 * - python: bench/python/serve_onnx_fastapi.py: FastAPI + uvicorn (one worker, uvloop + httptools, access log off)
 *   with onnxruntime on the same .onnx file, one intra-op and one inter-op thread as Flywheel's session, pydantic
 *   validation of every feature, the same JSON contract (labels + probabilities); it logs nothing. Its venv (the
 *   packages of PEER_REQUIREMENTS) is built once under the cache dir by scripts/python.ts.
 * Before measuring, the same 50 rows go to both; labels must match and probabilities agree within 1e-4.
 *
 * Load: bench/serveLoad.ts in its own process (bench/processes.ts `runLoadPhase`), the generator bench:serve uses,
 * single-row requests of the CSV's rows (feature columns only), a unique `x-request-id` per request:
 *   1. closed loop, BENCH_CONNECTIONS (32) connections, BENCH_WARMUP_S (2) + BENCH_SECONDS (10) s per side,
 *      BENCH_REPEATS (2) interleaved rounds (F P, P F); each side's best rps counts. After each Flywheel phase the
 *      bench waits (up to BENCH_LOG_WAIT_S, 120) until its answered rows are in `predictions`, so a backlog never runs
 *      into the next phase;
 *   2. open loop at BENCH_RATE (1000) requests/s, Flywheel then the peer: latency from each request's scheduled send
 *      (no coordinated omission). `onnx_lost_prediction_logs`: requests of Flywheel's measured window answered 200
 *      whose row is not in `predictions` BENCH_DRAIN_S (10) s after the phase — one query on the phase's id prefix.
 * Each server's CPU per request (/proc/<pid>/stat) and the machine's load average are reported; the bench's
 * prediction rows are deleted at the end (BENCH_KEEP_LOGS=1 keeps them); every child stops, also on failure or signal.
 * About 2 minutes once the venvs exist (the peer's first venv: a minute or two of pip).
 *
 * Last line of stdout: one JSON object with `onnx_rps_ratio_vs_python` (goal ≥ 2), `onnx_p99_ms_at_1000rps` (goal
 * < 10) and `onnx_lost_prediction_logs` (goal 0), both sides' figures and the versions.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { parsePipelineConfig } from '../config/pipeline';
import { loadConfig, PROJECT_ROOT } from '../config/env';
import { churnCsv } from '../examples/churn-sklearn/generate';
import { ensurePythonEnv } from '../scripts/python';
import { ensurePythonWorkerEnv } from '../scripts/pythonWorker';
import { issueGrant } from '../store/grants';
import { connectServices, createMainWorker, type Services } from '../workers/wiring';
import type { pipelineWorkflow, PipelineInput } from '../workflows/pipeline';
import { budgetedRounds, intFromEnv, lastJson, runProcess } from './peer';
import { children, freePort, lostPredictionLogs, openLoopLoad, runLoadPhase, stopChild, waitUntil } from './processes';
import type { LoadResult, LoadSpec } from './serveLoad';

Runtime.install({ logger: new DefaultLogger('WARN') });

/** The peer's packages (Python 3.11): the newest FastAPI stack, onnxruntime and numpy as in the worker's venv. */
export const PEER_REQUIREMENTS = [
  'fastapi==0.165.0',
  'uvicorn==0.55.0',
  'uvloop==0.23.0',
  'httptools==0.9.0',
  'onnxruntime==1.32.0',
  'numpy==1.26.4',
] as const;

const SECONDS = Math.max(1, intFromEnv('BENCH_SECONDS', 10));
const WARMUP_S = intFromEnv('BENCH_WARMUP_S', 2);
const CONNECTIONS = Math.max(1, intFromEnv('BENCH_CONNECTIONS', 32));
const RATE = Math.max(1, intFromEnv('BENCH_RATE', 1000));
const REPEATS = Math.max(1, intFromEnv('BENCH_REPEATS', 2));
const DRAIN_S = intFromEnv('BENCH_DRAIN_S', 10);
const LOG_WAIT_S = intFromEnv('BENCH_LOG_WAIT_S', 120);
const BUDGET_S = intFromEnv('BENCH_ONNX_BUDGET_S', 240);
const GENERATOR_NICE = -Math.abs(intFromEnv('BENCH_GENERATOR_NICE', 10));
const KEEP_LOGS = process.env.BENCH_KEEP_LOGS === '1';
const ALIAS = process.env.BENCH_ONNX_ALIAS || 'bench-onnx';
const MODEL = 'bench-serve-onnx';
const ROWS = 8000;
const AGREEMENT_TOLERANCE = 1e-4;
const benchStarted = performance.now();
const elapsedS = () => (performance.now() - benchStarted) / 1000;
const runTag = `bench-onnx-${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
const CHURN_FEATURES = {
  numeric: ['tenure_months', 'monthly_charges', 'support_calls', 'paperless'],
  categorical: ['contract', 'internet'],
};

// ---------------------------------------------------------------------------------------------------------------
// Cleanup

let tempDir = '';
let services: Services | undefined;
let mainWorker: { worker: Worker; running: Promise<void> } | undefined;
/** predictions.id before the bench's first request: its rows are above it. */
let baseId = 0;
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const child of children) await stopChild(child, 15_000);
  if (services && !KEEP_LOGS) {
    await services.db
      .execute(sql`delete from predictions where id > ${baseId} and request_id like ${`${runTag}-%`}`)
      .then(
        (deleted) => console.error(`  deleted the bench's ${deleted.rowCount ?? 0} rows from predictions`),
        (error: Error) => console.error(`  could not delete the bench's prediction rows: ${error.message}`),
      );
  }
  if (mainWorker) {
    mainWorker.worker.shutdown();
    await mainWorker.running.catch(() => undefined);
  }
  await services?.close().catch(() => undefined);
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (x: number, digits: number) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);
type Phase = LoadResult & { server_cpu_s: number; machine_busy_pct: number; load_avg_1m: number };
const cpuUs = (p: Phase) => (1e6 * p.server_cpu_s) / Math.max(1, p.completed);
const describe = (p: Phase) =>
  `${fmt(p.rps)} req/s, p50 ${p.latency_ms.p50.toFixed(2)} ms, p99 ${p.latency_ms.p99.toFixed(2)} ms` +
  `${p.measured - p.ok ? ` (not 200: ${p.measured - p.ok} ${JSON.stringify(p.statuses)}${p.first_error ? `: ${p.first_error}` : ''})` : ''}` +
  `; server ${cpuUs(p).toFixed(0)} µs CPU/req, machine ${p.machine_busy_pct.toFixed(0)} % busy, load ${p.load_avg_1m.toFixed(2)}`;

async function countLogged(prefix: string): Promise<number> {
  const rows = await services!.db.execute<{ n: string }>(
    sql`select count(*)::text as n from predictions where id > ${baseId} and request_id like ${`${prefix}%`}`,
  );
  return Number(rows.rows[0]!.n);
}

/** Waits until `expected` rows under the prefix are logged, `capS` passed, or nothing new came for 10 s. */
async function awaitLog(prefix: string, expected: number, capS: number): Promise<{ logged: number; waited_s: number }> {
  const started = performance.now();
  let logged = 0;
  let last = -1;
  let lastChange = started;
  while (true) {
    logged = await countLogged(prefix);
    const now = performance.now();
    if (logged >= expected || now - started >= capS * 1000 || now - lastChange >= 10_000) break;
    if (logged !== last) [last, lastChange] = [logged, now];
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return { logged, waited_s: (performance.now() - started) / 1000 };
}

async function postJson(url: string, body: unknown, requestId: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

type Instance = Record<string, string | number>;

/** `count` rows of the CSV spread over the file, feature columns only (numbers for numeric, text for categorical). */
function loadInstances(csvPath: string, count: number): Instance[] {
  const lines = readFileSync(csvPath, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  const header = lines[0]!.split(',');
  const body = lines.slice(1);
  const step = Math.max(1, Math.floor(body.length / count));
  const out: Instance[] = [];
  for (let i = 0; i < body.length && out.length < count; i += step) {
    const cells = body[i]!.split(',');
    const instance: Instance = {};
    header.forEach((name, k) => {
      if (CHURN_FEATURES.numeric.includes(name)) instance[name] = Number(cells[k]);
      else if (CHURN_FEATURES.categorical.includes(name)) instance[name] = cells[k]!;
    });
    out.push(instance);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Main

try {
  const settings = loadConfig();
  const cores = availableParallelism();
  const peerPython = await ensurePythonEnv('bench-serve-onnx', PEER_REQUIREMENTS);
  const [fastapiVersion, uvicornVersion, pydanticVersion, ortVersion] = (
    await runProcess(peerPython, [
      '-c',
      'import fastapi, uvicorn, pydantic, onnxruntime; ' +
        'print(fastapi.__version__, uvicorn.__version__, pydantic.VERSION, onnxruntime.__version__)',
    ])
  ).stdout
    .trim()
    .split(/\s+/);
  const workerPython = await ensurePythonWorkerEnv();

  // The model: the churn example's function on its generated data, exported to ONNX.
  tempDir = await mkdtemp(join(tmpdir(), 'flywheel-bench-serve-onnx-'));
  const csv = join(tempDir, 'churn.csv');
  writeFileSync(csv, churnCsv({ rows: ROWS, seed: 7 }));
  const modelDir = join(tempDir, 'model');
  const trained = lastJson<{ fit_s: number; metrics: Record<string, number>; bytes: number }>(
    (await runProcess(workerPython, [join(PROJECT_ROOT, 'bench', 'python', 'churn_model.py'), csv, modelDir])).stdout,
    'churn_model.py',
  );
  const modelFile = join(modelDir, 'model.onnx');
  const signatureFile = join(modelDir, 'signature.json');
  const signature = JSON.parse(readFileSync(signatureFile, 'utf8')) as Record<string, unknown>;
  console.error(
    `bench:serve onnx — churn GradientBoosting (150 trees, depth 3) trained in ${trained.fit_s.toFixed(1)} s, ` +
      `validation AUC ${trained.metrics.val_auc?.toFixed(3)}, ONNX ${fmt(trained.bytes)} bytes; ${cores} cores, ` +
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );

  // Flywheel's serving process for the bench's alias, then the model imported, evaluated and deployed to it.
  process.env.FLYWHEEL_DATA_ROOTS = [process.env.FLYWHEEL_DATA_ROOTS, tempDir].filter(Boolean).join(':');
  services = await connectServices(settings);
  const svc = services;
  baseId = Number(
    (await svc.db.execute<{ id: string }>(sql`select coalesce(max(id), 0)::text as id from predictions`)).rows[0]!.id,
  );
  const servingPort = await freePort();
  const servingEnv: NodeJS.ProcessEnv = {
    ...process.env,
    FLYWHEEL_SERVING_PORT: String(servingPort),
    FLYWHEEL_SERVING_ALIAS: ALIAS,
  };
  delete servingEnv.FLYWHEEL_SERVING_URL;
  const serving = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'serving', 'main.ts')], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'ignore', 2],
    env: servingEnv,
  });
  children.add(serving);
  const servingUrl = `http://127.0.0.1:${servingPort}`;
  await waitUntil('serving process', async () => (await fetch(`${servingUrl}/v2/health/ready`)).ok, 60_000, serving);

  const queue = `${runTag}-main`;
  const worker = await createMainWorker(svc, queue);
  mainWorker = { worker, running: worker.run() };
  const config = parsePipelineConfig({
    name: MODEL,
    model: MODEL,
    data: { dataset: 'bench-serve-onnx-churn', source: csv },
    training: {
      runner: 'import',
      source: modelFile,
      signature,
      task: 'classification',
      target: 'churned',
      features: CHURN_FEATURES,
    },
    evaluation: { gates: [] },
    deploy: { alias: ALIAS },
    monitor: { enabled: false },
  });
  const workflowId = `${runTag}-import`;
  const input: PipelineInput = {
    config,
    trigger: { kind: 'cli', reason: 'bench:serve onnx' },
    servingUrl,
    // The model exists from earlier runs: moving its alias needs a release grant, as `flywheel run --token` carries.
    grant: issueGrant({ actor: 'bench:serve', scope: 'admin', model: MODEL, action: 'release', workflowId }),
  };
  const imported = await (
    await svc.client.workflow.start<typeof pipelineWorkflow>('pipelineWorkflow', {
      workflowId,
      taskQueue: queue,
      args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    })
  ).result();
  if (!imported.model || !imported.deployment)
    throw new Error(`the import pipeline deployed nothing: ${JSON.stringify(imported).slice(0, 500)}`);
  const version = imported.model.version;
  await waitUntil(
    `${MODEL} v${version} served`,
    async () => {
      const listed = (await (await fetch(`${servingUrl}/v2/models`)).json()) as {
        models: { name: string; version: string }[];
      };
      return listed.models.some((m) => m.name === MODEL && m.version === String(version));
    },
    60_000,
    serving,
  );
  console.error(
    `  flywheel serving ${servingUrl} (pid ${serving.pid}, alias ${ALIAS}): ${MODEL} v${version}, holdout AUC ` +
      `${imported.metrics.roc_auc?.toFixed(3)}`,
  );

  // The peer, on the same file.
  const peerPort = await freePort();
  const peer = spawn(
    peerPython,
    [
      join(PROJECT_ROOT, 'bench', 'python', 'serve_onnx_fastapi.py'),
      modelFile,
      signatureFile,
      MODEL,
      String(version),
      String(peerPort),
    ],
    { cwd: PROJECT_ROOT, stdio: ['ignore', 2, 2] },
  );
  children.add(peer);
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  await waitUntil('FastAPI + onnxruntime peer', async () => (await fetch(`${peerUrl}/health`)).ok, 60_000, peer);
  console.error(
    `  python peer ${peerUrl} (pid ${peer.pid}): FastAPI ${fastapiVersion}, uvicorn ${uvicornVersion} (uvloop + ` +
      `httptools), pydantic ${pydanticVersion}, onnxruntime ${ortVersion}`,
  );

  // Agreement: the same 50 rows through both servers.
  const instances = loadInstances(csv, 2000);
  const sample = instances.slice(0, 50);
  const viaFlywheel = await postJson(`${servingUrl}/predict`, { model: MODEL, instances: sample }, `${runTag}-agree`);
  const viaPeer = await postJson(`${peerUrl}/predict`, { model: MODEL, instances: sample }, `${runTag}-agree`);
  for (const [side, answer] of [
    ['flywheel', viaFlywheel],
    ['peer', viaPeer],
  ] as const)
    if (answer.status !== 200)
      throw new Error(`${side} /predict answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  const labels = (a: typeof viaPeer) => a.json.predictions as string[];
  const probabilities = (a: typeof viaPeer) => a.json.probabilities as number[][];
  let maxDiff = 0;
  sample.forEach((_, i) => {
    if (labels(viaFlywheel)[i] !== labels(viaPeer)[i])
      throw new Error(`row ${i}: flywheel says ${labels(viaFlywheel)[i]}, the peer ${labels(viaPeer)[i]}`);
    probabilities(viaPeer)[i]!.forEach((p, k) => {
      maxDiff = Math.max(maxDiff, Math.abs(p - probabilities(viaFlywheel)[i]![k]!));
    });
  });
  if (!(maxDiff <= AGREEMENT_TOLERANCE))
    throw new Error(`probabilities disagree: max |Δ| ${maxDiff} > ${AGREEMENT_TOLERANCE}`);
  console.error(`  agreement on ${sample.length} rows: same labels, probabilities max |Δ| ${maxDiff.toExponential(1)}`);

  // Load.
  const bodies = instances.map((row) => JSON.stringify({ model: MODEL, instances: [row] }));
  const targets = {
    flywheel: { port: servingPort, pid: serving.pid },
    python: { port: peerPort, pid: peer.pid },
  };
  type Side = keyof typeof targets;
  const runPhase = async (spec: Omit<LoadSpec, 'host' | 'port' | 'path' | 'bodies'>, side: Side): Promise<Phase> => {
    const load = loadavg()[0]!;
    const result = await runLoadPhase(
      { ...spec, host: '127.0.0.1', port: targets[side].port, path: '/predict', bodies },
      { dir: tempDir, serverPid: targets[side].pid, nice: spec.mode === 'open' ? GENERATOR_NICE : 0 },
    );
    return { ...result, load_avg_1m: Math.max(load, loadavg()[0]!) };
  };

  const closed: Record<Side, Phase[]> = { flywheel: [], python: [] };
  const logBacklogS: number[] = [];
  let phaseCounter = 0;
  const { rounds, stopped } = await budgetedRounds(REPEATS, BUDGET_S, elapsedS, async (round) => {
    const order: Side[] = round % 2 === 0 ? ['flywheel', 'python'] : ['python', 'flywheel'];
    for (const side of order) {
      const prefix = `${runTag}-${++phaseCounter}${side[0]}-`;
      const phase = await runPhase(
        { mode: 'closed', connections: CONNECTIONS, warmupS: WARMUP_S, durationS: SECONDS, idPrefix: prefix },
        side,
      );
      closed[side].push(phase);
      console.error(`  round ${round + 1} ${side.padEnd(8)} ${describe(phase)}`);
      if (phase.ok === 0) throw new Error(`${side} answered no request with 200 (${phase.first_error ?? ''})`);
      if (side === 'flywheel') {
        const log = await awaitLog(prefix, phase.ok_total, LOG_WAIT_S);
        logBacklogS.push(log.waited_s);
        console.error(
          `${' '.repeat(19)}prediction log: ${fmt(log.logged)} of ${fmt(phase.ok_total)} rows written, ` +
            `${log.waited_s < 0.6 ? 'no backlog' : `backlog drained ${log.waited_s.toFixed(1)} s after the phase`}`,
        );
      }
    }
  });

  const openLoop = (side: Side, prefix: string) =>
    runPhase(
      openLoopLoad({
        rate: RATE,
        warmupS: WARMUP_S,
        durationS: SECONDS,
        idPrefix: prefix,
        returnOkIds: side === 'flywheel',
      }),
      side,
    );
  const fixedPrefix = `${runTag}-fixed-`;
  const fixedFly = await openLoop('flywheel', fixedPrefix);
  console.error(`  fixed ${fmt(RATE)}/s flywheel ${describe(fixedFly)}`);
  // Lost prediction logs: answered 200 in the measured window, not in `predictions` once the log had time to drain.
  const lost = await lostPredictionLogs(svc.db, {
    baseId,
    prefix: fixedPrefix,
    okIds: fixedFly.ok_ids ?? [],
    drainS: DRAIN_S,
  });
  const missing = lost.missing;
  console.error(
    `  prediction log: ${fmt(lost.answered)} requests answered 200 in the measured window, ${fmt(missing)} missing ` +
      `${lost.drainS.toFixed(1)} s after the phase`,
  );
  await awaitLog(fixedPrefix, fixedFly.ok_total, LOG_WAIT_S);
  const fixedPeer = await openLoop('python', `${runTag}-fixedpy-`);
  console.error(`  fixed ${fmt(RATE)}/s python   ${describe(fixedPeer)}`);

  // Summary.
  const best = (phases: Phase[]) => phases.reduce((a, b) => (b.rps > a.rps ? b : a));
  const fs = best(closed.flywheel);
  const ps = best(closed.python);
  const ratio = fs.rps / ps.rps;
  const fixedFigures = (p: Phase) => ({
    achieved_rps: fixed(p.rps, 1),
    p50_ms: p.latency_ms.p50,
    p99_ms: p.latency_ms.p99,
    p999_ms: p.latency_ms.p999,
    max_ms: p.latency_ms.max,
    not_ok: p.measured - p.ok,
    send_lag_p99_ms: p.send_lag_ms?.p99 ?? null,
    cpu_us_per_request: fixed(cpuUs(p), 0),
    load_avg_1m: fixed(p.load_avg_1m, 2),
  });
  console.log(
    [
      '',
      `bench:serve onnx — ${MODEL} v${version} (churn GradientBoosting, ${CHURN_FEATURES.numeric.length} numeric + ` +
        `${CHURN_FEATURES.categorical.length} categorical inputs), ${cores} cores; ${CONNECTIONS} connections, ` +
        `${SECONDS} s per phase, best of ${rounds} round${rounds === 1 ? '' : 's'}`,
      `  flywheel (onnxruntime-node)   ${fmt(fs.rps).padStart(7)} req/s  p50 ${fs.latency_ms.p50.toFixed(2)} ms  ` +
        `p99 ${fs.latency_ms.p99.toFixed(2)} ms  ${cpuUs(fs).toFixed(0)} µs CPU/req (runs ${closed.flywheel.map((p) => fmt(p.rps)).join(', ')})`,
      `  python FastAPI + onnxruntime  ${fmt(ps.rps).padStart(7)} req/s  p50 ${ps.latency_ms.p50.toFixed(2)} ms  ` +
        `p99 ${ps.latency_ms.p99.toFixed(2)} ms  ${cpuUs(ps).toFixed(0)} µs CPU/req (runs ${closed.python.map((p) => fmt(p.rps)).join(', ')})`,
      `  fixed ${fmt(RATE)} req/s: flywheel p99 ${fixedFly.latency_ms.p99.toFixed(2)} ms (achieved ${fmt(fixedFly.rps)}), ` +
        `lost prediction logs ${missing} of ${fmt(lost.answered)}; python p99 ${fixedPeer.latency_ms.p99.toFixed(2)} ms ` +
        `(achieved ${fmt(fixedPeer.rps)})`,
      ...(stopped ? [`  ${stopped}`] : []),
      `  single-row rps ratio vs python: ${ratio.toFixed(2)} (goal ≥ 2); total ${elapsedS().toFixed(0)} s`,
      '',
    ].join('\n'),
  );
  const figures = {
    bench: 'serve-onnx',
    onnx_rps_ratio_vs_python: fixed(ratio, 3),
    onnx_p99_ms_at_1000rps: fixedFly.latency_ms.p99,
    onnx_lost_prediction_logs: missing,
    flywheel_rps: fixed(fs.rps, 0),
    flywheel_p50_ms: fs.latency_ms.p50,
    flywheel_p99_ms: fs.latency_ms.p99,
    python_rps: fixed(ps.rps, 0),
    python_p50_ms: ps.latency_ms.p50,
    python_p99_ms: ps.latency_ms.p99,
    flywheel_runs_rps: closed.flywheel.map((p) => fixed(p.rps, 0)),
    python_runs_rps: closed.python.map((p) => fixed(p.rps, 0)),
    flywheel_cpu_us_per_request: fixed(cpuUs(fs), 0),
    python_cpu_us_per_request: fixed(cpuUs(ps), 0),
    flywheel_fixed: fixedFigures(fixedFly),
    python_fixed: fixedFigures(fixedPeer),
    prediction_log: {
      answered_200: lost.answered,
      missing,
      drain_s: fixed(lost.drainS, 1),
      closed_loop_backlog_s: logBacklogS.map((s) => fixed(s, 1)),
    },
    fixed_rate: RATE,
    max_abs_probability_diff: maxDiff,
    model: MODEL,
    model_version: version,
    holdout_roc_auc: fixed(imported.metrics.roc_auc ?? NaN, 3),
    alias: ALIAS,
    onnx_bytes: trained.bytes,
    connections: CONNECTIONS,
    seconds: SECONDS,
    rounds,
    cores,
    load_avg_1m: closed.flywheel.concat(closed.python).map((p) => fixed(p.load_avg_1m, 2)),
    machine_busy_pct: closed.flywheel.concat(closed.python).map((p) => fixed(p.machine_busy_pct, 0)),
    node_version: process.versions.node,
    python_peer: {
      fastapi: fastapiVersion,
      uvicorn: uvicornVersion,
      pydantic: pydanticVersion,
      onnxruntime: ortVersion,
      http: 'httptools',
      loop: 'uvloop',
      workers: 1,
    },
    total_s: fixed(elapsedS(), 1),
  };
  await cleanup();
  console.log(JSON.stringify(figures));
} finally {
  await cleanup();
}
process.exit(0);
