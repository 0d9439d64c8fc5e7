/**
 * bench:train-python — what Flywheel's Python training step costs: the same PyTorch training function run (a) as the
 * `trainPython` activity of a real pipeline on the local stack and (b) by a plain Python script, on the same machine in
 * the same run, interleaved.
 *
 * The function: bench/python/demand_fit.py, i.e. examples/demand-torch/train.py's `fit` (an MLP on price, promotion
 * and calendar features; a checkpoint and a metrics point per epoch; ONNX export at the end) after
 * `torch.set_num_threads(BENCH_THREADS)` — the same threads on both sides. Data: the demo's retail demand generator,
 * BENCH_STORES × BENCH_ITEMS × BENCH_DAYS rows (20 × 20 × 730 = 292,000 by default; 210,240 training rows). Params:
 * hidden BENCH_HIDDEN (256), batch BENCH_BATCH (512), BENCH_EPOCHS (64) epochs, lr 0.003, seed 42: about 65 s of
 * training on the 2-core reference machine.
 *
 * Sides:
 * - flywheel: `pipelineWorkflow` with `training.runner: python` on this process's own main worker and task queues, an
 *   API server in this process (`startServer`) with a write token issued for the run (revoked at the end), and a
 *   Python worker (`scripts/pythonWorker.ts`, sdk/python's flywheel-worker, code root bench/python) polling the
 *   bench's Python queue. Timed: the `trainPython` activity from its ActivityTaskScheduled to its
 *   ActivityTaskCompleted event (Temporal's clock): the worker picking the task up, the child process starting and
 *   importing torch, downloading the dataset's CSV from the API (the worker's dataset cache is emptied before every
 *   run, so each run downloads) and the split, parsing it, training, logging each epoch's metrics, uploading each
 *   checkpoint, exporting and uploading the ONNX model. The stages around it (ingest, validate, the run's preparation,
 *   taking in the model, evaluation; deploy is off) are reported, not compared.
 * - plain: bench/python/train_plain.py with the worker venv's python (the same interpreter, torch and numpy): pandas
 *   reads the same CSV, a seeded split gives the same numbers of training / validation / holdout rows, and the same
 *   `fit` runs with a stand-in context (metrics in memory, checkpoints `torch.save`d to a local file, the model written
 *   locally). Timed: the whole process, spawn to exit (interpreter start and torch import included, as they are in
 *   the activity).
 *
 * Runs: BENCH_REPEATS (2) rounds, alternating the order (flywheel then plain, then plain then flywheel); each side's
 * figure is its best (fastest) run; every run is listed. A round that would pass BENCH_BUDGET_S (540) is skipped.
 * The machine's load average and busy share over each run are reported: other work on the machine skews both sides,
 * and interleaving spreads it evenly. About 6 minutes with the defaults once the worker's venv exists (its first
 * creation takes a few minutes more). A quick run: BENCH_EPOCHS=6 BENCH_REPEATS=1 npm run bench:train-python.
 *
 * Environment: BENCH_STORES, BENCH_ITEMS, BENCH_DAYS, BENCH_EPOCHS, BENCH_HIDDEN, BENCH_BATCH, BENCH_THREADS (1),
 * BENCH_REPEATS, BENCH_BUDGET_S.
 *
 * Last line of stdout: one JSON object with `flywheel_train_s`, `plain_python_s` and `overhead_ratio` (= their
 * quotient; goal ≤ 1.05).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { parsePipelineConfig } from '../config/pipeline';
import { loadConfig, PROJECT_ROOT } from '../config/env';
import { generateDemand } from '../examples/demand/generate';
import { runMetrics } from '../schema/runs';
import { ensurePythonWorkerEnv, startPythonWorker, type PythonWorkerHandle } from '../scripts/pythonWorker';
import { startServer } from '../server/start';
import { issueToken, revokeToken } from '../store/tokens';
import { connectServices, createMainWorker, type Services } from '../workers/wiring';
import type { pipelineWorkflow, PipelineInput } from '../workflows/pipeline';
import { budgetedRounds, intFromEnv, lastJson, runProcess } from './peer';
import { busyPct, machineTicks, statOf } from './processes';

Runtime.install({ logger: new DefaultLogger('WARN') });

const STORES = Math.max(1, intFromEnv('BENCH_STORES', 20));
const ITEMS = Math.max(1, intFromEnv('BENCH_ITEMS', 20));
const DAYS = Math.max(7, intFromEnv('BENCH_DAYS', 730));
const EPOCHS = Math.max(1, intFromEnv('BENCH_EPOCHS', 64));
const HIDDEN = Math.max(1, intFromEnv('BENCH_HIDDEN', 256));
const BATCH = Math.max(1, intFromEnv('BENCH_BATCH', 512));
const THREADS = Math.max(1, intFromEnv('BENCH_THREADS', 1));
const REPEATS = Math.max(1, intFromEnv('BENCH_REPEATS', 2));
const BUDGET_S = intFromEnv('BENCH_BUDGET_S', 540);
const NAME = 'bench-train-python';
const CODE_ROOT = join(PROJECT_ROOT, 'bench', 'python');
const benchStarted = performance.now();
const elapsedS = () => (performance.now() - benchStarted) / 1000;
const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;

const params = { epochs: EPOCHS, hidden: HIDDEN, lr: 0.003, batch_size: BATCH, threads: THREADS };
const features = { numeric: ['price', 'promo', 'is_holiday', 'day_of_week', 'month'], categorical: [] as string[] };

// ---------------------------------------------------------------------------------------------------------------
// Cleanup: everything the bench started stops, also on failure or SIGINT / SIGTERM.

let tempDir = '';
let services: Services | undefined;
let mainWorker: { worker: Worker; running: Promise<void> } | undefined;
let server: { url: string; close(): Promise<void> } | undefined;
let pythonWorker: PythonWorkerHandle | undefined;
let tokenId: number | undefined;
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await pythonWorker?.stop(15_000).catch(() => undefined);
  if (services && tokenId !== undefined) await revokeToken(services.db, tokenId).catch(() => undefined);
  await server?.close().catch(() => undefined);
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
// The two sides

interface Timing {
  seconds: number;
  /** CPU seconds of the side's Python processes (less distorted by other load than wall time). */
  cpu_s: number;
  load_avg_1m: number;
  machine_busy_pct: number;
}
interface FlywheelRun extends Timing {
  /** trainPython: scheduled → started (the worker picking it up) and started → completed. */
  pickup_s: number;
  run_s: number;
  pipeline_s: number;
  stages_s: Record<string, number>;
  epochs_logged: number;
  run_id: string;
  /** The last epoch's loss and val_loss. */
  metrics: Record<string, number>;
  /** The holdout evaluation Flywheel ran on the ONNX model. */
  evaluation: Record<string, number>;
}
interface PlainOutput {
  import_s: number;
  load_s: number;
  fit_s: number;
  rows: number;
  train_rows: number;
  epochs_logged: number;
  metrics: Record<string, number>;
  threads: number;
  torch: string;
}
interface PlainRun extends Timing, PlainOutput {}

type Ts = { seconds?: number | { toNumber(): number } | null; nanos?: number | null } | null | undefined;
const tsMs = (ts: Ts) =>
  ts
    ? Number(typeof ts.seconds === 'object' ? ts.seconds?.toNumber() : (ts.seconds ?? 0)) * 1000 + (ts.nanos ?? 0) / 1e6
    : NaN;

/** Runs `work`: its wall time, the CPU seconds `cpu()` counts over it, the machine's load and busy share. */
async function timed<T>(work: () => Promise<T>, cpu: () => number): Promise<{ value: T } & Timing> {
  const m0 = machineTicks();
  const load = loadavg()[0]!;
  const cpu0 = cpu();
  const started = performance.now();
  const value = await work();
  const seconds = (performance.now() - started) / 1000;
  return {
    value,
    seconds,
    cpu_s: cpu() - cpu0,
    load_avg_1m: Math.max(load, loadavg()[0]!),
    machine_busy_pct: busyPct(m0, machineTicks()),
  };
}

/** CPU seconds of a process and of its children it has reaped (the worker's training children, once they ended). */
function cpuWithChildren(pid: number | undefined): number {
  const stat = pid ? statOf(pid) : undefined;
  return stat ? stat.self + stat.children : 0;
}

async function runFlywheel(
  svc: Services,
  input: PipelineInput,
  mainQueue: string,
  cacheDir: string,
  workerPid: number | undefined,
): Promise<FlywheelRun> {
  // Every run downloads the dataset, as a worker seeing it for the first time does.
  await rm(join(cacheDir, 'datasets'), { recursive: true, force: true });
  const workflowId = `${NAME}-${tag}-${Math.random().toString(36).slice(2, 8)}`;
  const { value: result, ...timing } = await timed(
    async () => {
      const handle = await svc.client.workflow.start<typeof pipelineWorkflow>('pipelineWorkflow', {
        workflowId,
        taskQueue: mainQueue,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      });
      return handle.result();
    },
    () => cpuWithChildren(workerPid),
  );
  const history = await svc.client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const stages: Record<string, number> = {};
  let trainPython: { scheduled: number; started: number; completed: number } | undefined;
  for (const event of events) {
    const done = event.activityTaskCompletedEventAttributes;
    if (!done) continue;
    const scheduled = byId.get(Number(done.scheduledEventId));
    const started = byId.get(Number(done.startedEventId));
    const name = scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
    const times = {
      scheduled: tsMs(scheduled?.eventTime),
      started: tsMs(started?.eventTime),
      completed: tsMs(event.eventTime),
    };
    stages[name] = Number(((stages[name] ?? 0) + (times.completed - times.scheduled) / 1000).toFixed(2));
    if (name === 'trainPython') trainPython = times;
  }
  if (!trainPython) throw new Error(`workflow ${workflowId}: no completed trainPython activity in its history`);
  // The epochs the run logged, and the last epoch's figures (the plain side reports the same ones).
  const points = await svc.db
    .select()
    .from(runMetrics)
    .where(and(eq(runMetrics.runId, result.runId), inArray(runMetrics.key, ['loss', 'val_loss'])))
    .orderBy(asc(runMetrics.step));
  const final = Object.fromEntries(points.map((p) => [p.key, p.value]));
  return {
    ...timing,
    seconds: (trainPython.completed - trainPython.scheduled) / 1000,
    pickup_s: (trainPython.started - trainPython.scheduled) / 1000,
    run_s: (trainPython.completed - trainPython.started) / 1000,
    pipeline_s: timing.seconds,
    stages_s: stages,
    epochs_logged: points.filter((p) => p.key === 'val_loss').length,
    run_id: result.runId,
    metrics: final,
    evaluation: result.metrics,
  };
}

async function runPlain(python: string, csv: string, specFile: string, outDir: string): Promise<PlainRun> {
  const { value, ...timing } = await timed(
    () => runProcess(python, [join(CODE_ROOT, 'train_plain.py'), csv, specFile, outDir]),
    () => statOf(process.pid)?.children ?? 0,
  );
  return { ...timing, seconds: value.seconds, ...lastJson<PlainOutput>(value.stdout, 'train_plain.py', value.stderr) };
}

// ---------------------------------------------------------------------------------------------------------------
// Main

const fixed = (x: number, digits = 2) => Number(x.toFixed(digits));

try {
  const settings = loadConfig();
  const python = await ensurePythonWorkerEnv();
  const probe = await runProcess(python, ['-c', 'import torch, numpy; print(torch.__version__, numpy.__version__)']);
  const [torchVersion, numpyVersion] = probe.stdout.trim().split(/\s+/);

  tempDir = await mkdtemp(join(tmpdir(), 'flywheel-bench-train-python-'));
  const csv = join(tempDir, 'demand.csv');
  await generateDemand(csv, { stores: STORES, items: ITEMS, days: DAYS });
  const rows = STORES * ITEMS * DAYS;
  // The pipeline's local source is read only from allowed folders; this process's workers inherit it.
  process.env.FLYWHEEL_DATA_ROOTS = [process.env.FLYWHEEL_DATA_ROOTS, tempDir].filter(Boolean).join(':');

  const svc = await connectServices(settings);
  services = svc;
  const queues = { main: `${NAME}-${tag}-main`, trainPythonCpu: `${NAME}-${tag}-python-cpu` };
  const worker = await createMainWorker(svc, queues.main);
  mainWorker = { worker, running: worker.run() };
  server = await startServer({ port: 0 });
  const issued = await issueToken(svc.db, `${NAME}-${tag}`, 'write');
  tokenId = issued.record.id;
  const pyCache = join(tempDir, 'python-cache');
  pythonWorker = await startPythonWorker({
    python,
    url: server.url,
    token: issued.token,
    queue: queues.trainPythonCpu,
    paths: [CODE_ROOT],
    env: { FLYWHEEL_CACHE_DIR: pyCache },
    log: () => undefined,
  });
  await pythonWorker.ready;

  const config = parsePipelineConfig({
    name: NAME,
    model: NAME,
    data: { dataset: NAME, source: csv },
    training: {
      runner: 'python',
      entrypoint: 'demand_fit.py:fit',
      task: 'regression',
      target: 'units_sold',
      features,
      params,
      seed: 42,
    },
    // A bench run with other sizes stores another version of the dataset: not a drift to refuse.
    validation: { drift: { enabled: false } },
    evaluation: { gates: [] },
    deploy: { enabled: false },
  });
  const input: PipelineInput = {
    config,
    trigger: { kind: 'cli', reason: 'bench:train-python' },
    queues: { trainPythonCpu: queues.trainPythonCpu },
  };
  const specFile = join(tempDir, 'plain-spec.json');
  writeFileSync(
    specFile,
    JSON.stringify({
      params,
      seed: config.training.seed,
      task: 'regression',
      target: 'units_sold',
      features,
      holdout_fraction: config.training.holdoutFraction,
    }),
  );

  const cores = availableParallelism();
  console.error(
    `bench:train-python — ${rows.toLocaleString('en-US')} rows, MLP 5 → ${HIDDEN} → 1, batch ${BATCH}, ${EPOCHS} epochs, ` +
      `torch ${torchVersion} with ${THREADS} thread${THREADS === 1 ? '' : 's'}; ${cores} cores, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );

  const runs: { flywheel: FlywheelRun[]; plain: PlainRun[] } = { flywheel: [], plain: [] };
  const { rounds, stopped } = await budgetedRounds(REPEATS, BUDGET_S, elapsedS, async (round) => {
    const order = round % 2 === 0 ? (['flywheel', 'plain'] as const) : (['plain', 'flywheel'] as const);
    for (const side of order) {
      if (side === 'flywheel') {
        const run = await runFlywheel(svc, input, queues.main, pyCache, pythonWorker?.child.pid);
        runs.flywheel.push(run);
        console.error(
          `  round ${round + 1} flywheel  trainPython ${run.seconds.toFixed(1)} s (pickup ${run.pickup_s.toFixed(2)} s), ` +
            `${run.epochs_logged} epochs logged; whole pipeline ${run.pipeline_s.toFixed(1)} s; Python CPU ` +
            `${run.cpu_s.toFixed(1)} s; load ${run.load_avg_1m.toFixed(2)}, ` +
            `machine ${run.machine_busy_pct.toFixed(0)} % busy`,
        );
      } else {
        const run = await runPlain(python, csv, specFile, join(tempDir, `plain-${round}`));
        runs.plain.push(run);
        console.error(
          `  round ${round + 1} plain     process ${run.seconds.toFixed(1)} s (import ${run.import_s.toFixed(1)}, ` +
            `data ${run.load_s.toFixed(1)}, fit ${run.fit_s.toFixed(1)} s), ${run.epochs_logged} epochs; ` +
            `CPU ${run.cpu_s.toFixed(1)} s; ` +
            `load ${run.load_avg_1m.toFixed(2)}, machine ${run.machine_busy_pct.toFixed(0)} % busy`,
        );
      }
    }
  });

  const best = <T extends Timing>(list: T[]) => list.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const fly = best(runs.flywheel);
  const plain = best(runs.plain);
  if (fly.epochs_logged !== EPOCHS || plain.epochs_logged !== EPOCHS)
    throw new Error(
      `expected ${EPOCHS} epochs on both sides, flywheel logged ${fly.epochs_logged}, plain ${plain.epochs_logged}`,
    );
  const ratio = fly.seconds / plain.seconds;
  const perEpochMs = (1000 * (fly.seconds - plain.seconds)) / EPOCHS;
  const leastCpu = (list: Timing[]) => Math.min(...list.map((r) => r.cpu_s));
  const cpuRatio = leastCpu(runs.flywheel) / leastCpu(runs.plain);
  console.log(
    [
      '',
      `bench:train-python — the same PyTorch fit (${EPOCHS} epochs, ${plain.train_rows.toLocaleString('en-US')} training rows), best of ${rounds}`,
      `  flywheel trainPython activity  ${fly.seconds.toFixed(1)} s   (runs ${runs.flywheel.map((r) => r.seconds.toFixed(1)).join(', ')})`,
      `  plain python script            ${plain.seconds.toFixed(1)} s   (runs ${runs.plain.map((r) => r.seconds.toFixed(1)).join(', ')}; fit alone ${plain.fit_s.toFixed(1)} s)`,
      `  overhead ratio ${ratio.toFixed(3)} (goal ≤ 1.05): ${(fly.seconds - plain.seconds).toFixed(1)} s, ${perEpochMs.toFixed(0)} ms per epoch`,
      `  CPU of the Python processes: flywheel (worker + training process) ${leastCpu(runs.flywheel).toFixed(1)} s, ` +
        `plain ${leastCpu(runs.plain).toFixed(1)} s → ratio ${cpuRatio.toFixed(3)}`,
      `  the whole pipeline around it: ${fly.pipeline_s.toFixed(1)} s (${Object.entries(fly.stages_s)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(', ')})`,
      ...(stopped ? [`  ${stopped}`] : []),
      `  total ${elapsedS().toFixed(0)} s`,
      '',
    ].join('\n'),
  );
  const figures = {
    bench: 'train-python',
    flywheel_train_s: fixed(fly.seconds),
    plain_python_s: fixed(plain.seconds),
    overhead_ratio: fixed(ratio, 3),
    statistic: 'best',
    overhead_ms_per_epoch: fixed(perEpochMs, 0),
    flywheel_runs_s: runs.flywheel.map((r) => fixed(r.seconds)),
    plain_runs_s: runs.plain.map((r) => fixed(r.seconds)),
    flywheel_python_cpu_s: fixed(leastCpu(runs.flywheel)),
    plain_cpu_s: fixed(leastCpu(runs.plain)),
    cpu_ratio: fixed(cpuRatio, 3),
    flywheel_pickup_s: fixed(fly.pickup_s),
    flywheel_pipeline_s: fixed(fly.pipeline_s),
    flywheel_stages_s: fly.stages_s,
    plain_import_s: fixed(plain.import_s),
    plain_data_s: fixed(plain.load_s),
    plain_fit_s: fixed(plain.fit_s),
    flywheel_final_epoch: fly.metrics,
    plain_final_epoch: plain.metrics,
    flywheel_holdout_r2: fly.evaluation.r2 === undefined ? null : fixed(fly.evaluation.r2, 3),
    flywheel_run_id: fly.run_id,
    rows,
    train_rows: plain.train_rows,
    epochs: EPOCHS,
    hidden: HIDDEN,
    batch: BATCH,
    torch_threads: THREADS,
    torch: torchVersion,
    numpy: numpyVersion,
    rounds,
    cores,
    load_avg_1m: {
      flywheel: runs.flywheel.map((r) => fixed(r.load_avg_1m)),
      plain: runs.plain.map((r) => fixed(r.load_avg_1m)),
    },
    machine_busy_pct: {
      flywheel: runs.flywheel.map((r) => fixed(r.machine_busy_pct, 0)),
      plain: runs.plain.map((r) => fixed(r.machine_busy_pct, 0)),
    },
    total_s: fixed(elapsedS(), 1),
  };
  await cleanup();
  console.log(JSON.stringify(figures));
} finally {
  await cleanup();
}
process.exit(0);
