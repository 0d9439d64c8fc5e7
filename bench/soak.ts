/**
 * bench:soak — SOAK_SECONDS (600) of mixed traffic on Flywheel's real processes, with a worker SIGKILLed at a third of
 * the time and the object store SIGKILLed and started again at two thirds. No peer: the figures are the product's own
 * behaviour under faults (pipelines that still finish, prediction logs that are not lost, worker memory that stays
 * flat).
 *
 * Its own stack, so nobody else's work is disturbed: a private MinIO (port and data dir under a temp dir, the binary
 * `flywheel up` built into ~/.cache/flywheel/bin), and as child processes pointed at it (FLYWHEEL_S3_*): two main
 * workers
 * (workers/main.ts, on a task queue of the soak's own), one CPU training worker (workers/train.ts, own queue), a
 * serving
 * process (serving/main.ts) and an API server (server/main.ts). Temporal and Postgres are the shared stack's; names
 * (task queues, pipelines, models, datasets, request ids) all start with a unique tag.
 *
 * Setup: generated demand CSVs (examples/demand), then a seed pipeline over the API deploys the served model (monitor
 * every minute, no retraining on drift). Traffic, all at once, for SOAK_SECONDS:
 * - pipelines: SOAK_PIPELINES (2) in flight at any time, each started when one ends: small demand pipelines (900 rows,
 *   3 epochs, no deploy) over POST /api/v1/pipelines with the local CLI's write token, each a new model; every
 *   SOAK_RETRAIN_EVERY-th (5; 0: never) retrains the served model instead, started with an admin release grant the way
 *   the monitor starts one, so it redeploys under load (at most one at a time);
 * - predictions: bench/serveLoad.ts in open loop at SOAK_RATE (500) requests/s, one row each, a unique x-request-id
 *   each, latency from the scheduled send (no coordinated omission);
 * - feedback: POST /feedback with the true units_sold for SOAK_FEEDBACK_PCT (10) % of the requests, 15 s after they
 *   were due;
 * - reads: SOAK_READS_PER_S (2) GETs to the API server, rotating pipelines list / runs list / models show / alerts
 *   (what the CLI calls), and every SOAK_CLI_EVERY_S (60) s the real CLI (`runs list`, `models show`, `alerts`).
 * Faults: at 1/3 the first main worker is SIGKILLed and a replacement started at once; at 2/3 MinIO is SIGKILLed and
 * started again on the same data after SOAK_MINIO_DOWN_S (5) s.
 * At the end, pipelines still running get SOAK_GRACE_S (180) s to finish (a killed worker's activities come back after
 * their heartbeat timeout, up to 2 min); then the prediction log gets SOAK_DRAIN_S (30) s.
 *
 * Measured: each started pipeline's final Temporal status; `lost_prediction_logs`, requests answered 200 whose
 * request id is not in `predictions` after the drain; `worker_rss_growth_mb`, VmRSS of the main worker that lives
 * through the run, at the end minus after warm-up (min(60 s, 1/6 of the run) into the traffic); prediction latency
 * percentiles, achieved rate and errors by kind; read latency by kind; feedback accepted / unknown. A progress line
 * every SOAK_PROGRESS_S (30) s on stderr.
 *
 * Cleanup, also on failure and SIGINT / SIGTERM: every workflow on the soak's task queue terminated, every child
 * stopped, the soak's rows in `predictions` and `labels` and its deployments deleted (SOAK_KEEP=1 keeps them and the
 * temp dir with the processes' logs).
 *
 * Last line of stdout: one JSON object with `pipelines_ok`, `pipelines_failed`, `lost_prediction_logs`,
 * `worker_rss_growth_mb` and `p99_ms`, and the rest of the figures.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { like, sql } from 'drizzle-orm';
import { parsePipelineConfig } from '../config/pipeline';
import { generateDemand } from '../examples/demand/generate';
import { deployments, trafficRoutes } from '../schema/deployments';
import { issueGrant } from '../store/grants';
import { closeDb, connectDb, type Db } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { failureMessage, startPipeline } from '../storage/pipelines';
import { temporalClient } from '../storage/temporal';
import { ensureTool, MINIO_TOOL } from '../scripts/tools';
import { loadConfig, PROJECT_ROOT, type FlywheelConfig } from '../config/env';
import type { PipelineResult } from '../workflows/pipeline';
import { intFromEnv } from './peer';
import { children, freePort, generatorCommand, stopChild } from './processes';
import { logTail, OwnMinio, rssMb, startService, type Service } from './soakStack';
import type { LoadResult, LoadSpec } from './serveLoad';

const SECONDS = Math.max(30, intFromEnv('SOAK_SECONDS', 600));
const RATE = Math.max(1, intFromEnv('SOAK_RATE', 500));
const CONCURRENCY = Math.max(1, intFromEnv('SOAK_PIPELINES', 2));
const RETRAIN_EVERY = intFromEnv('SOAK_RETRAIN_EVERY', 5);
const FEEDBACK_PCT = Math.min(100, intFromEnv('SOAK_FEEDBACK_PCT', 10));
const READS_PER_S = intFromEnv('SOAK_READS_PER_S', 2);
const CLI_EVERY_S = intFromEnv('SOAK_CLI_EVERY_S', 60);
const MINIO_DOWN_S = intFromEnv('SOAK_MINIO_DOWN_S', 5);
const GRACE_S = intFromEnv('SOAK_GRACE_S', 180);
const DRAIN_S = intFromEnv('SOAK_DRAIN_S', 30);
const PROGRESS_S = Math.max(5, intFromEnv('SOAK_PROGRESS_S', 30));
const GENERATOR_NICE = -Math.abs(intFromEnv('SOAK_GENERATOR_NICE', 10));
const KEEP = process.env.SOAK_KEEP === '1';
/** Labels are sent this long after a request was due, so that it was answered and logged. */
const FEEDBACK_LAG_S = 15;

const log = (line: string) => console.error(line);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (n: number, digits = 1) => Number(n.toFixed(digits));
const benchStarted = performance.now();
const elapsedS = () => (performance.now() - benchStarted) / 1000;

const tag = `soak-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const queues = { main: `${tag}-main`, trainCpu: `${tag}-train-cpu`, trainGpu: `${tag}-train-gpu` };
const servedModel = `${tag}-served`;
/** Flywheel's own entry points, as `flywheel up` starts them. */
const scripts = {
  main: 'workers/main.ts',
  train: 'workers/train.ts',
  serving: 'serving/main.ts',
  server: 'server/main.ts',
} as const;
const requestPrefix = `${tag}-`;

function percentile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

// ---------------------------------------------------------------------------------------------------------------
// Data and pipeline configs

const DEMAND_SCHEMA = {
  columns: {
    date: { type: 'string' },
    store_id: { type: 'string' },
    item_id: { type: 'string' },
    day_of_week: { type: 'integer', min: 0, max: 6 },
    month: { type: 'integer', min: 1, max: 12 },
    is_holiday: { type: 'integer', allowed: ['0', '1'] },
    promo: { type: 'integer', allowed: ['0', '1'] },
    price: { type: 'number', min: 0, max: 100 },
    units_sold: { type: 'integer', min: 0 },
  },
};

function demandConfig(
  name: string,
  model: string,
  dataset: string,
  source: string,
  options: { epochs: number; deploy: boolean },
): Record<string, unknown> {
  return {
    name,
    model,
    data: { dataset, source },
    schema: DEMAND_SCHEMA,
    training: {
      task: 'regression',
      target: 'units_sold',
      features: { numeric: ['price', 'promo', 'is_holiday'], categorical: ['store_id', 'item_id', 'day_of_week'] },
      model: { type: 'mlp', hiddenUnits: [16] },
      epochs: options.epochs,
      batchSize: 64,
      learningRate: 0.01,
    },
    deploy: { enabled: options.deploy },
    monitor: options.deploy ? { interval: '1m', retrainOnDrift: false } : { enabled: false },
  };
}

interface Request {
  body: string;
  label: number;
}

/** Rows of the served model's CSV as single-row /predict bodies, with their true units_sold for /feedback. */
function predictionRequests(csvPath: string, count: number): Request[] {
  const lines = readFileSync(csvPath, 'utf8').trim().split('\n');
  const header = lines[0]!.split(',');
  const at = (name: string) => header.indexOf(name);
  const body = lines.slice(1);
  const step = Math.max(1, Math.floor(body.length / count));
  const out: Request[] = [];
  for (let i = 0; i < body.length && out.length < count; i += step) {
    const c = body[i]!.split(',');
    const instance = {
      price: Number(c[at('price')]),
      promo: Number(c[at('promo')]),
      is_holiday: Number(c[at('is_holiday')]),
      store_id: c[at('store_id')],
      item_id: c[at('item_id')],
      day_of_week: Number(c[at('day_of_week')]),
    };
    out.push({
      body: JSON.stringify({ model: servedModel, instances: [instance] }),
      label: Number(c[at('units_sold')]),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// State shared by the traffic loops, the progress line and cleanup

interface Tracked {
  workflowId: string;
  kind: 'seed' | 'api' | 'retrain';
  startedAtS: number;
  outcome?: 'ok' | 'failed';
  status?: string;
  failure?: string;
  endedAtS?: number;
  result?: PipelineResult;
}

const tracked: Tracked[] = [];
const events: { at_s: number; event: string }[] = [];
const startErrors: string[] = [];
const reads = new Map<string, { ms: number[]; errors: number; firstError?: string }>();
const cliRuns: { command: string; seconds: number; ok: boolean; error?: string }[] = [];
const feedback = {
  requests: 0,
  labels: 0,
  accepted: 0,
  unknown: new Set<string>(),
  errors: 0,
  firstError: undefined as string | undefined,
};
let stopping = false;
let trafficStart = 0;
const trafficS = () => (trafficStart ? (performance.now() - trafficStart) / 1000 : 0);
const note = (event: string) => {
  events.push({ at_s: fixed(trafficS(), 1), event });
  log(`  [${trafficS().toFixed(0).padStart(4)} s] ${event}`);
};

let tempDir = '';
let db: Db | undefined;
let client: Client | undefined;
let minio: OwnMinio | undefined;
let baseId = 0;
let cleaned = false;

async function terminateOwnWorkflows(): Promise<number> {
  if (!client) return 0;
  const ids = new Set(tracked.filter((t) => !t.outcome).map((t) => t.workflowId));
  try {
    for await (const w of client.workflow.list({
      query: `TaskQueue = '${queues.main}' AND ExecutionStatus = 'Running'`,
    }))
      ids.add(w.workflowId);
  } catch (error) {
    log(`  cleanup: listing the soak's workflows failed: ${(error as Error).message}`);
  }
  if (db) {
    const monitors = await db
      .select({ id: deployments.monitorWorkflowId })
      .from(deployments)
      .where(like(deployments.modelName, `${tag}%`))
      .catch(() => []);
    for (const m of monitors) if (m.id) ids.add(m.id);
  }
  let terminated = 0;
  for (const id of ids) {
    await client.workflow
      .getHandle(id)
      .terminate('bench:soak cleanup')
      .then(
        () => terminated++,
        () => undefined,
      );
  }
  return terminated;
}

async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  stopping = true;
  const terminated = await terminateOwnWorkflows();
  if (terminated) log(`  cleanup: terminated ${terminated} workflow${terminated === 1 ? '' : 's'} of the soak`);
  for (const child of [...children]) await stopChild(child, 15_000);
  await minio?.stop();
  if (db) {
    if (!KEEP) {
      try {
        const logged = await db.execute(
          sql`delete from predictions where id > ${baseId} and request_id like ${`${requestPrefix}%`}`,
        );
        await db.execute(sql`delete from labels where request_id like ${`${requestPrefix}%`}`);
        // The artifacts they point at lived in the soak's MinIO: other serving processes would try to load them.
        await db.delete(trafficRoutes).where(like(trafficRoutes.modelName, `${tag}%`));
        await db.delete(deployments).where(like(deployments.modelName, `${tag}%`));
        log(
          `  cleanup: deleted the soak's ${fmt(logged.rowCount ?? 0)} prediction rows, its labels and deployments (SOAK_KEEP=1 keeps them)`,
        );
      } catch (error) {
        log(`  cleanup: could not delete the soak's rows: ${(error as Error).message}`);
      }
    }
    await closeDb(db).catch(() => undefined);
  }
  await client?.connection.close().catch(() => undefined);
  if (tempDir) {
    if (KEEP) log(`  SOAK_KEEP=1: logs and MinIO data kept in ${tempDir}`);
    else await rm(tempDir, { recursive: true, force: true });
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));

// ---------------------------------------------------------------------------------------------------------------
// Traffic

/** The open-loop generator (bench/soakLoad.ts) in its own process, at nice GENERATOR_NICE when root. */
async function runPredictionLoad(spec: LoadSpec): Promise<LoadResult> {
  const specFile = join(tempDir, 'load-spec.json');
  const resultFile = join(tempDir, 'load-result.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const child = spawn(
    ...generatorCommand(GENERATOR_NICE, [join(PROJECT_ROOT, 'bench', 'soakLoad.ts'), specFile, resultFile]),
    { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  children.add(child);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  children.delete(child);
  if (code !== 0) throw new Error(`the prediction load generator exited with ${code}`);
  return JSON.parse(readFileSync(resultFile, 'utf8')) as LoadResult;
}

/**
 * Follows a pipeline to its end; a lost connection to Temporal (its restart) is waited out, not counted as a failure.
 */
async function follow(entry: Tracked): Promise<void> {
  for (;;) {
    try {
      entry.result = (await client!.workflow.getHandle(entry.workflowId).result()) as PipelineResult;
      entry.outcome = 'ok';
      entry.status = 'COMPLETED';
      break;
    } catch (error) {
      if (!(error instanceof WorkflowFailedError)) {
        if (cleaned) return;
        await sleep(2_000);
        continue;
      }
      entry.outcome = 'failed';
      entry.failure = failureMessage(error).slice(0, 300);
      entry.status = await client!.workflow
        .getHandle(entry.workflowId)
        .describe()
        .then(
          (d) => d.status.name,
          () => 'FAILED',
        );
      break;
    }
  }
  entry.endedAtS = fixed(trafficS(), 1);
  if (entry.outcome === 'failed' && !cleaned)
    note(`pipeline ${entry.workflowId} (${entry.kind}) ${entry.status}: ${entry.failure}`);
}

async function apiCall<T>(
  serverUrl: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const response = await fetch(`${serverUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, json: (text ? JSON.parse(text) : {}) as T };
}

interface Sources {
  small: { dataset: string; path: string }[];
  served: { dataset: string; path: string };
}

/** Keeps CONCURRENCY pipelines in flight until the traffic window ends. */
async function pipelineLoop(
  serverUrl: string,
  token: string,
  settings: Readonly<FlywheelConfig>,
  sources: Sources,
): Promise<void> {
  let n = 0;
  while (!stopping) {
    const inFlight = tracked.filter((t) => t.kind !== 'seed' && !t.outcome);
    if (inFlight.length >= CONCURRENCY) {
      await sleep(500);
      continue;
    }
    n++;
    const retrain = RETRAIN_EVERY > 0 && n % RETRAIN_EVERY === 0 && !inFlight.some((t) => t.kind === 'retrain');
    const workflowId = `${tag}-${retrain ? 'r' : 'p'}${n}`;
    try {
      if (retrain) {
        // A new version of the served model: deployed under load, with a release grant as the monitor's retraining
        // gets.
        const config = parsePipelineConfig(
          demandConfig(`${tag}-served-pipe`, servedModel, sources.served.dataset, sources.served.path, {
            epochs: 4,
            deploy: true,
          }),
        );
        const grant = issueGrant({
          actor: 'token:bench-soak',
          scope: 'admin',
          model: servedModel,
          action: 'release',
          workflowId,
        });
        await startPipeline(
          client!,
          settings,
          config,
          workflowId,
          { kind: 'api', reason: 'bench:soak retrain of the served model' },
          grant,
        );
      } else {
        const source = sources.small[n % sources.small.length]!;
        const config = demandConfig(`${tag}-p${n}`, `${tag}-m${n}`, source.dataset, source.path, {
          epochs: 3,
          deploy: false,
        });
        const started = await apiCall<{ workflowId?: string; error?: { message?: string } }>(
          serverUrl,
          token,
          'POST',
          '/api/v1/pipelines',
          { config, workflowId },
        );
        if (started.status !== 200)
          throw new Error(
            `POST /api/v1/pipelines answered ${started.status}: ${JSON.stringify(started.json).slice(0, 300)}`,
          );
      }
      const entry: Tracked = { workflowId, kind: retrain ? 'retrain' : 'api', startedAtS: fixed(trafficS(), 1) };
      tracked.push(entry);
      void follow(entry);
    } catch (error) {
      startErrors.push(`${workflowId}: ${(error as Error).message.slice(0, 300)}`);
      note(`could not start ${workflowId}: ${(error as Error).message.slice(0, 200)}`);
      await sleep(2_000);
    }
  }
}

/** Labels for FEEDBACK_PCT % of the requests, once they were due FEEDBACK_LAG_S ago. */
async function feedbackLoop(servingUrl: string, requests: Request[], loadSpawnedAt: number): Promise<void> {
  const every = Math.max(1, Math.round(100 / Math.max(1, FEEDBACK_PCT)));
  let next = 0;
  while (!stopping && FEEDBACK_PCT > 0) {
    await sleep(1_000);
    const due = Math.floor(((performance.now() - loadSpawnedAt) / 1000 - FEEDBACK_LAG_S) * RATE);
    const labels: { request_id: string; label: number }[] = [];
    for (; next < due && labels.length < 2_000; next += every)
      labels.push({ request_id: `${requestPrefix}m${next}`, label: requests[next % requests.length]!.label });
    if (labels.length === 0) continue;
    feedback.requests++;
    feedback.labels += labels.length;
    try {
      const response = await fetch(`${servingUrl}/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ labels }),
        signal: AbortSignal.timeout(30_000),
      });
      const answer = (await response.json()) as { accepted?: number; unknown?: string[] };
      if (response.status === 200) {
        feedback.accepted += answer.accepted ?? 0;
        for (const id of answer.unknown ?? []) feedback.unknown.add(id);
      } else if (response.status === 404) {
        for (const l of labels) feedback.unknown.add(l.request_id);
      } else {
        feedback.errors++;
        feedback.firstError ??= `${response.status}: ${JSON.stringify(answer).slice(0, 200)}`;
      }
    } catch (error) {
      feedback.errors++;
      feedback.firstError ??= (error as Error).message;
    }
  }
}

/** What the CLI reads, over HTTP, rotating. */
async function readLoop(serverUrl: string, token: string): Promise<void> {
  if (READS_PER_S <= 0) return;
  const paths: [string, string][] = [
    ['pipelines', '/api/v1/pipelines?limit=20'],
    ['runs', '/api/v1/runs?limit=20'],
    ['model', `/api/v1/models/${encodeURIComponent(servedModel)}`],
    ['alerts', `/api/v1/alerts?model=${encodeURIComponent(servedModel)}`],
  ];
  for (const [kind] of paths) reads.set(kind, { ms: [], errors: 0 });
  let i = 0;
  while (!stopping) {
    const [kind, path] = paths[i++ % paths.length]!;
    const stats = reads.get(kind)!;
    const started = performance.now();
    try {
      const answer = await apiCall(serverUrl, token, 'GET', path);
      if (answer.status === 200) stats.ms.push(performance.now() - started);
      else {
        stats.errors++;
        stats.firstError ??= `${answer.status}: ${JSON.stringify(answer.json).slice(0, 200)}`;
      }
    } catch (error) {
      stats.errors++;
      stats.firstError ??= (error as Error).message;
    }
    await sleep(1000 / READS_PER_S - (performance.now() - started));
  }
}

/** The real CLI now and then (its own process, through the soak's API server). */
async function cliLoop(serverUrl: string): Promise<void> {
  if (CLI_EVERY_S <= 0) return;
  const commands = [
    ['runs', 'list', '--limit', '5'],
    ['models', 'show', servedModel],
    ['alerts', '--model', servedModel],
  ];
  let i = 0;
  while (!stopping) {
    await sleep(CLI_EVERY_S * 1000 * (i === 0 ? 0.5 : 1));
    if (stopping) break;
    const args = commands[i++ % commands.length]!;
    const started = performance.now();
    const outcome = await new Promise<{ ok: boolean; error?: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(PROJECT_ROOT, 'bin', 'flywheel.js'), ...args],
        { cwd: PROJECT_ROOT, env: { ...process.env, FLYWHEEL_URL: serverUrl }, timeout: 60_000 },
        (error, _stdout, stderr) =>
          resolve(error ? { ok: false, error: `${error.message} ${stderr}`.slice(0, 300) } : { ok: true }),
      );
    });
    cliRuns.push({ command: args.join(' '), seconds: (performance.now() - started) / 1000, ...outcome });
    if (!outcome.ok) note(`flywheel ${args.join(' ')} failed: ${outcome.error}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Main

const settingsBase = loadConfig();
const token = (() => {
  try {
    return settingsBase.server.token ?? readFileSync(join(settingsBase.stateDir, 'cli-token'), 'utf8').trim();
  } catch {
    throw new Error(
      `bench:soak needs the local CLI token (${join(settingsBase.stateDir, 'cli-token')}): run \`flywheel up --infra-only\` first, or set FLYWHEEL_TOKEN`,
    );
  }
})();

try {
  log(
    `bench:soak — ${SECONDS} s of mixed traffic (${CONCURRENCY} pipelines in flight, ${RATE} predictions/s, ${FEEDBACK_PCT} % feedback, ${READS_PER_S} reads/s), tag ${tag}`,
  );
  tempDir = await mkdtemp(join(tmpdir(), 'flywheel-soak-'));
  const logs = join(tempDir, 'logs');
  await mkdir(logs);

  // Own MinIO.
  const [minioPort, consolePort, servingPort, serverPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  minio = new OwnMinio({
    binary: await ensureTool(MINIO_TOOL, settingsBase.cacheDir, log),
    dataDir: join(tempDir, 'minio'),
    port: minioPort,
    consolePort,
    accessKey: `soak-${randomBytes(4).toString('hex')}`,
    secretKey: randomBytes(18).toString('base64url'),
    logFile: join(logs, 'minio.log'),
  });
  await minio.start();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FLYWHEEL_S3_ENDPOINT: minio.endpoint,
    FLYWHEEL_S3_ACCESS_KEY: minio.spec.accessKey,
    FLYWHEEL_S3_SECRET_KEY: minio.spec.secretKey,
    FLYWHEEL_S3_BUCKET: 'flywheel',
    FLYWHEEL_TASK_QUEUE: queues.main,
    FLYWHEEL_TRAIN_CPU_QUEUE: queues.trainCpu,
    FLYWHEEL_TRAIN_GPU_QUEUE: queues.trainGpu,
    FLYWHEEL_SERVING_PORT: String(servingPort),
    FLYWHEEL_SERVING_URL: `http://127.0.0.1:${servingPort}`,
    FLYWHEEL_SERVER_PORT: String(serverPort),
    FLYWHEEL_URL: `http://127.0.0.1:${serverPort}`,
    FLYWHEEL_DATA_ROOTS: [process.env.FLYWHEEL_DATA_ROOTS, tempDir].filter(Boolean).join(':'),
  };
  const settings = loadConfig(env);
  await new S3ObjectStore(settings.s3).ensureBucket();
  db = connectDb(settings.databaseUrl, 3);
  client = await temporalClient(settings.temporal);
  baseId = Number(
    (await db.execute<{ id: string }>(sql`select coalesce(max(id), 0) as id from predictions`)).rows[0]!.id,
  );

  // Data: four small drops for the stream of pipelines, a larger one for the served model.
  const data = join(tempDir, 'data');
  const sources: Sources = {
    small: await Promise.all(
      [1, 2, 3, 4].map(async (seed) => {
        const path = join(data, `small-${seed}.csv`);
        await generateDemand(path, { stores: 3, items: 5, days: 60, seed });
        return { dataset: `${tag}-data${seed}`, path };
      }),
    ),
    served: { dataset: `${tag}-served-data`, path: join(data, 'served.csv') },
  };
  await generateDemand(sources.served.path, { stores: 4, items: 6, days: 90, seed: 11 });
  const requests = predictionRequests(sources.served.path, 1_000);

  // Processes.
  const servingUrl = env.FLYWHEEL_SERVING_URL!;
  const serverUrl = env.FLYWHEEL_URL!;
  const services: Record<string, Service> = {};
  const start = async (name: string, script: string, ready: Parameters<typeof startService>[4]) =>
    (services[name] = await startService(name, script, env, join(logs, `${name}.log`), ready));
  await Promise.all([
    start('train', scripts.train, { line: 'polling' }),
    start('workerA', scripts.main, { line: 'polling' }),
    start('workerB', scripts.main, { line: 'polling' }),
    start('serving', scripts.serving, { probe: async () => (await fetch(`${servingUrl}/v2/health/ready`)).ok }),
    start('server', scripts.server, { probe: async () => (await fetch(`${serverUrl}/health`)).ok }),
  ]);
  log(
    `  own MinIO :${minioPort}, serving :${servingPort}, API server :${serverPort}, workers A ${services.workerA!.child.pid} B ${services.workerB!.child.pid}, training ${services.train!.child.pid} (${elapsedS().toFixed(0)} s)`,
  );

  // Seed: the served model, deployed over the API.
  const seedId = `${tag}-seed`;
  const seedStart = await apiCall<unknown>(serverUrl, token, 'POST', '/api/v1/pipelines', {
    config: demandConfig(`${tag}-served-pipe`, servedModel, sources.served.dataset, sources.served.path, {
      epochs: 4,
      deploy: true,
    }),
    workflowId: seedId,
  });
  if (seedStart.status !== 200)
    throw new Error(
      `seed pipeline: POST /api/v1/pipelines answered ${seedStart.status}: ${JSON.stringify(seedStart.json)}`,
    );
  const seed: Tracked = { workflowId: seedId, kind: 'seed', startedAtS: 0 };
  tracked.push(seed);
  await Promise.race([follow(seed), new Promise((resolve) => setTimeout(resolve, 300_000).unref())]);
  if (seed.outcome !== 'ok')
    throw new Error(`seed pipeline ${seedId} ${seed.outcome ? `failed: ${seed.failure}` : 'did not finish in 5 min'}`);
  const seedVersion = seed.result?.model?.version;
  log(
    `  seed pipeline deployed ${servedModel} v${seedVersion} (serving: ${seed.result?.deployment?.serving}) after ${elapsedS().toFixed(0)} s`,
  );

  // Traffic.
  trafficStart = performance.now();
  const loadSpawnedAt = performance.now();
  const loadDone = runPredictionLoad({
    mode: 'open',
    host: '127.0.0.1',
    port: servingPort,
    path: '/predict',
    bodies: requests.map((r) => r.body),
    connections: 16,
    rate: RATE,
    warmupS: 0,
    durationS: SECONDS,
    graceS: 10,
    idPrefix: requestPrefix,
    returnOkIds: true,
  });
  const loops = Promise.all([
    pipelineLoop(serverUrl, token, settings, sources),
    feedbackLoop(servingUrl, requests, loadSpawnedAt),
    readLoop(serverUrl, token),
    cliLoop(serverUrl),
  ]);

  let rssPeakWorkerB = 0;
  const progress = (async () => {
    let lastLogged = 0;
    let lastAt = performance.now();
    while (!stopping) {
      await sleep(PROGRESS_S * 1000);
      if (stopping) break;
      const logged = Number(
        (
          await db!
            .execute<{ n: string }>(
              sql`select count(*) as n from predictions where id > ${baseId} and request_id like ${`${requestPrefix}%`}`,
            )
            .catch(() => ({ rows: [{ n: 'NaN' }] }))
        ).rows[0]!.n,
      );
      const now = performance.now();
      const own = tracked.filter((t) => t.kind !== 'seed');
      const readMs = [...reads.values()].flatMap((r) => r.ms);
      log(
        `  [${trafficS().toFixed(0).padStart(4)} s] pipelines ${own.filter((t) => t.outcome === 'ok').length} ok, ${own.filter((t) => t.outcome === 'failed').length} failed, ${own.filter((t) => !t.outcome).length} running` +
          ` | predictions logged ${fmt(logged)} (${fmt((logged - lastLogged) / ((now - lastAt) / 1000))}/s)` +
          ` | reads p99 ${percentile(readMs, 0.99).toFixed(0)} ms | feedback ${fmt(feedback.accepted)} accepted, ${fmt(feedback.unknown.size)} unknown` +
          ` | RSS worker B ${rssMb(services.workerB!.child.pid)?.toFixed(0) ?? '-'} MB, training ${rssMb(services.train!.child.pid)?.toFixed(0) ?? '-'} MB, serving ${rssMb(services.serving!.child.pid)?.toFixed(0) ?? '-'} MB`,
      );
      lastLogged = logged;
      lastAt = now;
      rssPeakWorkerB = Math.max(rssPeakWorkerB, rssMb(services.workerB!.child.pid) ?? 0);
    }
  })();

  const at = (fraction: number) => sleep(trafficStart + fraction * SECONDS * 1000 - performance.now());
  const warmupS = Math.min(60, SECONDS / 6);
  await at(warmupS / SECONDS);
  const rssAfterWarmup = {
    workerB: rssMb(services.workerB!.child.pid),
    train: rssMb(services.train!.child.pid),
    serving: rssMb(services.serving!.child.pid),
  };
  note(
    `warm-up over: RSS worker B ${rssAfterWarmup.workerB?.toFixed(0)} MB, training ${rssAfterWarmup.train?.toFixed(0)} MB, serving ${rssAfterWarmup.serving?.toFixed(0)} MB`,
  );

  // Fault 1: a main worker dies mid-work; a replacement starts at once.
  await at(1 / 3);
  const killedPid = services.workerA!.child.pid;
  const workerKilledAt = trafficS();
  const inFlightAtKill = tracked.filter((t) => !t.outcome);
  services.workerA!.child.kill('SIGKILL');
  note(
    `SIGKILL main worker A (pid ${killedPid}); in flight: ${inFlightAtKill.map((t) => t.workflowId).join(', ') || 'none'}`,
  );
  await start('workerA2', scripts.main, { line: 'polling' });
  const replacementReadyS = trafficS() - workerKilledAt;
  note(`replacement worker A2 (pid ${services.workerA2!.child.pid}) polling after ${replacementReadyS.toFixed(1)} s`);

  // Fault 2: the object store dies and comes back on the same data.
  await at(2 / 3);
  const minioKilledAt = trafficS();
  const inFlightAtMinio = tracked.filter((t) => !t.outcome);
  await minio.kill();
  note(`SIGKILL MinIO; in flight: ${inFlightAtMinio.map((t) => t.workflowId).join(', ') || 'none'}`);
  await sleep(MINIO_DOWN_S * 1000);
  await minio.start();
  const minioDownS = trafficS() - minioKilledAt;
  note(`MinIO answering again after ${minioDownS.toFixed(1)} s down`);

  await at(1);
  const rssEnd = {
    workerB: rssMb(services.workerB!.child.pid),
    train: rssMb(services.train!.child.pid),
    serving: rssMb(services.serving!.child.pid),
  };
  stopping = true;
  note(
    `traffic window over: RSS worker B ${rssEnd.workerB?.toFixed(0)} MB, training ${rssEnd.train?.toFixed(0)} MB, serving ${rssEnd.serving?.toFixed(0)} MB`,
  );
  const load: LoadResult = await loadDone;
  await Promise.all([loops, progress]);

  // Pipelines still running get the grace period.
  const graceStarted = performance.now();
  while (tracked.some((t) => !t.outcome) && performance.now() - graceStarted < GRACE_S * 1000) await sleep(1_000);
  const graceS = (performance.now() - graceStarted) / 1000;
  const own = tracked.filter((t) => t.kind !== 'seed');
  const unfinished = own.filter((t) => !t.outcome);
  log(
    `  pipelines: ${own.length} started, ${own.length - unfinished.length} ended ${graceS.toFixed(0)} s after the traffic window${unfinished.length ? `, ${unfinished.length} still running (terminated at cleanup)` : ''}`,
  );

  // Lost prediction logs: answered 200, not in `predictions` once the log had time to drain.
  const answered = new Set((load.ok_ids ?? []).map((seq) => `${requestPrefix}m${seq}`));
  const drainStarted = performance.now();
  let logged = new Set<string>();
  let missing: string[] = [];
  for (;;) {
    const rows = await db.execute<{ request_id: string }>(
      sql`select request_id from predictions where id > ${baseId} and request_id like ${`${requestPrefix}%`}`,
    );
    logged = new Set(rows.rows.map((r) => r.request_id));
    missing = [...answered].filter((id) => !logged.has(id));
    if (missing.length === 0 || performance.now() - drainStarted >= DRAIN_S * 1000) break;
    await sleep(1_000);
  }
  const drainS = (performance.now() - drainStarted) / 1000;
  const versions = (
    await db.execute<{ version: number; n: string }>(
      sql`select model_version as version, count(*) as n from predictions where id > ${baseId} and request_id like ${`${requestPrefix}%`} group by model_version order by model_version`,
    )
  ).rows.map((r) => ({ version: Number(r.version), predictions: Number(r.n) }));
  // Labels refused as unknown although the request had been answered 200: its log row was late (or lost).
  const unknownAnswered = [...feedback.unknown].filter((id) => answered.has(id));

  // Does serving answer with what the registry says is deployed?
  const [deployed] = await db
    .select({ version: deployments.version })
    .from(deployments)
    .where(like(deployments.id, `${servedModel}/champion`));
  const servingNow = await fetch(`${servingUrl}/v2/models/${encodeURIComponent(servedModel)}`).then(
    async (r) => Number(((await r.json()) as { versions?: string[] }).versions?.[0]),
    () => NaN,
  );

  const fate = (t: Tracked) => ({
    workflow_id: t.workflowId,
    kind: t.kind,
    status: t.status ?? 'RUNNING',
    seconds: t.endedAtS === undefined ? null : fixed(t.endedAtS - t.startedAtS),
  });
  const ok = own.filter((t) => t.outcome === 'ok');
  const failed = own.filter((t) => t.outcome === 'failed');
  const durations = ok.map((t) => t.endedAtS! - t.startedAtS);
  const readFigures = Object.fromEntries(
    [...reads.entries()].map(([kind, r]) => [
      kind,
      {
        ok: r.ms.length,
        errors: r.errors,
        p50_ms: fixed(percentile(r.ms, 0.5)),
        p99_ms: fixed(percentile(r.ms, 0.99)),
        ...(r.firstError ? { first_error: r.firstError } : {}),
      },
    ]),
  );
  const allReads = [...reads.values()].flatMap((r) => r.ms);
  const exits = Object.values(services)
    .filter((s) => s.exited && s.name !== 'workerA')
    .map((s) => `${s.name}: ${s.exited}`);
  const growth = (a?: number, b?: number) => (a !== undefined && b !== undefined ? fixed(b - a) : null);
  const statusesNot200 = Object.fromEntries(Object.entries(load.statuses).filter(([status]) => status !== '200'));

  const lines = [
    '',
    `bench:soak — ${SECONDS} s, ${RATE} predictions/s open loop, ${CONCURRENCY} pipelines in flight, worker SIGKILL at ${workerKilledAt.toFixed(0)} s, MinIO SIGKILL at ${minioKilledAt.toFixed(0)} s (${minioDownS.toFixed(1)} s down)`,
    `  pipelines: ${own.length} started, ${ok.length} ok, ${failed.length} failed, ${unfinished.length} unfinished; ${own.filter((t) => t.kind === 'retrain').length} retrained and redeployed the served model; median ${percentile(durations, 0.5).toFixed(0)} s, max ${percentile(durations, 1).toFixed(0)} s each`,
    ...failed.slice(0, 5).map((t) => `    ${t.workflowId} ${t.status}: ${t.failure}`),
    `  predictions: ${fmt(load.measured)} sent, ${fmt(load.ok)} answered 200 (${load.rps.toFixed(1)}/s), p50 ${load.latency_ms.p50} ms, p99 ${load.latency_ms.p99} ms, p99.9 ${load.latency_ms.p999} ms, max ${load.latency_ms.max} ms; not 200: ${JSON.stringify(statusesNot200)}, connection errors ${load.errors}, unfinished ${load.unfinished}`,
    `  prediction log: ${fmt(logged.size)} rows under the soak's ids, ${missing.length} of ${fmt(answered.size)} answered requests missing ${drainS.toFixed(1)} s after the traffic; versions served ${versions.map((v) => `v${v.version} ${fmt(v.predictions)}`).join(', ')}; serving answers with v${servingNow}, the registry's champion is v${deployed?.version}`,
    `  feedback: ${fmt(feedback.labels)} labels in ${fmt(feedback.requests)} requests, ${fmt(feedback.accepted)} accepted, ${fmt(feedback.unknown.size)} unknown (${unknownAnswered.length} of them answered 200), ${feedback.errors} errors`,
    `  reads: ${fmt(allReads.length)} ok, p50 ${percentile(allReads, 0.5).toFixed(0)} ms, p99 ${percentile(allReads, 0.99).toFixed(0)} ms; CLI ${cliRuns.filter((c) => c.ok).length}/${cliRuns.length} ok`,
    `  RSS after warm-up → end: main worker B ${rssAfterWarmup.workerB?.toFixed(0)} → ${rssEnd.workerB?.toFixed(0)} MB, training worker ${rssAfterWarmup.train?.toFixed(0)} → ${rssEnd.train?.toFixed(0)} MB, serving ${rssAfterWarmup.serving?.toFixed(0)} → ${rssEnd.serving?.toFixed(0)} MB`,
    ...(exits.length ? [`  processes that exited on their own: ${exits.join(', ')}`] : []),
    `  total ${elapsedS().toFixed(0)} s`,
    '',
  ];
  console.log(lines.join('\n'));
  if (exits.length)
    for (const s of Object.values(services).filter((x) => x.exited && x.name !== 'workerA'))
      log(`--- ${s.name} ---\n${logTail(s.logFile)}`);

  const figures = {
    bench: 'soak',
    seconds: SECONDS,
    pipelines_ok: ok.length,
    pipelines_failed: failed.length,
    pipelines_unfinished: unfinished.length,
    pipelines_started: own.length,
    pipeline_start_errors: startErrors.length,
    retrains_of_served_model: own.filter((t) => t.kind === 'retrain').length,
    pipeline_median_s: fixed(percentile(durations, 0.5)),
    pipeline_failures: failed
      .slice(0, 10)
      .map((t) => ({ workflow_id: t.workflowId, kind: t.kind, status: t.status, failure: t.failure })),
    lost_prediction_logs: missing.length,
    predictions_answered_200: answered.size,
    predictions_logged: logged.size,
    log_drain_s: fixed(drainS),
    worker_rss_growth_mb: growth(rssAfterWarmup.workerB, rssEnd.workerB),
    worker_rss_mb: {
      after_warmup: rssAfterWarmup.workerB && fixed(rssAfterWarmup.workerB),
      end: rssEnd.workerB && fixed(rssEnd.workerB),
      peak_sampled: fixed(Math.max(rssPeakWorkerB, rssEnd.workerB ?? 0)),
    },
    training_worker_rss_growth_mb: growth(rssAfterWarmup.train, rssEnd.train),
    serving_rss_growth_mb: growth(rssAfterWarmup.serving, rssEnd.serving),
    p99_ms: load.latency_ms.p99,
    p50_ms: load.latency_ms.p50,
    p999_ms: load.latency_ms.p999,
    max_ms: load.latency_ms.max,
    rate: RATE,
    achieved_rps: fixed(load.rps),
    prediction_errors: {
      not_200: statusesNot200,
      connection: load.errors,
      unfinished: load.unfinished,
      ...(load.first_error ? { first: load.first_error } : {}),
    },
    send_lag_p99_ms: load.send_lag_ms?.p99 ?? null,
    versions_served: versions,
    serving_version_end: servingNow,
    champion_version_end: deployed?.version ?? null,
    feedback: {
      labels: feedback.labels,
      accepted: feedback.accepted,
      unknown: feedback.unknown.size,
      unknown_but_answered: unknownAnswered.length,
      errors: feedback.errors,
      ...(feedback.firstError ? { first_error: feedback.firstError } : {}),
    },
    reads_p50_ms: fixed(percentile(allReads, 0.5)),
    reads_p99_ms: fixed(percentile(allReads, 0.99)),
    reads: readFigures,
    cli: {
      runs: cliRuns.length,
      ok: cliRuns.filter((c) => c.ok).length,
      median_s: fixed(
        percentile(
          cliRuns.map((c) => c.seconds),
          0.5,
        ),
      ),
    },
    faults: {
      worker_killed_at_s: fixed(workerKilledAt),
      replacement_ready_s: fixed(replacementReadyS),
      in_flight_at_worker_kill: inFlightAtKill.map(fate),
      minio_killed_at_s: fixed(minioKilledAt),
      minio_down_s: fixed(minioDownS),
      in_flight_at_minio_kill: inFlightAtMinio.map(fate),
    },
    unexpected_exits: exits,
    events: events.slice(0, 30),
    total_s: fixed(elapsedS()),
  };
  await cleanup();
  console.log(JSON.stringify(figures));
  process.exit(0);
} finally {
  await cleanup();
}
