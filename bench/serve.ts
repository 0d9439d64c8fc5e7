/**
 * bench:serve — Flywheel's HTTP inference server against the same model's predict in-process (the limit) and against
 * a Python peer on the same machine in the same run: FastAPI + uvicorn serving the same network with the same
 * preprocessing and the same JSON contract.
 *
 * Model: the bench brings the stack up (`flywheel up --quiet`: Temporal, MinIO, Postgres, worker, serving; a serving
 * process running older code is restarted) and asks the serving process what it serves (GET /v2/models). It takes the
 * pipeline's model (examples/demand/pipeline.yaml `model`, or BENCH_MODEL); when that is not deployed, or with
 * BENCH_DEMO=1, it runs `flywheel demo` first (ingest → … → deploy of the retail demand model; a cold
 * ~/.cache/flywheel also builds Temporal and MinIO, minutes). The alias is the one the server reports. Requests are
 * rows of the demo's dataset (the pipeline's `data.source`), feature columns only; the same bodies go to every server.
 *
 * Sides:
 * - flywheel: the running serving process (serving/main.ts, one Node process), POST /predict. It logs every row to
 *   Postgres asynchronously (batched inserts into `predictions`); Postgres runs on this machine, so that work is part
 *   of what the server costs here. The peer logs nothing.
 * - in-process: this process loads the deployed version with ServedModels (the server's alias) and calls serving/app.ts
 *   `predict(models, served, instances)` — encode + forward pass + decode, what the server does per request minus
 *   HTTP, JSON, batching across requests and logging — in a tight loop: single rows (the network in plain JS,
 *   inference/dense.ts, as the server runs batches of up to 4 rows), then BENCH_BATCH-row batches (TF.js). The server
 *   batches concurrent single-row requests into one forward pass, so the in-process single-row rate is not a hard
 *   ceiling for it; the batch rate is.
 * - python: bench/serve_fastapi.py on Debian's python3-fastapi 0.92 / python3-uvicorn 0.17.6 / pydantic 1.10 /
 *   python3-sklearn 1.2.1 (/usr/bin/python3; apt-get installs them when missing and root), one uvicorn worker on
 *   uvloop + httptools (python3-uvloop, python3-httptools: what `uvicorn[standard]` brings), access log off. The bench
 *   writes the deployed model's dense kernels/biases and fitted preprocessor to a JSON file; the peer copies the
 *   weights into a scikit-learn MLPRegressor, so it runs the same network (the demand MLP with the hidden units it was
 *   trained with: pipeline.yaml says [64, 32], its sweep may pick another; both are reported) with the same one-hot +
 *   standardisation, pydantic validation of every feature, in float64. numpy's BLAS (Debian: OpenBLAS, pthreads) may
 *   spread a batch's matrix products over every core, Flywheel's wasm backend uses one: in the batch phase the peer
 *   can use both cores. Before measuring, the same 50 rows go to both servers and to the in-process predict; the
 *   predictions must agree (float32 vs float64: relative difference ≤ 1e-3), else the bench fails.
 *
 * Load: bench/serveLoad.ts, a child process (never a server's event loop), the same generator for both servers: raw
 * keep-alive HTTP/1.1 over node:net, one request in flight per connection, a unique `x-request-id` on every request.
 * The machine has few cores (2 on the reference machine): the server under test, the generator and (for Flywheel)
 * Postgres compete for them, so absolute figures are lower than on a bigger box, but both servers face the same
 * generator and the ratio is fair. Each server's own CPU time per request (/proc/<pid>/stat) is reported too, a figure
 * the competition distorts less; for Flywheel it includes writing the phase's prediction log, also after the load
 * stopped, and Postgres' CPU is shown beside it. The machine's busy share before the bench is reported (and warned
 * about above 25 %): a test run on the same stack skews everything.
 * Phases:
 *   1. closed loop, single-row requests, BENCH_CONNECTIONS (32) connections, BENCH_WARMUP_S (2) + BENCH_SECONDS (10)
 *      s per server: max requests/s, p50/p99 (write to last byte);
 *   2. closed loop, BENCH_BATCH (100)-row requests, same connections and length: rows/s;
 *      phases 1–2 run BENCH_REPEATS (2) interleaved rounds (F P, P F), the best run of each side counts. After each
 *      Flywheel phase the bench waits (up to BENCH_LOG_WAIT_S, 120) until every row it answered is in `predictions`,
 *      so a log backlog never runs into the next phase; how long that took is reported (the log's throughput);
 *   3. open loop at a fixed BENCH_RATE (1000) requests/s, single rows, BENCH_SECONDS s after a BENCH_WARMUP_S warm-up,
 *      Flywheel then the peer: latency from each request's scheduled send time (no coordinated omission; the clock is
 *      a worker thread, the generator runs at nice BENCH_GENERATOR_NICE (-10) when root so its sends keep time, and its
 *      own lateness is reported), achieved rate. For Flywheel, `lost_prediction_logs`: requests of the measured window
 *      answered 200 (ids `<prefix>m<n>`) whose row is not in `predictions` BENCH_DRAIN_S (10) s after the phase at
 *      the latest — one SQL query on the phase's request-id prefix, polled until none is missing;
 *   4. beside a pipeline: a serving process of the bench's own (bench/servingProbed.ts: serving/main.ts with a pause
 *      probe inside, same alias) is warmed like the stack's process (phase 1's closed loop, its log drained), takes the
 *      phase-3 load alone (the control), then again while a small demand pipeline runs on the stack's workers
 *      (generated rows under data/, no deploy) and the monitor's drift check (checkPredictionDrift over the model's
 *      last hour) runs back to back (in bench/monitorChecks.ts, a child at the workers' niceness, as a worker runs it):
 *      `p99_ms_at_1000rps_during_pipeline`, with the process's event-loop stalls (and whether it ran meanwhile), GC
 *      pauses and pg pool waits, each request of 10 ms or more lined up with them. BENCH_SERVING_NICE runs that
 *      process at another niceness (an experiment; negative needs root);
 *   5. optional (BENCH_PROFILE=1): a second serving process under `node --cpu-prof` on another port, phase 1 against
 *      it, then its self time by function (top entries printed and in the JSON).
 * The bench's rows in `predictions` are deleted at the end (BENCH_KEEP_LOGS=1 keeps them), so monitors do not see the
 * synthetic traffic; the peer is stopped at the end, also on failure or SIGINT / SIGTERM. About 4 minutes with the
 * defaults once the stack is warm (most of it waiting for Flywheel's log after the batch phases), plus the demo
 * when it has to run.
 *
 * Environment: BENCH_SECONDS (10), BENCH_WARMUP_S (2), BENCH_CONNECTIONS (32), BENCH_BATCH (100), BENCH_RATE (1000),
 * BENCH_REPEATS (2), BENCH_INPROC_S (3, per in-process loop), BENCH_DRAIN_S (10), BENCH_LOG_WAIT_S (120),
 * BENCH_BUDGET_S (480: no further round past it), BENCH_MODEL, BENCH_DEMO=1, BENCH_PROFILE=1, BENCH_KEEP_LOGS=1,
 * BENCH_GENERATOR_NICE (10, applied as -10), BENCH_PEER_HTTP (httptools | h11), BENCH_PEER_LOOP (uvloop | asyncio),
 * BENCH_PYTHON (/usr/bin/python3), BENCH_API_KEY (sent as a bearer token when the server requires keys),
 * BENCH_SERVING_NICE (0), BENCH_SERVING_NODE_FLAGS (none; e.g. --single-threaded-gc). The phase beside a pipeline
 * leaves that pipeline's dataset version, run and model version (`bench-serve-<tag>-model`) in the registry, as
 * bench:soak does; its monitor checks are deleted at the end.
 * A quick run: BENCH_SECONDS=3 BENCH_REPEATS=1 npm run bench:serve.
 *
 * Last line of stdout: one JSON object with `rps_ratio_vs_python` (Flywheel single-row requests/s ÷ the peer's; > 1:
 * Flywheel faster), `p99_ms_at_1000rps`, `p99_ms_at_1000rps_during_pipeline`, `lost_prediction_logs`, both servers'
 * rps / p50 / p99 / batch rows/s, the in-process limits, the prediction log's backlog, CPU per request, `cores` and
 * the TF.js `backend`.
 * Then the ONNX variant (bench/serveOnnx.ts: a scikit-learn model, Flywheel's onnxruntime-node vs FastAPI +
 * onnxruntime; about 2 minutes; BENCH_ONNX=0 skips it) adds `onnx_rps_ratio_vs_python`, `onnx_p99_ms_at_1000rps`,
 * `onnx_lost_prediction_logs` and its other figures under `onnx`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { sql } from 'drizzle-orm';
import { loadPipelineConfig, parsePipelineConfig, type PipelineConfig } from '../config/pipeline';
import { generateDemand } from '../examples/demand/generate';
import { startPipeline } from '../storage/pipelines';
import { temporalClient } from '../storage/temporal';
import type { FlywheelConfig } from '../config/env';
import { attributeSlow, describePauses, pauseFigures, type PauseReport } from './pauseProbe';
import { predict } from '../serving/app';
import { ServedModels, type LoadedModel } from '../serving/models';
import { TfjsRunner } from '../inference/tfjs';
import { denseNetworkOf } from '../inference/dense';
import { closeDb, connectDb, type Db } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { loadConfig, PROJECT_ROOT } from '../config/env';
import { niced } from '../scripts/proc';
import { budgetedRounds, ensurePythonPeer, intFromEnv, lastJson, runProcess } from './peer';
import {
  busyPct,
  children,
  cpuSecondsOf,
  freePort,
  lostPredictionLogs,
  openLoopLoad,
  machineTicks,
  runLoadPhase,
  stopChild,
  waitUntil,
} from './processes';
import type { LoadResult, LoadSpec } from './serveLoad';

const SECONDS = Math.max(1, intFromEnv('BENCH_SECONDS', 10));
const WARMUP_S = intFromEnv('BENCH_WARMUP_S', 2);
const CONNECTIONS = Math.max(1, intFromEnv('BENCH_CONNECTIONS', 32));
const BATCH = Math.max(1, intFromEnv('BENCH_BATCH', 100));
const RATE = Math.max(1, intFromEnv('BENCH_RATE', 1000));
const REPEATS = Math.max(1, intFromEnv('BENCH_REPEATS', 2));
const INPROC_S = Math.max(1, intFromEnv('BENCH_INPROC_S', 3));
const DRAIN_S = intFromEnv('BENCH_DRAIN_S', 10);
const LOG_WAIT_S = intFromEnv('BENCH_LOG_WAIT_S', 120);
const MODEL = process.env.BENCH_MODEL || undefined;
/**
 * Niceness of the open-loop generator: its sends keep their schedule when the server saturates the cores (root only).
 */
const GENERATOR_NICE = -Math.abs(intFromEnv('BENCH_GENERATOR_NICE', 10));
const BUDGET_S = intFromEnv('BENCH_BUDGET_S', 480);
/** Niceness of the probed serving process in the phase beside a pipeline (0: unchanged; negative needs root). */
const SERVING_NICE = Number(process.env.BENCH_SERVING_NICE ?? 0);
/** Extra node / V8 flags for that process (an experiment: e.g. `--single-threaded-gc`; space-separated). */
const SERVING_NODE_FLAGS = (process.env.BENCH_SERVING_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
const PYTHON = process.env.BENCH_PYTHON || '/usr/bin/python3';
const PEER_HTTP = process.env.BENCH_PEER_HTTP || 'httptools';
const PEER_LOOP = process.env.BENCH_PEER_LOOP || 'uvloop';
const RUN_DEMO = process.env.BENCH_DEMO === '1';
const PROFILE = process.env.BENCH_PROFILE === '1';
const KEEP_LOGS = process.env.BENCH_KEEP_LOGS === '1';
const API_KEY = process.env.BENCH_API_KEY || undefined;
const AGREEMENT_TOLERANCE = 1e-3;
const benchStarted = performance.now();
const elapsedS = () => (performance.now() - benchStarted) / 1000;
const runTag = `bench-serve-${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;

// ---------------------------------------------------------------------------------------------------------------
// Processes, CPU accounting, cleanup

/** CPU seconds so far of every process named `postgres` (the postmaster and its backends), by pid. */
function postgresCpu(): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres')
        byPid.set(Number(entry), cpuSecondsOf(Number(entry)));
    } catch {
      // gone meanwhile
    }
  }
  return byPid;
}

/** Postgres CPU seconds between two samples: backends that started count whole, those that ended are not seen. */
function postgresCpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += Math.max(0, seconds - (before.get(pid) ?? 0));
  return total;
}

let tempDir = '';
let db: Db | undefined;
/** predictions.id before the bench's first request: its rows are above it. */
let baseId = 0;
let cleaned = false;
/** The pipeline started beside the load, terminated at the end if it still runs. */
let besidePipeline: { terminate(reason: string): Promise<unknown> } | undefined;
let besideData = '';
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const child of children) await stopChild(child);
  if (db) {
    if (!KEEP_LOGS) {
      const deleted = await db
        .execute(sql`delete from predictions where id > ${baseId} and request_id like ${`${runTag}-%`}`)
        .catch((error: Error) => {
          console.error(`  could not delete the bench's prediction rows: ${error.message}`);
          return undefined;
        });
      if (deleted)
        console.error(
          `  deleted the bench's ${(deleted.rowCount ?? 0).toLocaleString('en-US')} rows from predictions (BENCH_KEEP_LOGS=1 keeps them)`,
        );
    }
    await db
      .execute(sql`delete from monitor_checks where monitor_workflow_id = ${`${runTag}-monitor`}`)
      .catch(() => undefined);
    await closeDb(db).catch(() => undefined);
  }
  if (besidePipeline) await besidePipeline.terminate('bench:serve ended').catch(() => undefined);
  if (besideData) await rm(besideData, { force: true });
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

/** Runs the CLI (its output on stderr); a demo that cannot finish (a broken pipeline) fails the bench after 15 min. */
function flywheelCli(args: string[]): void {
  const result = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'flywheel.js'), ...args], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 2, 2],
    timeout: 900_000,
    killSignal: 'SIGTERM',
  });
  if (result.status !== 0)
    throw new Error(
      `flywheel ${args.join(' ')} ${result.error ? `failed: ${result.error.message}` : `exited with ${result.status ?? result.signal}`}`,
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Load phases

interface Phase extends LoadResult {
  server_cpu_s: number;
  postgres_cpu_s: number;
  machine_busy_pct: number;
  /** Flywheel: whether its prediction log kept up (rows written under the phase's ids). */
  log?: LogDrain;
  /** Postgres CPU by pid at the end of the phase. */
  pg_after: Map<number, number>;
}

let lastPhaseStarted = performance.now();

async function runPhase(spec: LoadSpec, serverPid: number | undefined, withPostgres: boolean): Promise<Phase> {
  lastPhaseStarted = performance.now();
  const pg0 = withPostgres ? postgresCpu() : new Map<number, number>();
  const result = await runLoadPhase(spec, { dir: tempDir, serverPid, nice: spec.mode === 'open' ? GENERATOR_NICE : 0 });
  const pgAfter = withPostgres ? postgresCpu() : new Map<number, number>();
  return { ...result, postgres_cpu_s: postgresCpuBetween(pg0, pgAfter), pg_after: pgAfter };
}

/**
 * Flywheel: waits for the phase's rows in the prediction log, and charges the phase with what the serving process
 * and Postgres spent writing its backlog after the load stopped (the log's cost belongs to the requests).
 */
async function settleLog(phase: Phase, prefix: string, rows: number, serverPid: number | undefined): Promise<void> {
  const cpu0 = cpuSecondsOf(serverPid);
  phase.log = await awaitLog(prefix, phase.ok_total * rows, LOG_WAIT_S);
  phase.server_cpu_s += cpuSecondsOf(serverPid) - cpu0;
  phase.postgres_cpu_s += postgresCpuBetween(phase.pg_after, postgresCpu());
}

// ---------------------------------------------------------------------------------------------------------------
// Data and model

type Instance = Record<string, string | number>;

/** Rows of the demo CSV as request instances (feature columns only), spread evenly over the file. */
function loadInstances(csvPath: string, served: LoadedModel, count: number): Instance[] {
  const lines = readFileSync(csvPath, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  const header = lines[0]!.split(',');
  const pre = tfjsOf(served).preprocessor;
  const numeric = new Set(pre.numeric.map((n) => n.name));
  const categorical = new Set(pre.categorical.map((c) => c.name));
  const body = lines.slice(1);
  const step = Math.max(1, Math.floor(body.length / count));
  const out: Instance[] = [];
  for (let i = 0; i < body.length && out.length < count; i += step) {
    const cells = body[i]!.split(',');
    const instance: Instance = {};
    header.forEach((name, k) => {
      const raw = cells[k]!;
      if (numeric.has(name)) instance[name] = Number(raw);
      else if (categorical.has(name)) instance[name] = /^-?\d+$/.test(raw) ? Number(raw) : raw; // day_of_week: 6, as cli/demo.ts sends it
    });
    out.push(instance);
  }
  if (out.length === 0) throw new Error(`no rows in ${csvPath}`);
  return out;
}

interface PeerLayer {
  kernel: number[];
  bias: number[];
  shape: number[];
  activation: string;
}

/** The served TF.js model: the peer rebuilds its network, so the bench needs one. */
function tfjsOf(served: LoadedModel): TfjsRunner {
  if (!(served.runner instanceof TfjsRunner))
    throw new Error(`${served.name} v${served.version} is an ONNX model; the serving bench compares TF.js networks`);
  return served.runner;
}

/** The served network's dense layers (inference/dense.ts reads them the way serving does), for the peer. */
function denseLayers(served: LoadedModel): PeerLayer[] {
  const network = denseNetworkOf(tfjsOf(served).model);
  if (!network)
    throw new Error(`${served.name} v${served.version} is not a stack of dense layers; the peer only rebuilds MLPs`);
  return network.layers.map((layer) => ({
    kernel: Array.from(layer.kernel),
    bias: Array.from(layer.bias),
    shape: [layer.inputs, layer.units],
    activation: layer.activation,
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// Reporting and the prediction log

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (x: number, digits: number) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

const failures = (p: Phase) => p.measured - p.ok;
const describe = (p: Phase, rowsPerRequest: number) =>
  `${fmt(p.rps)} req/s${rowsPerRequest > 1 ? ` = ${fmt(p.rps * rowsPerRequest)} rows/s` : ''}, p50 ${p.latency_ms.p50.toFixed(2)} ms, p99 ${p.latency_ms.p99.toFixed(2)} ms` +
  `${failures(p) ? ` (not 200: ${failures(p)} ${JSON.stringify(p.statuses)}, errors ${p.errors}${p.first_error ? `: ${p.first_error}` : ''})` : ''}` +
  `; server CPU ${((1e6 * p.server_cpu_s) / Math.max(1, p.completed)).toFixed(0)} µs/req${p.postgres_cpu_s ? ` + postgres ${((1e6 * p.postgres_cpu_s) / Math.max(1, p.completed)).toFixed(0)} µs/req` : ''}, generator ${p.generator_cpu_s.toFixed(1)} s CPU, machine ${p.machine_busy_pct.toFixed(0)} % busy`;
const describeFixed = (p: Phase) =>
  `achieved ${fmt(p.rps)} req/s, p50 ${p.latency_ms.p50.toFixed(2)} ms, p99 ${p.latency_ms.p99.toFixed(2)} ms, p99.9 ${p.latency_ms.p999.toFixed(2)} ms, max ${p.latency_ms.max.toFixed(1)} ms` +
  `${failures(p) ? `, not 200: ${failures(p)} (${JSON.stringify(p.statuses)}, errors ${p.errors}, unfinished ${p.unfinished})` : ''}; generator send lag p99 ${p.send_lag_ms?.p99?.toFixed(2)} ms` +
  `; server CPU ${((1e6 * p.server_cpu_s) / Math.max(1, p.completed)).toFixed(0)} µs/req${p.postgres_cpu_s ? ` + postgres ${((1e6 * p.postgres_cpu_s) / Math.max(1, p.completed)).toFixed(0)} µs/req` : ''}, machine ${p.machine_busy_pct.toFixed(0)} % busy`;
const describeLog = (l: LogDrain) =>
  `prediction log: ${fmt(l.logged)} of ${fmt(l.expected)} rows written${l.logged < l.expected ? ` (${fmt(l.expected - l.logged)} NOT written after waiting ${l.waited_s.toFixed(0)} s)` : ''}; ` +
  `${l.waited_s < 0.6 ? 'no backlog' : `backlog drained ${l.waited_s.toFixed(1)} s after the phase`}, ${fmt(l.rows_per_s)} rows/s written from the phase's start`;

interface LogDrain {
  expected: number;
  logged: number;
  waited_s: number;
  rows_per_s: number;
}

/**
 * Waits until `expected` rows under the id prefix are in `predictions` (the server's log caught up), or `capS`
 * passed, or nothing was written for 10 s.
 */
async function awaitLog(
  prefix: string,
  expected: number,
  capS: number,
  phaseStarted = lastPhaseStarted,
): Promise<LogDrain> {
  const started = performance.now();
  let logged = 0;
  let last = -1;
  let lastChange = started;
  while (true) {
    const rows = await db!.execute<{ n: string }>(
      sql`select count(*)::text as n from predictions where id > ${baseId} and request_id like ${`${prefix}%`}`,
    );
    logged = Number(rows.rows[0]!.n);
    const now = performance.now();
    if (logged >= expected) break;
    if (logged !== last) [last, lastChange] = [logged, now];
    if (now - started >= capS * 1000 || now - lastChange >= 10_000) break;
    await new Promise((resolve) => setTimeout(resolve, now - started < 5_000 ? 500 : 1_000));
  }
  const now = performance.now();
  return {
    expected,
    logged,
    waited_s: (now - started) / 1000,
    rows_per_s: logged / Math.max(1e-3, (now - phaseStarted) / 1000),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Main

/** Requests to a server's /predict as fast as CONNECTIONS connections take them: phases 1 and 2, and warm-ups. */
function closedLoopSpec(host: string, port: number, bodies: string[], idPrefix: string): LoadSpec {
  return {
    mode: 'closed',
    host,
    port,
    path: '/predict',
    bodies,
    connections: CONNECTIONS,
    warmupS: WARMUP_S,
    durationS: SECONDS,
    idPrefix,
    apiKey: API_KEY,
  };
}

/** Single rows at RATE per second to a server's /predict, open loop: the fixed-rate phases, alone or beside work. */
function fixedRate(host: string, port: number, bodies: string[], idPrefix: string): LoadSpec {
  return openLoopLoad({
    host,
    port,
    path: '/predict',
    bodies,
    rate: RATE,
    warmupS: WARMUP_S,
    durationS: SECONDS,
    idPrefix,
    apiKey: API_KEY,
  });
}

/** Requests at least this slow are lined up with the serving process's pauses. */
const SLOW_MS = 10;

/**
 * The open-loop phase again, against a serving process of the bench's own (serving/main.ts inside
 * bench/servingProbed.ts: the same code, the same alias, a pause probe inside) while a real pipeline runs beside it
 * (a small demand pipeline on generated rows, started like the CLI starts one, on the stack's workers: ingest,
 * validate, train, evaluate, register; no deploy) and monitor checks run back to back (the monitor's own activity,
 * checkPredictionDrift, over the served model's last hour of predictions, under a monitor id of the bench's own).
 */
async function predictionsBesidePipeline(
  bodies: string[],
  entry: { name: string; alias: string },
  settings: Readonly<FlywheelConfig>,
  demand: PipelineConfig,
) {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FLYWHEEL_SERVING_PORT: String(port),
    FLYWHEEL_SERVING_ALIAS: entry.alias,
  };
  delete env.FLYWHEEL_SERVING_URL;
  const server = spawn(
    process.execPath,
    [...SERVING_NODE_FLAGS, '--import', 'tsx', join(PROJECT_ROOT, 'bench', 'servingProbed.ts')],
    { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'ignore'], env },
  );
  children.add(server);
  // The experiment behind the README's proposal: serving at a higher CPU priority than the pipeline's workers.
  if (SERVING_NICE !== 0 && server.pid) setPriority(server.pid, SERVING_NICE);
  let out = '';
  server.stdout!.setEncoding('utf8').on('data', (text: string) => (out += text));
  await waitUntil(
    'probed serving process',
    async () =>
      out.includes('"probe_port"') &&
      (await fetch(`http://127.0.0.1:${port}/v2/models/${encodeURIComponent(entry.name)}/ready`)).ok,
    90_000,
    server,
  );
  const probePort = (JSON.parse(out.split('\n').find((l) => l.includes('"probe_port"'))!) as { probe_port: number })
    .probe_port;
  const spec = (prefix: string): LoadSpec => ({ ...fixedRate('127.0.0.1', port, bodies, prefix), slowMs: SLOW_MS });
  // A fresh process compiles its hot paths over its first tens of thousands of requests (its CPU per request at
  // 1,000 req/s was ~580 µs over its first 7 s against ~400 µs for the stack's serving process, and its p99 17–27 ms
  // against 4–6 ms). It gets what that process got before its fixed-rate phase, phase 1's closed loop, and its log
  // is drained; then the same load alone, the control, and beside the pipeline measure a warm replica.
  const warm = await runPhase(closedLoopSpec('127.0.0.1', port, bodies, `${runTag}-warm-`), server.pid, false);
  await awaitLog(`${runTag}-warm-`, warm.ok_total, LOG_WAIT_S);
  const alone = await runPhase(spec(`${runTag}-alone-`), server.pid, true);

  // Under the data root the workers read from (they refuse files elsewhere); removed at the end.
  const source = join(PROJECT_ROOT, 'data', `${runTag}-beside-pipeline.csv`);
  besideData = source;
  await mkdir(join(PROJECT_ROOT, 'data'), { recursive: true });
  await generateDemand(source, { stores: 4, items: 6, days: 120, seed: 7 });
  const config = parsePipelineConfig({
    name: `${runTag}-pipeline`,
    model: `${runTag}-model`,
    data: { dataset: `${runTag}-data`, source },
    schema: demand.schema,
    training: { ...demand.training, epochs: 5 },
    deploy: { enabled: false },
    monitor: { enabled: false },
  });
  const temporal = await temporalClient(settings.temporal);
  const handle = await startPipeline(temporal, settings, config, `${runTag}-pipeline`, { kind: 'cli' });
  besidePipeline = handle;
  // The monitor's drift check back to back where a worker runs it: at the workers' niceness, sessions included.
  const checker = spawn(
    ...niced(settings.workerNice, process.execPath, [
      '--import',
      'tsx',
      join(PROJECT_ROOT, 'bench', 'monitorChecks.ts'),
      JSON.stringify({
        monitorWorkflowId: `${runTag}-monitor`,
        modelName: entry.name,
        alias: entry.alias,
        settings: demand.monitor,
      }),
    ]),
    { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.add(checker);
  const checks: { seconds: number; verdict: string; rows: number }[] = [];
  createInterface({ input: checker.stdout! }).on('line', (line) => {
    if (line.startsWith('{')) checks.push(JSON.parse(line) as (typeof checks)[number]);
  });
  await waitUntil('the first monitor check', async () => checks.length > 0, 120_000, checker);
  await fetch(`http://127.0.0.1:${probePort}/?reset=1`);
  let phase: Phase;
  try {
    phase = await runPhase(spec(`${runTag}-beside-`), server.pid, true);
  } finally {
    await stopChild(checker, 60_000);
  }
  const pauses = (await (await fetch(`http://127.0.0.1:${probePort}/`)).json()) as PauseReport;
  const description = await handle.describe();
  const pipelineState = `${description.status.name} ${((Date.now() - description.startTime.getTime()) / 1000).toFixed(0)} s after its start`;
  await stopChild(server, 15_000);
  await temporal.connection.close().catch(() => undefined);
  return { phase, alone, pauses, checks, pipeline: pipelineState, slowCauses: attributeSlow(phase.slow ?? [], pauses) };
}

async function postJson(
  url: string,
  body: unknown,
  requestId?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(requestId ? { 'x-request-id': requestId } : {}),
      ...(API_KEY ? { authorization: `Bearer ${API_KEY}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

try {
  // Python peer first: a missing package fails fast, before the stack comes up.
  const peerVersions = ensurePythonPeer(
    PYTHON,
    'import fastapi, uvicorn, pydantic, starlette; print(fastapi.__version__, uvicorn.__version__, pydantic.VERSION, starlette.__version__)',
    'python3-fastapi',
    'bench:serve',
  );
  const sklearnVersions = ensurePythonPeer(
    PYTHON,
    'import sklearn, numpy; from threadpoolctl import threadpool_info; b = [x for x in threadpool_info() if x["user_api"] == "blas"]; ' +
      'print(sklearn.__version__, numpy.__version__, f"{b[0][\'internal_api\']}/{b[0][\'num_threads\']}" if b else "unknown")',
    'python3-sklearn',
    'bench:serve',
  );
  if (PEER_LOOP === 'uvloop')
    ensurePythonPeer(PYTHON, 'import uvloop; print(uvloop.__version__)', 'python3-uvloop', 'bench:serve');
  if (PEER_HTTP === 'httptools')
    ensurePythonPeer(PYTHON, 'import httptools; print(httptools.__version__)', 'python3-httptools', 'bench:serve');
  const [fastapiVersion, uvicornVersion, pydanticVersion, starletteVersion] = peerVersions.split(/\s+/);
  const [sklearnVersion, numpyVersion, blas = 'unknown'] = sklearnVersions.split(/\s+/);

  console.error('bench:serve: bringing the stack up (flywheel up --quiet)');
  flywheelCli(['up', '--quiet']);
  const pipeline = loadPipelineConfig(join(PROJECT_ROOT, 'examples', 'demand', 'pipeline.yaml'));
  let config = loadConfig();
  const listModels = async () =>
    (
      (await (await fetch(`${config.serving.url}/v2/models`)).json()) as {
        models: { name: string; version: string; alias: string }[];
      }
    ).models;
  let servedList = await listModels();
  const wanted = MODEL ?? pipeline.model;
  if (RUN_DEMO || !servedList.some((m) => m.name === wanted)) {
    if (MODEL)
      throw new Error(
        `BENCH_MODEL=${MODEL} is not served (serving: ${servedList.map((m) => m.name).join(', ') || 'none'})`,
      );
    console.error(`  ${RUN_DEMO ? 'BENCH_DEMO=1' : `model ${wanted} is not deployed yet`}: running flywheel demo`);
    flywheelCli(['demo']);
    config = loadConfig();
    await waitUntil(
      `model ${wanted} served`,
      async () => (servedList = await listModels()).some((m) => m.name === wanted),
      60_000,
    );
  }
  await waitUntil('serving ready', async () => (await fetch(`${config.serving.url}/v2/health/ready`)).ok, 60_000);
  const entry = servedList.find((m) => m.name === wanted)!;
  const info = (await (await fetch(`${config.serving.url}/v2`)).json()) as { backend?: string };
  const stack = JSON.parse(readFileSync(join(config.stateDir, 'stack.json'), 'utf8')) as { serving?: { pid?: number } };
  const servingPid = stack.serving?.pid;
  const servingUrl = new URL(config.serving.url);
  const cores = availableParallelism();
  // Nothing else should be using the CPU: say so when something is (a test run on the same stack, a training job).
  const idle0 = machineTicks();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const idle1 = machineTicks();
  const busyBefore = busyPct(idle0, idle1);
  if (busyBefore > 25)
    console.error(
      `  WARNING: the machine is ${busyBefore.toFixed(0)} % busy before the bench starts; other processes will skew the figures`,
    );
  console.error(
    `  serving ${config.serving.url} (pid ${servingPid ?? '?'}, TF.js backend ${info.backend}): model ${entry.name} v${entry.version} @${entry.alias}; ${cores} cores`,
  );

  // In-process: the same deployed version, loaded the way the server loads it.
  db = connectDb(config.databaseUrl, 2);
  baseId = Number(
    (await db.execute<{ id: string }>(sql`select coalesce(max(id), 0)::text as id from predictions`)).rows[0]!.id,
  );
  const models = new ServedModels(db, new S3ObjectStore(config.s3), { alias: entry.alias });
  await models.start();
  models.stop();
  const served = models.get(entry.name);
  if (!served) throw new Error(`ServedModels(@${entry.alias}) did not load ${entry.name}`);
  if (String(served.version) !== entry.version)
    throw new Error(
      `the server answers with ${entry.name} v${entry.version}, the registry's @${entry.alias} is v${served.version}: a deployment is moving; run again`,
    );
  const layers = denseLayers(served);
  const hiddenServed = layers.slice(0, -1).map((l) => l.shape[1]!);
  const hiddenPipeline = pipeline.training.model.hiddenUnits;
  const width = layers[0]!.shape[0]!;
  console.error(
    `  network: ${width} features → ${hiddenServed.join(' → ')} → 1 (${layers[0]!.activation}); pipeline.yaml hiddenUnits [${hiddenPipeline.join(', ')}]${hiddenServed.join() === hiddenPipeline.join() ? '' : ' (the sweep picked another size; both servers run the served one)'}; in-process backend ${models.backend}`,
  );

  const instances = loadInstances(pipeline.data.source, served, 2000);
  const batches = Array.from({ length: Math.max(1, Math.floor(instances.length / BATCH)) }, (_, k) =>
    Array.from({ length: BATCH }, (_, i) => instances[(k * BATCH + i) % instances.length]!),
  );

  const inProcess = async (
    rowsPerCall: number,
  ): Promise<{ rowsPerS: number; callsPerS: number; usPerCall: number }> => {
    const calls = rowsPerCall === 1 ? instances.map((row) => [row]) : batches;
    let i = 0;
    const warmEnd = performance.now() + 500;
    while (performance.now() < warmEnd) await predict(served, calls[i++ % calls.length]!);
    let n = 0;
    const started = performance.now();
    const end = started + INPROC_S * 1000;
    while (performance.now() < end) {
      for (let k = 0; k < 16; k++) await predict(served, calls[i++ % calls.length]!);
      n += 16;
    }
    const seconds = (performance.now() - started) / 1000;
    return { rowsPerS: (n * rowsPerCall) / seconds, callsPerS: n / seconds, usPerCall: (1e6 * seconds) / n };
  };
  const inSingle = await inProcess(1);
  const inBatch = await inProcess(BATCH);
  console.error(
    `  in-process predict: single rows ${fmt(inSingle.rowsPerS)} rows/s (${inSingle.usPerCall.toFixed(0)} µs/call); ${BATCH}-row batches ${fmt(inBatch.rowsPerS)} rows/s (${inBatch.usPerCall.toFixed(0)} µs/call)`,
  );

  // The peer.
  tempDir = await mkdtemp(join(tmpdir(), 'flywheel-bench-serve-'));
  const modelFile = join(tempDir, 'model.json');
  writeFileSync(
    modelFile,
    JSON.stringify({ name: entry.name, version: served.version, preprocessor: tfjsOf(served).preprocessor, layers }),
  );
  const peerPort = await freePort();
  const peer = spawn(
    PYTHON,
    [join(PROJECT_ROOT, 'bench', 'serve_fastapi.py'), modelFile, String(peerPort), PEER_HTTP, PEER_LOOP],
    { cwd: PROJECT_ROOT, stdio: ['ignore', 2, 2] },
  );
  children.add(peer);
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  await waitUntil('FastAPI peer', async () => (await fetch(`${peerUrl}/health`)).ok, 60_000, peer);
  console.error(
    `  python peer ${peerUrl} (pid ${peer.pid}): FastAPI ${fastapiVersion}, uvicorn ${uvicornVersion} (${PEER_LOOP} + ${PEER_HTTP}), pydantic ${pydanticVersion}, scikit-learn ${sklearnVersion}, BLAS ${blas} threads`,
  );

  // Agreement: the same 50 rows through the three paths.
  const sample = instances.slice(0, 50);
  const viaFlywheel = await postJson(
    `${config.serving.url}/predict`,
    { model: entry.name, instances: sample },
    `${runTag}-agree`,
  );
  const viaPeer = await postJson(`${peerUrl}/predict`, { model: entry.name, instances: sample }, `${runTag}-agree`);
  if (viaFlywheel.status !== 200)
    throw new Error(`flywheel /predict answered ${viaFlywheel.status}: ${JSON.stringify(viaFlywheel.json)}`);
  if (viaPeer.status !== 200)
    throw new Error(`peer /predict answered ${viaPeer.status}: ${JSON.stringify(viaPeer.json)}`);
  if (viaFlywheel.json.version !== served.version)
    throw new Error(
      `the serving process answered with ${entry.name} v${String(viaFlywheel.json.version)}, the bench loaded v${served.version}: @${entry.alias} moved during the bench (a deploy, or a monitor's retraining set off by an earlier bench's traffic); run it again`,
    );
  const local = (await predict(served, sample)).values as number[];
  const fromFlywheel = viaFlywheel.json.predictions as number[];
  const fromPeer = viaPeer.json.predictions as number[];
  let maxRelDiff = 0;
  let maxAbsDiff = 0;
  sample.forEach((_, i) => {
    for (const other of [fromFlywheel[i]!, local[i]!]) {
      const d = Math.abs(other - fromPeer[i]!);
      maxAbsDiff = Math.max(maxAbsDiff, d);
      maxRelDiff = Math.max(maxRelDiff, d / Math.max(1, Math.abs(fromPeer[i]!)));
    }
  });
  if (!(maxRelDiff <= AGREEMENT_TOLERANCE))
    throw new Error(
      `predictions disagree: max relative difference ${maxRelDiff} > ${AGREEMENT_TOLERANCE} (flywheel ${fromFlywheel.slice(0, 3)}, peer ${fromPeer.slice(0, 3)})`,
    );
  console.error(
    `  agreement on ${sample.length} rows: max |Δ| ${maxAbsDiff.toExponential(1)} units (relative ${maxRelDiff.toExponential(1)}), server = in-process = peer`,
  );

  const singleBodies = instances.map((row) => JSON.stringify({ model: entry.name, instances: [row] }));
  const batchBodies = batches.map((rows) => JSON.stringify({ model: entry.name, instances: rows }));
  const targets = {
    flywheel: { host: servingUrl.hostname, port: Number(servingUrl.port), pid: servingPid, postgres: true },
    python: { host: '127.0.0.1', port: peerPort, pid: peer.pid, postgres: false },
  };
  type Side = keyof typeof targets;
  let phaseCounter = 0;
  const closedLoop = async (side: Side, bodies: string[], rows: number) => {
    const prefix = `${runTag}-${++phaseCounter}${side[0]}-`;
    const phase = await runPhase(
      closedLoopSpec(targets[side].host, targets[side].port, bodies, prefix),
      targets[side].pid,
      targets[side].postgres,
    );
    if (side === 'flywheel') await settleLog(phase, prefix, rows, targets[side].pid);
    return phase;
  };

  const runs: Record<Side, { single: Phase[]; batch: Phase[] }> = {
    flywheel: { single: [], batch: [] },
    python: { single: [], batch: [] },
  };
  const { rounds, stopped } = await budgetedRounds(REPEATS, BUDGET_S, elapsedS, async (round) => {
    const order: Side[] = round % 2 === 0 ? ['flywheel', 'python'] : ['python', 'flywheel'];
    for (const [kind, bodies, rows] of [
      ['single', singleBodies, 1],
      ['batch', batchBodies, BATCH],
    ] as const) {
      for (const side of order) {
        const phase = await closedLoop(side, bodies, rows);
        runs[side][kind].push(phase);
        console.error(`  round ${round + 1} ${kind.padEnd(6)} ${side.padEnd(8)} ${describe(phase, rows)}`);
        if (phase.log) console.error(`${' '.repeat(25)}${describeLog(phase.log)}`);
        if (phase.ok === 0)
          throw new Error(
            `${side} answered no request with 200 (${JSON.stringify(phase.statuses)}; ${phase.first_error ?? ''})`,
          );
      }
    }
  });

  // Fixed rate.
  const openLoop = (side: Side, prefix: string) =>
    runPhase(
      {
        ...fixedRate(targets[side].host, targets[side].port, singleBodies, prefix),
        returnOkIds: side === 'flywheel',
      },
      targets[side].pid,
      targets[side].postgres,
    );
  const fixedPrefix = `${runTag}-fixed-`;
  const fixedFly = await openLoop('flywheel', fixedPrefix);
  console.error(`  fixed ${fmt(RATE)}/s flywheel  ${describeFixed(fixedFly)}`);

  // Lost prediction logs: answered 200 in the measured window, not in `predictions` once the log has drained.
  const lost = await lostPredictionLogs(db, {
    baseId,
    prefix: fixedPrefix,
    okIds: fixedFly.ok_ids ?? [],
    drainS: DRAIN_S,
  });
  const missing = lost.missing;
  console.error(
    `  prediction log: ${fmt(lost.answered)} requests answered 200 in the measured window, ${fmt(lost.logged)} logged under their ids, ${fmt(missing)} missing ${lost.drainS.toFixed(1)} s after the phase`,
  );
  // The warm-up's rows too, so that nothing of the bench is still buffered when the peer runs or the rows are deleted.
  await settleLog(fixedFly, fixedPrefix, 1, targets.flywheel.pid);

  const fixedPeer = await openLoop('python', `${runTag}-fixedpy-`);
  console.error(`  fixed ${fmt(RATE)}/s python    ${describeFixed(fixedPeer)}`);
  await stopChild(peer);

  // The same fixed rate while a pipeline and monitor checks run beside it (issue: pauses under background work).
  const beside = await predictionsBesidePipeline(singleBodies, entry, config, pipeline);
  const bp = beside.phase;
  console.error(
    `  fixed ${fmt(RATE)}/s beside a pipeline (${beside.pipeline}) and ${beside.checks.length} monitor checks: ${describeFixed(bp)}; load average ${loadavg()[0]!.toFixed(1)}\n` +
      `    the same probed process alone just before: ${describeFixed(beside.alone)}\n` +
      `    server: ${describePauses(beside.pauses)}\n` +
      `    requests ≥ ${SLOW_MS} ms: ${bp.slow?.length ?? 0}, overlapping ${JSON.stringify(beside.slowCauses)}`,
  );

  // Optional CPU profile of a second serving process.
  let profileTop: { function: string; self_pct: number }[] | undefined;
  let profiled: Phase | undefined;
  if (PROFILE) {
    const profileDir = join(tempDir, 'profile');
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, FLYWHEEL_SERVING_PORT: String(port) };
    delete env.FLYWHEEL_SERVING_URL;
    const server = spawn(
      process.execPath,
      ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--import', 'tsx', join(PROJECT_ROOT, 'serving', 'main.ts')],
      {
        cwd: PROJECT_ROOT,
        stdio: ['ignore', 'ignore', 2],
        env,
      },
    );
    children.add(server);
    await waitUntil(
      'profiled serving process',
      async () => (await fetch(`http://127.0.0.1:${port}/v2/health/ready`)).ok,
      60_000,
      server,
    );
    profiled = await runPhase(closedLoopSpec('127.0.0.1', port, singleBodies, `${runTag}-profile-`), server.pid, true);
    console.error(`  profiled server: ${describe(profiled, 1)}`);
    await settleLog(profiled, `${runTag}-profile-`, 1, server.pid);
    await stopChild(server, 15_000);
    const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) profileTop = summariseProfile(JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as CpuProfile);
    else console.error('  no .cpuprofile was written');
  }

  // ------------------------------------------------------------------------------------------------------------
  // Summary

  const best = (phases: Phase[]) => phases.reduce((a, b) => (b.rps > a.rps ? b : a));
  const fs = best(runs.flywheel.single);
  const ps = best(runs.python.single);
  const fb = best(runs.flywheel.batch);
  const pb = best(runs.python.batch);
  const ratio = fs.rps / ps.rps;
  const batchRatio = fb.rps / pb.rps;
  const fixedFigures = (p: Phase) => ({
    achieved_rps: fixed(p.rps, 1),
    p50_ms: p.latency_ms.p50,
    p99_ms: p.latency_ms.p99,
    p999_ms: p.latency_ms.p999,
    max_ms: p.latency_ms.max,
    ok: p.ok,
    not_ok: p.measured - p.ok,
    errors: p.errors,
    unfinished: p.unfinished,
    send_lag_p99_ms: p.send_lag_ms?.p99 ?? null,
    cpu_us_per_request: fixed((1e6 * p.server_cpu_s) / Math.max(1, p.completed), 0),
  });
  const cpuUs = (p: Phase) => (1e6 * p.server_cpu_s) / Math.max(1, p.completed);
  const pgUs = (p: Phase) => (1e6 * p.postgres_cpu_s) / Math.max(1, p.completed);
  const logSummary = (p: Phase) =>
    p.log
      ? `${fmt(p.log.logged)} of ${fmt(p.log.expected)} rows written, ${p.log.waited_s < 0.6 ? 'no backlog' : `backlog drained ${p.log.waited_s.toFixed(0)} s after the phase`}`
      : '-';
  const row = (label: string, p: Phase, rows: number) =>
    `  ${label.padEnd(30)} ${fmt(p.rps).padStart(8)} ${fmt(p.rps * rows).padStart(10)} ${p.latency_ms.p50.toFixed(2).padStart(8)} ${p.latency_ms.p99.toFixed(2).padStart(8)} ${cpuUs(p).toFixed(0).padStart(9)} ${(p.postgres_cpu_s ? pgUs(p).toFixed(0) : '-').padStart(8)}`;
  const lines = [
    '',
    `bench:serve — ${entry.name} v${entry.version} (${width} features → ${hiddenServed.join(' → ')} → 1), ${cores} cores, TF.js backend ${info.backend}; ${CONNECTIONS} connections, ${SECONDS} s per phase, best of ${rounds} round${rounds === 1 ? '' : 's'}`,
    `  ${'closed loop'.padEnd(30)} ${'req/s'.padStart(8)} ${'rows/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'µs CPU/req'.padStart(9)} ${'pg µs/req'.padStart(8)}`,
    row('flywheel, 1 row', fs, 1),
    row(`python FastAPI, 1 row`, ps, 1),
    row(`flywheel, ${BATCH} rows`, fb, BATCH),
    row(`python FastAPI, ${BATCH} rows`, pb, BATCH),
    `  prediction log while flywheel answered at full speed: 1 row ${logSummary(fs)}; ${BATCH} rows ${logSummary(fb)}`,
    `  in-process predict (the limit): 1 row ${fmt(inSingle.rowsPerS)} rows/s (${inSingle.usPerCall.toFixed(0)} µs/call); ${BATCH} rows ${fmt(inBatch.rowsPerS)} rows/s (${inBatch.usPerCall.toFixed(0)} µs/call)`,
    `  fixed ${fmt(RATE)} req/s (open loop, latency from the scheduled send):`,
    `    flywheel achieved ${fmt(fixedFly.rps)} req/s, p50 ${fixedFly.latency_ms.p50.toFixed(2)} ms, p99 ${fixedFly.latency_ms.p99.toFixed(2)} ms, p99.9 ${fixedFly.latency_ms.p999.toFixed(2)} ms; lost prediction logs ${missing} of ${fmt(lost.answered)} (${lost.drainS.toFixed(1)} s after the phase)`,
    `    python   achieved ${fmt(fixedPeer.rps)} req/s, p50 ${fixedPeer.latency_ms.p50.toFixed(2)} ms, p99 ${fixedPeer.latency_ms.p99.toFixed(2)} ms, p99.9 ${fixedPeer.latency_ms.p999.toFixed(2)} ms${fixedPeer.rps < RATE * 0.98 ? ' (could not sustain the rate)' : ''}`,
    ...(profileTop
      ? [
          `  CPU profile of a second serving process (${fmt(profiled!.rps)} req/s while profiled), self time:`,
          ...profileTop.slice(0, 15).map((p) => `    ${p.self_pct.toFixed(1).padStart(5)} %  ${p.function}`),
        ]
      : []),
    `    flywheel beside a pipeline and monitor checks: p50 ${bp.latency_ms.p50.toFixed(2)} ms, p99 ${bp.latency_ms.p99.toFixed(2)} ms, max ${bp.latency_ms.max.toFixed(1)} ms, achieved ${fmt(bp.rps)} req/s (load average ${loadavg()[0]!.toFixed(1)})`,
    ...(stopped ? [`  ${stopped}`] : []),
    `  single-row rps ratio vs python: ${ratio.toFixed(2)} (> 1: Flywheel faster); batch rows/s ratio ${batchRatio.toFixed(2)}; agreement max relative Δ ${maxRelDiff.toExponential(1)}`,
    `  total ${elapsedS().toFixed(0)} s`,
    '',
  ];
  console.log(lines.join('\n'));

  const figures = {
    bench: 'serve',
    rps_ratio_vs_python: fixed(ratio, 3),
    batch_ratio_vs_python: fixed(batchRatio, 3),
    p99_ms_at_1000rps: fixedFly.latency_ms.p99,
    p50_ms_at_1000rps: fixedFly.latency_ms.p50,
    lost_prediction_logs: missing,
    p99_ms_at_1000rps_during_pipeline: bp.latency_ms.p99,
    p50_ms_at_1000rps_during_pipeline: bp.latency_ms.p50,
    during_pipeline: {
      ...fixedFigures(bp),
      same_process_alone: fixedFigures(beside.alone),
      pipeline: beside.pipeline,
      serving_nice: SERVING_NICE,
      serving_node_flags: SERVING_NODE_FLAGS.join(' '),
      monitor_checks: beside.checks,
      load_average: fixed(loadavg()[0]!, 2),
      ...pauseFigures(bp.slow, beside.slowCauses, beside.pauses),
    },
    fixed_rate: RATE,
    flywheel_rps: fixed(fs.rps, 0),
    flywheel_p50_ms: fs.latency_ms.p50,
    flywheel_p99_ms: fs.latency_ms.p99,
    python_rps: fixed(ps.rps, 0),
    python_p50_ms: ps.latency_ms.p50,
    python_p99_ms: ps.latency_ms.p99,
    flywheel_batch_rows_per_s: fixed(fb.rps * BATCH, 0),
    flywheel_batch_p50_ms: fb.latency_ms.p50,
    flywheel_batch_p99_ms: fb.latency_ms.p99,
    python_batch_rows_per_s: fixed(pb.rps * BATCH, 0),
    python_batch_p50_ms: pb.latency_ms.p50,
    python_batch_p99_ms: pb.latency_ms.p99,
    inprocess_single_rows_per_s: fixed(inSingle.rowsPerS, 0),
    inprocess_batch_rows_per_s: fixed(inBatch.rowsPerS, 0),
    inprocess_single_us_per_call: fixed(inSingle.usPerCall, 1),
    inprocess_batch_us_per_call: fixed(inBatch.usPerCall, 1),
    flywheel_fixed: fixedFigures(fixedFly),
    python_fixed: fixedFigures(fixedPeer),
    prediction_log: { answered_200: lost.answered, logged: lost.logged, missing, drain_s: fixed(lost.drainS, 1) },
    prediction_log_closed_loop: {
      single: fs.log && {
        rows_answered: fs.log.expected,
        rows_written: fs.log.logged,
        backlog_s: fixed(fs.log.waited_s, 1),
        rows_per_s: fixed(fs.log.rows_per_s, 0),
      },
      batch: fb.log && {
        rows_answered: fb.log.expected,
        rows_written: fb.log.logged,
        backlog_s: fixed(fb.log.waited_s, 1),
        rows_per_s: fixed(fb.log.rows_per_s, 0),
      },
    },
    flywheel_cpu_us_per_request: fixed(cpuUs(fs), 0),
    flywheel_postgres_cpu_us_per_request: fixed(pgUs(fs), 0),
    python_cpu_us_per_request: fixed(cpuUs(ps), 0),
    flywheel_batch_cpu_us_per_row: fixed(cpuUs(fb) / BATCH, 1),
    python_batch_cpu_us_per_row: fixed(cpuUs(pb) / BATCH, 1),
    flywheel_runs_rps: runs.flywheel.single.map((p) => fixed(p.rps, 0)),
    python_runs_rps: runs.python.single.map((p) => fixed(p.rps, 0)),
    flywheel_batch_runs_rows_per_s: runs.flywheel.batch.map((p) => fixed(p.rps * BATCH, 0)),
    python_batch_runs_rows_per_s: runs.python.batch.map((p) => fixed(p.rps * BATCH, 0)),
    generator_cpu_s_single: { flywheel: fixed(fs.generator_cpu_s, 2), python: fixed(ps.generator_cpu_s, 2) },
    ...(profileTop ? { profile_top: profileTop.slice(0, 10), profiled_rps: fixed(profiled!.rps, 0) } : {}),
    max_rel_prediction_diff: maxRelDiff,
    model: entry.name,
    model_version: served.version,
    alias: entry.alias,
    feature_width: width,
    hidden_units_served: hiddenServed,
    hidden_units_pipeline: hiddenPipeline,
    backend: info.backend ?? null,
    inprocess_backend: models.backend ?? null,
    connections: CONNECTIONS,
    batch: BATCH,
    seconds: SECONDS,
    rounds,
    cores,
    machine_busy_pct_before: fixed(busyBefore, 0),
    node_version: process.versions.node,
    python_peer: {
      fastapi: fastapiVersion,
      uvicorn: uvicornVersion,
      pydantic: pydanticVersion,
      starlette: starletteVersion,
      sklearn: sklearnVersion,
      numpy: numpyVersion,
      blas_threads: blas,
      http: PEER_HTTP,
      loop: PEER_LOOP,
      workers: 1,
    },
    total_s: fixed(elapsedS(), 1),
  };
  // The ONNX variant (bench/serveOnnx.ts, in its own process) joins this line; BENCH_ONNX=0 skips it.
  if (process.env.BENCH_ONNX !== '0') Object.assign(figures, await onnxVariant(), { total_s: fixed(elapsedS(), 1) });
  await cleanup();
  console.log(JSON.stringify(figures));
} finally {
  await cleanup();
}

/** bench/serveOnnx.ts in a child: its summary printed here, its figures for this line (or why it failed). */
async function onnxVariant(): Promise<Record<string, unknown>> {
  try {
    const script = join(PROJECT_ROOT, 'bench', 'serveOnnx.ts');
    const { stdout } = await runProcess(process.execPath, ['--import', 'tsx', script], { stderr: 'inherit' });
    const { onnx_rps_ratio_vs_python, onnx_p99_ms_at_1000rps, onnx_lost_prediction_logs, ...onnx } = lastJson<
      Record<string, unknown>
    >(stdout, 'bench/serveOnnx.ts');
    console.log(
      stdout
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('{'))
        .join('\n'),
    );
    return { onnx_rps_ratio_vs_python, onnx_p99_ms_at_1000rps, onnx_lost_prediction_logs, onnx };
  } catch (error) {
    process.exitCode = 1;
    console.error(`  the ONNX variant failed: ${(error as Error).message}`);
    return { onnx_error: (error as Error).message.split('\n')[0] };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// CPU profile summary

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  samples?: number[];
  timeDeltas?: number[];
}

function summariseProfile(profile: CpuProfile): { function: string; self_pct: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  samples.forEach((id, i) => {
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url
      ? url
          .replace(/^file:\/\//, '')
          .replace(`${PROJECT_ROOT}/`, '')
          .replace(/.*node_modules\//, '')
      : '';
    const key = `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
    const dt = deltas[i] ?? 0;
    if (functionName === '(idle)') return; // shares of the time the process was busy
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([fn, t]) => ({ function: fn, self_pct: Number(((100 * t) / Math.max(1, total)).toFixed(1)) }));
}
