/**
 * bench:train — Flywheel's training loop against PyTorch on the same MLP and the same numbers, in the same run, and
 * how fast step metrics can be written to Postgres.
 *
 * Problem (bench/trainData.ts): a deterministic synthetic regression table of raw strings, as CSV delivers it,
 * BENCH_ROWS rows (default 50,000) × 20 numeric features + target, split by `splitRows` (training/split.ts;
 * holdout 0.2, validation 10 % of the rest: 36,000 training and 4,000 validation rows by default). Model:
 * 20 → 64 → 64 → 1, ReLU, Adam lr 0.001, MSE, batch 256, BENCH_EPOCHS epochs (default 10), seed 42, per-epoch shuffle.
 *
 * Flywheel: `fitModel` (training/fit.ts) with `loadTf({ pin })` (training/backend.ts), each backend of BENCH_BACKENDS
 * (default tensorflow-gpu,tensorflow,wasm,cpu) in a child process of its own (bench/trainChild.ts; a TF.js backend is
 * per process); a backend that loadTf cannot load under its own name (the native tfjs-node packages when they do not
 * install) is reported as unavailable. Timed: the whole fitModel call — its preprocessing from raw strings
 * (fitPreprocessor + encoding into tensors), model build, and per epoch the shuffle (gather), model.fit and the
 * validation loss. Not timed: process start, loading the backend, generating the table. samples/s = training rows ×
 * epochs / that time. The onEpoch hook also gives the epoch-loop time alone (`fit rate`, without the preprocessing
 * and model build) and the steady epoch (fastest epoch, i.e. without the first epoch's warm-up).
 *
 * PyTorch: bench/train_torch.py with Debian's python3-torch (/usr/bin/python3), trained on the very matrices
 * fitModel trains on: this process runs Flywheel's own preprocessing (fitPreprocessor on the training split,
 * encodeColumns/encodeTarget) and writes the standardised training and validation rows as float32 files to a
 * temporary directory. Same architecture, Glorot-uniform init, Adam (eps 1e-7 as TF.js), batch 256 with the last
 * partial batch, per-epoch shuffle (one gather of the matrix, as fitModel), validation loss per epoch. Timed: its epoch
 * loop (it gets its matrices ready-made, so it does no preprocessing). Runs: PyTorch's default thread count, one
 * thread (torch.set_num_threads(1)) and all cores, each distinct count once.
 *
 * Which ratio: `ratio_vs_pytorch` = the best TF.js backend's samples/s (whole fitModel) ÷ PyTorch with its default
 * threads — what a user gets from each out of the box. TF.js wasm runs single-threaded in Node (tfjs-backend-wasm
 * turns threads off there) and the pure-JS cpu backend is single-threaded too, so the summary also gives the ratio
 * against one-thread PyTorch (like for like) and against all cores. Debian's torch 1.13 picks 1 thread by default on
 * the 2-core reference machine (torch.get_num_threads()), so there the default and the one-thread runs are the same
 * configuration, run once; 2 threads are slower there for a model this small.
 *
 * Runs: BENCH_REPEATS (default 3) rounds; each round runs every side once, in alternating order (forward, then
 * reversed); each side's figure is its best (fastest) run. When BENCH_BUDGET_S (default 420) would be passed by
 * another round, the rounds stop early (the summary says so). Then, once per TF.js backend and not timed with the
 * runs, a diagnosis of one training step (BENCH_DIAGNOSE=0 skips it): ms per batch, kernels per step and kernel time by
 * op (tf.profile), the step's 8 matMuls as called (5 with a transposed operand) against pre-transposed operands, and
 * the dispatch cost of one tiny op — what limits the rate.
 *
 * Metric writes: into `run_metrics` (schema/runs.ts) for a throwaway dataset + dataset version + run created for
 * the purpose and deleted at the end (rows, run, version, dataset — also on SIGINT/SIGTERM). BENCH_METRIC_POINTS
 * (default 200,000) points = 10 keys × steps, from an in-memory array of { runId, key, step, value } rows, per method:
 * drizzle `db.insert(runMetrics).values(rows)` in batches of 1k, 5k, 10k; drizzle with activities/train.ts's
 * `onConflictDoUpdate` (the statement Flywheel runs today); a raw pg multi-row `VALUES ($1,$2,$3,$4),…` (10k rows,
 * 40k parameters; 65,535 is Postgres' limit); `INSERT … SELECT * FROM unnest($1::text[], $2::text[], $3::int[],
 * $4::float8[])` in batches of 10k and 50k; the same with the run id as one scalar parameter; and that one with
 * `ON CONFLICT … DO UPDATE` (the upsert semantics a resumed run needs). One statement per batch, autocommit, one
 * connection, turning the row objects into arrays or SQL is timed. The table's rows for the run are deleted after each
 * trial (untimed) so every trial starts from the same table. BENCH_METRIC_REPEATS (default 2) interleaved rounds;
 * best of each method; `metric_points_per_s` is the best method's (goal ≥ 100,000/s batched). BENCH_METRIC_POINTS=0
 * skips this part.
 *
 * Environment: BENCH_ROWS, BENCH_EPOCHS, BENCH_REPEATS, BENCH_BACKENDS (comma list of tensorflow-gpu | tensorflow |
 * wasm | cpu), BENCH_METRIC_POINTS, BENCH_METRIC_REPEATS, BENCH_DIAGNOSE (0|1), BENCH_BUDGET_S, BENCH_PYTHON (default
 * /usr/bin/python3). About 3 minutes on the 2-core reference machine; a quick run: BENCH_EPOCHS=3 BENCH_REPEATS=1
 * BENCH_METRIC_POINTS=50000 npm run bench:train.
 *
 * Last line of stdout: one JSON object with `ratio_vs_pytorch` (goal ≥ 0.5), `backend` (the best TF.js backend) and
 * `metric_points_per_s` (goal ≥ 100,000).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { encodeColumns, encodeTarget, featureWidth, fitPreprocessor } from '../training/preprocess';
import { datasets, datasetVersions } from '../schema/datasets';
import { runMetrics, runs } from '../schema/runs';
import { connectDb, migrateDb } from '../storage/db';
import { writeMetrics } from '../store/metrics';
import { loadConfig, PROJECT_ROOT } from '../config/env';
import { budgetedRounds, ensurePythonPeer, intFromEnv, lastJson, runProcess } from './peer';
import { benchSplit, generateColumns, trainingParams } from './trainData';

const ALL_BACKENDS = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
type Backend = (typeof ALL_BACKENDS)[number];
const ROWS = intFromEnv('BENCH_ROWS', 50_000);
const EPOCHS = Math.max(1, intFromEnv('BENCH_EPOCHS', 10));
const REPEATS = Math.max(1, intFromEnv('BENCH_REPEATS', 3));
const METRIC_POINTS = intFromEnv('BENCH_METRIC_POINTS', 200_000);
const METRIC_REPEATS = Math.max(1, intFromEnv('BENCH_METRIC_REPEATS', 2));
const DIAGNOSE = intFromEnv('BENCH_DIAGNOSE', 1) !== 0;
const BUDGET_S = intFromEnv('BENCH_BUDGET_S', 420);
const PYTHON = process.env.BENCH_PYTHON || '/usr/bin/python3';
const BACKENDS = (process.env.BENCH_BACKENDS || ALL_BACKENDS.join(','))
  .split(',')
  .map((b) => b.trim())
  .filter(Boolean) as Backend[];
for (const b of BACKENDS)
  if (!ALL_BACKENDS.includes(b))
    throw new Error(`BENCH_BACKENDS: unknown backend "${b}" (expected ${ALL_BACKENDS.join(', ')})`);
if (ROWS < 1000) throw new Error('BENCH_ROWS must be at least 1000');
const benchStarted = performance.now();
const elapsedS = () => (performance.now() - benchStarted) / 1000;

// ---------------------------------------------------------------------------------------------------------------
// Processes

interface FlywheelRun {
  backend: string;
  train_rows: number;
  validation_rows: number;
  epochs: number;
  fit_seconds: number;
  setup_seconds: number;
  epoch_seconds: number[];
  loss: number[];
  val_loss: number[];
  wasm?: { simd: boolean; threads: boolean };
  tf_version: string;
}
interface Unavailable {
  unavailable: true;
  wanted: string;
  loaded: string;
}
interface TorchRun {
  torch_version: string;
  threads: number;
  default_threads: number;
  train_rows: number;
  epochs: number;
  seconds: number;
  epoch_seconds: number[];
  loss: number[];
  val_loss: number[];
}
interface Diagnosis {
  backend: string;
  batch_size: number;
  step_ms: number;
  kernels_per_step: number;
  kernel_ms_per_step: number;
  ops: { op: string; per_step: number; ms: number }[];
  matmuls_ms: number;
  matmuls_transposed_ms: number;
  matmuls_pretransposed_ms: number;
  dispatch_us: number;
}

const childArgs = (backend: Backend, extra: string[] = []) => [
  '--import',
  'tsx',
  join(PROJECT_ROOT, 'bench', 'trainChild.ts'),
  backend,
  String(ROWS),
  String(EPOCHS),
  ...extra,
];

async function runFlywheel(backend: Backend): Promise<FlywheelRun | Unavailable> {
  const { stdout } = await runProcess(process.execPath, childArgs(backend));
  return lastJson<FlywheelRun | Unavailable>(stdout);
}

async function runTorch(dataDir: string, threads: number): Promise<TorchRun> {
  const { stdout } = await runProcess(PYTHON, [
    join(PROJECT_ROOT, 'bench', 'train_torch.py'),
    dataDir,
    String(EPOCHS),
    String(threads),
  ]);
  return lastJson<TorchRun>(stdout);
}

/** PyTorch from Debian (python3-torch): its version and default thread count. */
function ensureTorch(): { version: string; defaultThreads: number } {
  const [version = '?', threads = '1'] = ensurePythonPeer(
    PYTHON,
    'import torch; print(torch.__version__, torch.get_num_threads())',
    'python3-torch',
    'bench:train',
  ).split(/\s+/);
  return { version, defaultThreads: Number(threads) };
}

/** Flywheel's own preprocessing of the training and validation rows, as fitModel does it, written as float32 files. */
async function writeTorchData(dir: string): Promise<{ trainRows: number; validationRows: number; width: number }> {
  const params = trainingParams(EPOCHS);
  const columns = generateColumns(ROWS);
  const split = benchSplit(ROWS, params);
  const pre = fitPreprocessor(columns, split.train, {
    task: params.task,
    target: params.target,
    numeric: params.features.numeric,
    categorical: params.features.categorical,
  });
  const width = featureWidth(pre);
  const write = (name: string, values: Float32Array) =>
    writeFile(join(dir, name), Buffer.from(values.buffer, values.byteOffset, values.byteLength));
  await write('x_train.f32', encodeColumns(pre, columns, split.train));
  await write('y_train.f32', encodeTarget(pre, columns, split.train));
  await write('x_val.f32', encodeColumns(pre, columns, split.validation));
  await write('y_val.f32', encodeTarget(pre, columns, split.validation));
  await writeFile(
    join(dir, 'meta.json'),
    JSON.stringify({ train_rows: split.train.length, validation_rows: split.validation.length, width }),
  );
  return { trainRows: split.train.length, validationRows: split.validation.length, width };
}

// ---------------------------------------------------------------------------------------------------------------
// Metric writes

const settings = loadConfig();
const db = connectDb(settings.databaseUrl, 1);
const runTag = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
const DATASET = `bench-train-${runTag}`;
const VERSION_ID = `${DATASET}@0000000000000000`;
const RUN_ID = `bench-train-run-${runTag}`;
let metricRowsCreated = false;
let interrupted = false;

type MetricRow = { runId: string; key: string; step: number; value: number };
interface MetricMethod {
  name: string;
  batch: number;
  write(rows: MetricRow[]): Promise<unknown>;
}

const UNNEST4 =
  'INSERT INTO run_metrics (run_id, key, step, value) SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::float8[])';
const UNNEST_SCALAR =
  'INSERT INTO run_metrics (run_id, key, step, value) SELECT $1, k, s, v FROM unnest($2::text[], $3::int[], $4::float8[]) AS t(k, s, v)';
const METHODS: MetricMethod[] = [
  ...[1_000, 5_000, 10_000].map((batch) => ({
    name: 'drizzle insert().values()',
    batch,
    write: (rows: MetricRow[]) => db.insert(runMetrics).values(rows),
  })),
  {
    name: 'drizzle upsert',
    batch: 10_000,
    write: (rows) =>
      db
        .insert(runMetrics)
        .values(rows)
        .onConflictDoUpdate({
          target: [runMetrics.runId, runMetrics.key, runMetrics.step],
          set: { value: sql`excluded.value` },
        }),
  },
  {
    name: "Flywheel's writeMetrics (store/metrics.ts: unnest upsert)",
    batch: 50_000,
    write: (rows) => writeMetrics(db, rows[0]!.runId, rows),
  },
  {
    name: 'pg multi-row VALUES',
    batch: 10_000,
    write: (rows) => {
      const params: unknown[] = [];
      const tuples = rows.map((r, i) => {
        params.push(r.runId, r.key, r.step, r.value);
        return `($${4 * i + 1},$${4 * i + 2},$${4 * i + 3},$${4 * i + 4})`;
      });
      return db.$client.query(`INSERT INTO run_metrics (run_id, key, step, value) VALUES ${tuples.join(',')}`, params);
    },
  },
  ...[10_000, 50_000].map((batch) => ({
    name: 'pg unnest(4 arrays)',
    batch,
    write: (rows: MetricRow[]) =>
      db.$client.query(UNNEST4, [
        rows.map((r) => r.runId),
        rows.map((r) => r.key),
        rows.map((r) => r.step),
        rows.map((r) => r.value),
      ]),
  })),
  {
    name: 'pg unnest(run_id scalar + 3 arrays)',
    batch: 50_000,
    write: (rows) =>
      db.$client.query(UNNEST_SCALAR, [
        rows[0]!.runId,
        rows.map((r) => r.key),
        rows.map((r) => r.step),
        rows.map((r) => r.value),
      ]),
  },
  {
    name: 'pg unnest(scalar + 3) ON CONFLICT DO UPDATE',
    batch: 50_000,
    write: (rows) =>
      db.$client.query(`${UNNEST_SCALAR} ON CONFLICT (run_id, key, step) DO UPDATE SET value = excluded.value`, [
        rows[0]!.runId,
        rows.map((r) => r.key),
        rows.map((r) => r.step),
        rows.map((r) => r.value),
      ]),
  },
];
const methodLabel = (m: MetricMethod) => `${m.name}, batch ${m.batch.toLocaleString('en')}`;

async function createMetricOwner(): Promise<void> {
  metricRowsCreated = true;
  await db.insert(datasets).values({ name: DATASET });
  await db.insert(datasetVersions).values({
    id: VERSION_ID,
    datasetName: DATASET,
    contentHash: '0'.repeat(64),
    objectKey: `bench/${DATASET}`,
    sourceUri: 'bench:train',
    rowCount: 0,
    byteSize: 0,
    columns: [],
    profile: [],
    createdByWorkflowId: 'bench-train',
  });
  await db.insert(runs).values({
    id: RUN_ID,
    workflowId: 'bench-train',
    pipelineName: 'bench-train',
    experiment: 'bench',
    modelName: 'bench-train',
    datasetVersionId: VERSION_ID,
    status: 'running',
    task: 'regression',
    params: {},
    seed: 42,
  });
}

/** Rows, run, version, dataset; retried, since an interrupted trial may still land one more batch in between. */
async function removeMetricOwner(): Promise<void> {
  if (!metricRowsCreated) return;
  for (let attempt = 1; ; attempt++) {
    try {
      await db.delete(runMetrics).where(eq(runMetrics.runId, RUN_ID));
      await db.delete(runs).where(eq(runs.id, RUN_ID));
      break;
    } catch (error) {
      if (attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  await db.delete(datasetVersions).where(eq(datasetVersions.id, VERSION_ID));
  await db.delete(datasets).where(eq(datasets.name, DATASET));
}

const METRIC_KEYS = [
  'loss',
  'val_loss',
  'learning_rate',
  'grad_norm',
  'mae',
  'rmse',
  'r2',
  'samples_per_s',
  'epoch_seconds',
  'weight_norm',
];

async function measureMethod(method: MetricMethod, rows: MetricRow[]): Promise<number> {
  await db.delete(runMetrics).where(eq(runMetrics.runId, RUN_ID));
  const started = performance.now();
  for (let i = 0; i < rows.length; i += method.batch) {
    if (interrupted) throw new Error('interrupted');
    await method.write(rows.slice(i, i + method.batch));
  }
  const seconds = (performance.now() - started) / 1000;
  const [counted] = (
    await db.execute<{ n: number }>(sql`select count(*)::int as n from run_metrics where run_id = ${RUN_ID}`)
  ).rows;
  if (counted?.n !== rows.length)
    throw new Error(`${methodLabel(method)} wrote ${String(counted?.n)} points, expected ${rows.length}`);
  return seconds;
}

// ---------------------------------------------------------------------------------------------------------------
// Main

const torch = ensureTorch();
await migrateDb(db);
const dataDir = await mkdtemp(join(tmpdir(), 'flywheel-bench-train-'));
let cleaning: Promise<void> | undefined;
const cleanup = () =>
  (cleaning ??= (async () => {
    await rm(dataDir, { recursive: true, force: true });
    await removeMetricOwner().catch((error: Error) =>
      console.error(`  could not remove the bench's run ${RUN_ID} / dataset ${DATASET}: ${error.message}`),
    );
    await db.$client.end();
  })());
const onSignal = (signal: NodeJS.Signals) => {
  interrupted = true;
  console.error(`\n${signal}: removing ${dataDir} and this run's rows`);
  void cleanup().finally(() => process.exit(130));
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

const cores = availableParallelism();
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

try {
  console.error(
    `bench:train: ${fmt(ROWS)} rows × 20 features, MLP 20→64→64→1, batch 256, ${EPOCHS} epochs, ${REPEATS} interleaved rounds; backends ${BACKENDS.join(', ')}; torch ${torch.version} (${PYTHON}, default ${torch.defaultThreads} thread(s), ${cores} cores)`,
  );
  const shape = await writeTorchData(dataDir);

  // Torch configurations: default threads, 1 thread, all cores — each distinct thread count once.
  const torchConfigs: { label: string; threads: number; count: number }[] = [
    { label: 'default', threads: 0, count: torch.defaultThreads },
  ];
  if (!torchConfigs.some((c) => c.count === 1)) torchConfigs.push({ label: '1 thread', threads: 1, count: 1 });
  if (!torchConfigs.some((c) => c.count === cores))
    torchConfigs.push({ label: 'all cores', threads: cores, count: cores });

  // Which backends load under their own name: the first round finds out.
  const flywheelRuns = new Map<Backend, FlywheelRun[]>();
  const unavailable = new Map<Backend, string>();
  const torchRuns = new Map<number, TorchRun[]>(torchConfigs.map((c) => [c.count, []]));
  type Side = { kind: 'flywheel'; backend: Backend } | { kind: 'torch'; threads: number; count: number; label: string };
  const describe = (side: Side) =>
    side.kind === 'flywheel'
      ? `flywheel ${side.backend}`
      : `pytorch ${side.count} thread${side.count === 1 ? '' : 's'}${side.threads === 0 ? ' (default)' : ''}`;
  const { rounds: roundsRun, stopped: roundsStopped } = await budgetedRounds(
    REPEATS,
    BUDGET_S,
    elapsedS,
    async (round) => {
      const sides: Side[] = [
        ...BACKENDS.filter((b) => !unavailable.has(b)).map((backend) => ({ kind: 'flywheel' as const, backend })),
        ...torchConfigs.map((c) => ({ kind: 'torch' as const, threads: c.threads, count: c.count, label: c.label })),
      ];
      if (round % 2 === 1) sides.reverse();
      for (const side of sides) {
        if (side.kind === 'flywheel') {
          const result = await runFlywheel(side.backend);
          if ('unavailable' in result) {
            unavailable.set(side.backend, `loadTf fell back to ${result.loaded}`);
            console.error(
              `  ${describe(side).padEnd(30)} unavailable (loadTf({ pin: '${side.backend}' }) gave ${result.loaded})`,
            );
            continue;
          }
          if (result.train_rows !== shape.trainRows || result.epochs !== EPOCHS)
            throw new Error(
              `${describe(side)} trained ${result.train_rows} rows × ${result.epochs} epochs, expected ${shape.trainRows} × ${EPOCHS}`,
            );
          (flywheelRuns.get(side.backend) ?? flywheelRuns.set(side.backend, []).get(side.backend)!).push(result);
          console.error(
            `  ${describe(side).padEnd(30)} ${result.fit_seconds.toFixed(2).padStart(7)} s  ${fmt((result.train_rows * EPOCHS) / result.fit_seconds).padStart(9)} samples/s  (setup ${result.setup_seconds.toFixed(2)} s, epochs ${median(result.epoch_seconds).toFixed(3)} s median, final val_loss ${result.val_loss.at(-1)?.toFixed(4)})`,
          );
        } else {
          const result = await runTorch(dataDir, side.threads);
          if (result.threads !== side.count) throw new Error(`${describe(side)} ran with ${result.threads} threads`);
          torchRuns.get(side.count)!.push(result);
          console.error(
            `  ${describe(side).padEnd(30)} ${result.seconds.toFixed(2).padStart(7)} s  ${fmt((result.train_rows * EPOCHS) / result.seconds).padStart(9)} samples/s  (epochs ${median(result.epoch_seconds).toFixed(3)} s median, final val_loss ${result.val_loss.at(-1)?.toFixed(4)})`,
          );
        }
      }
    },
  );

  // Diagnosis: once per TF.js backend that trained.
  const diagnoses = new Map<string, Diagnosis>();
  if (DIAGNOSE) {
    for (const backend of flywheelRuns.keys()) {
      const { stdout } = await runProcess(process.execPath, childArgs(backend, ['diagnose']));
      diagnoses.set(backend, lastJson<Diagnosis>(stdout));
    }
  }

  // Metric writes.
  const metricBest = new Map<MetricMethod, number>();
  let metricRounds = 0;
  if (METRIC_POINTS > 0) {
    await createMetricOwner();
    const rows: MetricRow[] = Array.from({ length: METRIC_POINTS }, (_, i) => ({
      runId: RUN_ID,
      key: METRIC_KEYS[i % METRIC_KEYS.length]!,
      step: Math.floor(i / METRIC_KEYS.length),
      value: Math.sin(i) * 100,
    }));
    for (let round = 0; round < METRIC_REPEATS; round++) {
      const order = round % 2 === 0 ? METHODS : [...METHODS].reverse();
      for (const method of order) {
        const seconds = await measureMethod(method, rows);
        metricBest.set(method, Math.min(metricBest.get(method) ?? Infinity, seconds));
        console.error(
          `  metrics ${methodLabel(method).padEnd(54)} ${seconds.toFixed(2).padStart(6)} s  ${fmt(METRIC_POINTS / seconds).padStart(9)} points/s`,
        );
      }
      metricRounds++;
    }
    await db.delete(runMetrics).where(eq(runMetrics.runId, RUN_ID));
  }

  // ------------------------------------------------------------------------------------------------------------
  // Summary

  const samples = shape.trainRows * EPOCHS;
  const bestBy = <T>(items: T[], seconds: (t: T) => number) =>
    items.reduce((a, b) => (seconds(b) < seconds(a) ? b : a));
  const flywheel = [...flywheelRuns.entries()]
    .map(([backend, list]) => {
      const best = bestBy(list, (r) => r.fit_seconds);
      const loop = Math.min(...list.map((r) => r.epoch_seconds.reduce((a, b) => a + b, 0)));
      const steady = Math.min(...list.flatMap((r) => r.epoch_seconds));
      return {
        backend,
        runs: list.length,
        best,
        rate: samples / best.fit_seconds,
        loopRate: samples / loop,
        steadyRate: shape.trainRows / steady,
        msPerBatch: (1000 * steady) / Math.ceil(shape.trainRows / 256),
      };
    })
    .sort((a, b) => b.rate - a.rate);
  const torchSummary = torchConfigs.map((c) => {
    const list = torchRuns.get(c.count)!;
    const best = bestBy(list, (r) => r.seconds);
    const steady = Math.min(...list.flatMap((r) => r.epoch_seconds));
    return {
      ...c,
      runs: list.length,
      best,
      rate: samples / best.seconds,
      steadyRate: shape.trainRows / steady,
      msPerBatch: (1000 * steady) / Math.ceil(shape.trainRows / 256),
    };
  });
  const torchDefault = torchSummary[0]!;
  const torchOne = torchSummary.find((t) => t.count === 1)!;
  const torchAll = torchSummary.find((t) => t.count === cores) ?? torchDefault;
  const top = flywheel[0];
  const ratio = (rate: number, against: number) => Number((rate / against).toFixed(3));

  const metricResults = [...metricBest.entries()].map(([method, seconds]) => ({
    method,
    seconds,
    rate: METRIC_POINTS / seconds,
  }));
  const metricTop = metricResults.length ? bestBy(metricResults, (m) => m.seconds) : undefined;
  // The headline is what Flywheel's runs use (store/metrics.ts); the other methods show where it stands.
  const metricFlywheel = metricResults.find((m) => m.method.name.startsWith("Flywheel's writeMetrics"));

  const lines = [
    '',
    `bench:train — MLP 20→64→64→1 (ReLU, Adam 0.001, MSE, batch 256), ${fmt(shape.trainRows)} training rows × ${EPOCHS} epochs (${fmt(shape.validationRows)} validation rows), best of ${roundsRun} interleaved round${roundsRun === 1 ? '' : 's'}`,
    `  ${'side'.padEnd(36)} ${'seconds'.padStart(8)} ${'samples/s'.padStart(10)} ${'fit rate'.padStart(10)} ${'steady'.padStart(10)} ${'ms/batch'.padStart(9)} ${'val_loss'.padStart(9)}`,
    ...flywheel.map(
      (f) =>
        `  ${`flywheel fitModel, tfjs ${f.backend}`.padEnd(36)} ${f.best.fit_seconds.toFixed(2).padStart(8)} ${fmt(f.rate).padStart(10)} ${fmt(f.loopRate).padStart(10)} ${fmt(f.steadyRate).padStart(10)} ${f.msPerBatch.toFixed(2).padStart(9)} ${f.best.val_loss.at(-1)!.toFixed(4).padStart(9)}`,
    ),
    ...torchSummary.map(
      (t) =>
        `  ${`pytorch ${torch.version}, ${t.count} thread${t.count === 1 ? '' : 's'}${t.threads === 0 ? ' (default)' : ''}`.padEnd(36)} ${t.best.seconds.toFixed(2).padStart(8)} ${fmt(t.rate).padStart(10)} ${fmt(t.rate).padStart(10)} ${fmt(t.steadyRate).padStart(10)} ${t.msPerBatch.toFixed(2).padStart(9)} ${t.best.val_loss.at(-1)!.toFixed(4).padStart(9)}`,
    ),
    `  samples/s: training rows × epochs ÷ the whole fitModel call (preprocessing from raw strings + model build + epochs); fit rate: ÷ the epochs alone;`,
    `  steady: the fastest single epoch; ms/batch from it. PyTorch's time is its epoch loop (its matrices come preprocessed).`,
    ...[...unavailable.entries()].map(([b, why]) => `  tfjs ${b}: unavailable here (${why})`),
    ...(roundsStopped ? [`  ${roundsStopped}`] : []),
    ...(top
      ? [
          `  ratio vs PyTorch (best backend, tfjs ${top.backend}, whole fitModel): ${ratio(top.rate, torchDefault.rate)} against its default ${torchDefault.count} thread${torchDefault.count === 1 ? '' : 's'} (headline; goal ≥ 0.5)` +
            (torchOne !== torchDefault
              ? `, ${ratio(top.rate, torchOne.rate)} against 1 thread`
              : ' = the 1-thread run') +
            (torchAll !== torchDefault && torchAll !== torchOne
              ? `, ${ratio(top.rate, torchAll.rate)} against ${torchAll.count} threads`
              : ''),
          `  epochs alone (fit rate ÷ PyTorch default): ${ratio(top.loopRate, torchDefault.rate)}; steady epoch ÷ steady epoch: ${ratio(top.steadyRate, torchDefault.steadyRate)}`,
          ...flywheel
            .slice(1)
            .map(
              (f) =>
                `  tfjs ${f.backend}: ${ratio(f.rate, torchDefault.rate)} × PyTorch default, ${ratio(f.rate, top.rate)} × tfjs ${top.backend}`,
            ),
        ]
      : ['  no TF.js backend trained']),
  ];
  if (diagnoses.size) {
    lines.push('', '  where a TF.js training step goes (batch 256; one diagnosis run per backend, tf.profile):');
    for (const [backend, d] of diagnoses) {
      const ops = d.ops
        .slice(0, 4)
        .map((o) => `${o.op} ×${Number(o.per_step.toFixed(1))} ${o.ms.toFixed(2)} ms`)
        .join(', ');
      lines.push(
        `  ${backend.padEnd(5)} ${d.step_ms.toFixed(2)} ms/batch in model.fit (PyTorch default: ${torchDefault.msPerBatch.toFixed(2)}); ${Math.round(d.kernels_per_step)} kernels/step, Σ kernel time ${d.kernel_ms_per_step.toFixed(2)} ms: ${ops}`,
      );
      lines.push(
        `        the step's 8 matMuls: ${d.matmuls_ms.toFixed(2)} ms as training calls them (the 5 with a transposed operand: ${d.matmuls_transposed_ms.toFixed(2)} ms), ${d.matmuls_pretransposed_ms.toFixed(2)} ms with operands transposed beforehand; one tiny op: ${d.dispatch_us.toFixed(1)} µs to dispatch`,
      );
    }
    const wasm = flywheelRuns.get('wasm')?.[0]?.wasm;
    if (wasm)
      lines.push(
        `  wasm: SIMD ${wasm.simd ? 'on' : 'off'}, threads ${wasm.threads ? 'on' : 'off (tfjs-backend-wasm disables them in Node)'}; tfjs-backend-wasm would run a matMul with a transposed operand in a scalar C++ loop; training/backend.ts transposes first to take the XNNPACK path`,
      );
  }
  if (metricTop) {
    lines.push(
      '',
      `  metric writes to run_metrics, ${fmt(METRIC_POINTS)} points (10 keys × ${fmt(METRIC_POINTS / 10)} steps), one connection, best of ${metricRounds}:`,
    );
    for (const m of metricResults)
      lines.push(
        `  ${methodLabel(m.method).padEnd(56)} ${m.seconds.toFixed(2).padStart(6)} s ${fmt(m.rate).padStart(9)} points/s`,
      );
    lines.push(
      `  Flywheel's writeMetrics: ${metricFlywheel ? fmt(metricFlywheel.rate) : '-'} points/s (goal ≥ 100,000); fastest method: ${methodLabel(metricTop.method)}, ${fmt(metricTop.rate)}`,
    );
  }
  lines.push(`  total ${elapsedS().toFixed(0)} s`, '');
  console.log(lines.join('\n'));

  const wasmDiag = diagnoses.get('wasm');
  const figures = {
    bench: 'train',
    backend: top?.backend ?? null,
    ratio_vs_pytorch: top ? ratio(top.rate, torchDefault.rate) : null,
    ratio_vs_pytorch_1thread: top ? ratio(top.rate, torchOne.rate) : null,
    ratio_vs_pytorch_all_cores: top ? ratio(top.rate, torchAll.rate) : null,
    ratio_vs_pytorch_epochs_only: top ? ratio(top.loopRate, torchDefault.rate) : null,
    ratio_basis: `tfjs ${top?.backend ?? '-'} samples/s over the whole fitModel call ÷ PyTorch epoch loop at its default ${torchDefault.count} thread(s)`,
    metric_points_per_s: metricFlywheel ? Math.round(metricFlywheel.rate) : null,
    metric_method: metricFlywheel ? methodLabel(metricFlywheel.method) : null,
    metric_points_per_s_fastest: metricTop ? Math.round(metricTop.rate) : null,
    metric_points_per_s_by_method: Object.fromEntries(
      metricResults.map((m) => [methodLabel(m.method), Math.round(m.rate)]),
    ),
    samples_per_s: Object.fromEntries(flywheel.map((f) => [f.backend, Math.round(f.rate)])),
    fit_samples_per_s: Object.fromEntries(flywheel.map((f) => [f.backend, Math.round(f.loopRate)])),
    pytorch_samples_per_s: Object.fromEntries(
      torchSummary.map((t) => [
        `${t.count}_thread${t.count === 1 ? '' : 's'}${t.threads === 0 ? '_default' : ''}`,
        Math.round(t.rate),
      ]),
    ),
    pytorch_default_threads: torchDefault.count,
    unavailable_backends: [...unavailable.keys()],
    wasm_ms_per_batch: wasmDiag ? Number(wasmDiag.step_ms.toFixed(3)) : null,
    wasm_kernels_per_step: wasmDiag ? Math.round(wasmDiag.kernels_per_step) : null,
    pytorch_ms_per_batch: Number(torchDefault.msPerBatch.toFixed(3)),
    rows: ROWS,
    train_rows: shape.trainRows,
    epochs: EPOCHS,
    batch_size: 256,
    rounds: roundsRun,
    metric_points: METRIC_POINTS,
    torch_version: torch.version,
    tfjs_version: flywheel[0]?.best.tf_version ?? null,
    cores,
    total_s: Number(elapsedS().toFixed(1)),
  };
  console.log(JSON.stringify(figures));
} finally {
  await cleanup();
}
