/**
 * bench:scale — does Flywheel scale out by adding workers? On the cluster topology (Temporal's four services on
 * Postgres, scripts/cluster.ts) the same batch of small real pipelines runs with 1, 2 and 4 worker processes
 * (workers/all.ts: main + CPU training), BENCH_ROUNDS (2) times each, the rounds interleaved and pooled per count,
 * measuring pipelines per minute, queue wait p95 per stage (from the histories) and which processes used the CPU. Then
 * one pipeline at a time on the cluster and on the dev server: the per-stage scheduling overhead of the cluster
 * against the dev server. Last, the ceiling: the same kind of training outside Flywheel in one process and in two at
 * once, and plain scalar loops the same way: what two processes can gain on this machine at all. `scaling_limits`
 * splits scaling_1_to_2 into the CPU the workers got and what each core of theirs did (scalingLimits). Last line: one
 * JSON object (`scaling_1_to_2`, `pipelines_per_min`, `ceiling_1_to_2`, …).
 */
import { readdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { parsePipelineConfig, type PipelineConfig } from '../config/pipeline';
import { loadConfig, PROJECT_ROOT, readStackState } from '../config/env';
import { generateDemand } from '../examples/demand/generate';
import { startCluster, stopCluster } from '../scripts/cluster';
import { startWorker, type WorkerProcess } from '../scripts/topology';
import { historySteps } from '../server/api/timelines';
import type { PipelineInput } from '../workflows/pipeline';
import { lastJson, runProcess } from './peer';
import { machineTicks, statOf } from './processes';

const WORKER_COUNTS = (process.env.BENCH_WORKERS ?? '1,2,4').split(',').map(Number);
const BATCH = Number(process.env.BENCH_PIPELINES ?? 12);
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 3);
// Each worker count's batch runs this many times, interleaved with the others'.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
// Enough training that a pipeline is mostly work a worker does (about 2 s of one core), not round trips.
const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 30);
// The ceiling's training rows: about as many as a pipeline trains on.
const CEILING_ROWS = Number(process.env.BENCH_CEILING_ROWS ?? 4_000);

const config = loadConfig();
const workDir = await mkdtemp(join(tmpdir(), 'flywheel-bench-scale-'));
const source = join(workDir, 'demand.csv');
await generateDemand(source, { stores: 4, items: 8, days: 120 });
let serial = 0;

function pipeline(): PipelineConfig {
  const name = `scale-${Date.now().toString(36)}-${serial++}`;
  return parsePipelineConfig({
    name,
    model: `${name}-model`,
    data: { dataset: `${name}-data`, source },
    training: {
      task: 'regression',
      target: 'units_sold',
      features: { numeric: ['price', 'promo', 'is_holiday'], categorical: ['store_id', 'item_id', 'day_of_week'] },
      model: { type: 'mlp', hiddenUnits: [16] },
      epochs: EPOCHS,
      batchSize: 64,
      learningRate: 0.01,
    },
    evaluation: { gates: [{ metric: 'r2', min: 0 }] },
    deploy: { enabled: false },
  });
}

/** utime + stime of a process and all its descendants, in seconds (0 when gone): Postgres works in its children. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  const stats = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map((entry) => {
      const stat = statOf(entry);
      return stat && { pid: Number(entry), ppid: stat.ppid, cpu: stat.self };
    })
    .filter((stat) => stat !== undefined);
  const tree = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const stat of stats)
      if (!tree.has(stat.pid) && tree.has(stat.ppid)) {
        tree.add(stat.pid);
        grew = true;
      }
  }
  return stats.filter((stat) => tree.has(stat.pid)).reduce((sum, stat) => sum + stat.cpu, 0);
}

/**
 * The most two processes gain over one on this machine for this kind of work, measured, not assumed: TF.js (wasm)
 * training of an MLP in bench/trainChild.ts, outside Flywheel (no Temporal, Postgres or S3), timed alone and then two
 * at once (the fit only, not the process start). Two busy vCPUs of a VM seldom give 2×: their host threads may share
 * cores, caches and memory bandwidth.
 */
async function trainingCeiling(): Promise<{ aloneS: number; pairS: number; ratio: number }> {
  const fit = async () => {
    const { stdout } = await runProcess(process.execPath, [
      '--import',
      'tsx',
      join(PROJECT_ROOT, 'bench', 'trainChild.ts'),
      'wasm',
      String(CEILING_ROWS),
      String(EPOCHS),
    ]);
    return lastJson<{ fit_seconds: number }>(stdout, 'bench/trainChild.ts').fit_seconds;
  };
  const alone: number[] = [];
  const pair: number[] = [];
  for (let round = 0; round < 2; round++) {
    alone.push(await fit());
    pair.push(...(await Promise.all([fit(), fit()])));
  }
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const aloneS = mean(alone);
  const pairS = mean(pair);
  return { aloneS, pairS, ratio: (2 * aloneS) / pairS };
}

/** The same for plain scalar JavaScript: integer loops done in 4 s, one process alone, then two at once. */
async function scalarCeiling(): Promise<number> {
  const loop =
    'const end = Date.now() + 4000; let n = 0, x = 0;' +
    'while (Date.now() < end) { for (let i = 0; i < 1e5; i++) x = (x * 1103515245 + 12345) | 0; n++; }' +
    'console.log(n);';
  const count = async () => Number((await runProcess(process.execPath, ['-e', loop])).stdout.trim());
  const alone = await count();
  const [a, b] = await Promise.all([count(), count()]);
  return (a! + b!) / alone;
}

type ScalingRow = { pipelinesPerMin: number; cpuCores: { workers: number; machine: number } };

/**
 * What `scaling_1_to_2` is made of: how much more CPU two workers got than one (`worker_cores_1_to_2`), the most they
 * could have got on this machine beside the rest of its work at the time — the cluster, Postgres, MinIO, this bench —
 * (`worker_cores_ceiling_1_to_2`), and how many pipelines each core of theirs finished, two against one
 * (`pipelines_per_worker_core_1_to_2`, below 1 where two busy workers slow each other down). The first times the third
 * is scaling_1_to_2.
 */
function scalingLimits(one: ScalingRow | undefined, two: ScalingRow | undefined) {
  if (!one || !two || one.cpuCores.workers <= 0 || two.cpuCores.workers <= 0) return null;
  const rest = two.cpuCores.machine - two.cpuCores.workers;
  const round = (value: number) => Number(value.toFixed(2));
  return {
    worker_cores_1_to_2: round(two.cpuCores.workers / one.cpuCores.workers),
    worker_cores_ceiling_1_to_2: round((cpus().length - rest) / one.cpuCores.workers),
    pipelines_per_worker_core_1_to_2: round(
      two.pipelinesPerMin / two.cpuCores.workers / (one.pipelinesPerMin / one.cpuCores.workers),
    ),
  };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface StageTiming {
  type: string;
  queueWaitMs: number;
  runMs: number;
}

/** Each completed activity's schedule → start (queue wait) and start → close (run), from the workflow's history. */
async function stageTimings(client: Client, workflowId: string): Promise<{ wallMs: number; stages: StageTiming[] }> {
  const handle = client.workflow.getHandle(workflowId);
  const [steps, description] = await Promise.all([historySteps(client, workflowId), handle.describe()]);
  const stages = steps
    .filter((step) => step.kind === 'activity' && step.status === 'completed')
    .map((step) => ({
      type: step.name,
      queueWaitMs: step.startedAt! - step.scheduledAt!,
      runMs: step.closedAt! - step.startedAt!,
    }));
  return { wallMs: description.closeTime!.getTime() - description.startTime.getTime(), stages };
}

async function runPipelines(client: Client, queue: string, count: number): Promise<string[]> {
  const handles = await Promise.all(
    Array.from({ length: count }, async () => {
      const input: PipelineInput = {
        config: pipeline(),
        trigger: { kind: 'test' },
        queues: { trainCpu: `${queue}-train-cpu`, trainGpu: `${queue}-train-gpu` },
      };
      return client.workflow.start('pipelineWorkflow', {
        workflowId: `${input.config.name}-bench`,
        taskQueue: queue,
        args: [input],
      });
    }),
  );
  await Promise.all(handles.map((handle) => handle.result()));
  return handles.map((handle) => handle.workflowId);
}

function workerEnv(address: string, queue: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    FLYWHEEL_TASK_QUEUE: queue,
    FLYWHEEL_TRAIN_CPU_QUEUE: `${queue}-train-cpu`,
    FLYWHEEL_TRAIN_GPU_QUEUE: `${queue}-train-gpu`,
    FLYWHEEL_DATA_ROOTS: workDir,
  };
}

async function withWorkers<T>(
  count: number,
  address: string,
  queue: string,
  work: (workers: WorkerProcess[]) => Promise<T>,
): Promise<T> {
  const workers = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startWorker('all', { env: workerEnv(address, queue), logFile: join(workDir, `${queue}-worker-${i + 1}.log`) }),
    ),
  );
  try {
    return await work(workers);
  } finally {
    await Promise.all(
      workers.map(async (worker) => {
        worker.child.kill('SIGTERM');
        await worker.exited;
      }),
    );
  }
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const cluster = await startCluster({
  dir: join(config.stateDir, 'bench-cluster'),
  databaseUrl: config.databaseUrl,
  databasePrefix: `${new URL(config.databaseUrl).pathname.slice(1)}_bench_temporal`,
  cacheDir: config.cacheDir,
  log,
});
const connection = await Connection.connect({ address: cluster.address });
const client = new Client({ connection, namespace: 'default' });
const stack = readStackState(config.stateDir);
const postgresPid = stack.embeddedPostgres?.pid;
const minioPid = stack.minio?.pid;

/** One batch on `workers` worker processes: what it took, each stage's waits and run times, and the CPU used. */
interface Phase {
  workers: number;
  seconds: number;
  waits: Map<string, number[]>;
  runTimes: Map<string, number[]>;
  /**
   * CPU seconds over the batch: the workers, the cluster's services, Postgres, MinIO, and the whole machine (every
   * process: these, this bench and anything else)
   */
  cpu: { workers: number; temporal: number; postgres: number; minio: number; machine: number };
}

/** CPU seconds so far of the workers, the cluster, Postgres and MinIO. */
function cpuNow(workers: WorkerProcess[]): Omit<Phase['cpu'], 'machine'> {
  return {
    workers: workers.reduce((sum, w) => sum + cpuSeconds(w.child.pid), 0),
    temporal: Object.values(cluster.pids).reduce((sum, pid) => sum + cpuSeconds(pid), 0),
    postgres: cpuSeconds(postgresPid),
    minio: cpuSeconds(minioPid),
  };
}

async function runPhase(count: number): Promise<Phase> {
  const queue = `scale-${count}-${Date.now().toString(36)}`;
  return withWorkers(count, cluster.address, queue, async (workers) => {
    // One pipeline first so every worker's bundle is built before the clock starts.
    await runPipelines(client, queue, count);
    const ticksBefore = machineTicks();
    const before = cpuNow(workers);
    const started = performance.now();
    const ids = await runPipelines(client, queue, BATCH);
    const seconds = (performance.now() - started) / 1000;
    const ticksAfter = machineTicks();
    const after = cpuNow(workers);
    const waits = new Map<string, number[]>();
    const runTimes = new Map<string, number[]>();
    for (const { stages } of await Promise.all(ids.map((id) => stageTimings(client, id))))
      for (const stage of stages) {
        waits.set(stage.type, [...(waits.get(stage.type) ?? []), stage.queueWaitMs]);
        runTimes.set(stage.type, [...(runTimes.get(stage.type) ?? []), stage.runMs]);
      }
    const machine =
      (cpus().length * (ticksAfter.busy - ticksBefore.busy) * seconds) / (ticksAfter.total - ticksBefore.total);
    return {
      workers: count,
      seconds,
      waits,
      runTimes,
      cpu: {
        workers: after.workers - before.workers,
        temporal: after.temporal - before.temporal,
        postgres: after.postgres - before.postgres,
        minio: after.minio - before.minio,
        machine,
      },
    };
  });
}

/** The phases of one worker count pooled: pipelines per minute over all their time, p95 / p50 over all their stages. */
function pooled(phases: Phase[]) {
  const seconds = phases.reduce((sum, phase) => sum + phase.seconds, 0);
  const merge = (pick: (phase: Phase) => Map<string, number[]>) => {
    const merged = new Map<string, number[]>();
    for (const phase of phases)
      for (const [type, values] of pick(phase)) merged.set(type, [...(merged.get(type) ?? []), ...values]);
    return merged;
  };
  const cores = (key: keyof Phase['cpu']) =>
    Number((phases.reduce((sum, phase) => sum + phase.cpu[key], 0) / seconds).toFixed(2));
  return {
    workers: phases[0]!.workers,
    pipelines: BATCH * phases.length,
    seconds: Number(seconds.toFixed(1)),
    pipelinesPerMin: Number((((BATCH * phases.length) / seconds) * 60).toFixed(2)),
    perRound: phases.map((phase) => Number(((BATCH / phase.seconds) * 60).toFixed(2))),
    queueWaitP95Ms: Object.fromEntries([...merge((p) => p.waits)].map(([type, v]) => [type, percentile(v, 95)])),
    runP50Ms: Object.fromEntries([...merge((p) => p.runTimes)].map(([type, v]) => [type, percentile(v, 50)])),
    cpuCores: {
      workers: cores('workers'),
      temporal: cores('temporal'),
      postgres: postgresPid ? cores('postgres') : null,
      minio: minioPid ? cores('minio') : null,
      machine: cores('machine'),
    },
  };
}

try {
  // Rounds alternate the order (1, 2, 4, then 4, 2, 1, …) so that the host's load drifting over the run weighs on
  // every worker count alike.
  const phases: Phase[] = [];
  for (let round = 0; round < ROUNDS; round++)
    for (const count of round % 2 === 0 ? WORKER_COUNTS : [...WORKER_COUNTS].reverse()) {
      const phase = await runPhase(count);
      phases.push(phase);
      log(
        `round ${round + 1}, ${count} worker(s): ${((BATCH / phase.seconds) * 60).toFixed(2)} pipelines/min, ` +
          `workers ${(phase.cpu.workers / phase.seconds).toFixed(2)} cores, machine ${(phase.cpu.machine / phase.seconds).toFixed(2)}`,
      );
    }
  const scaling = WORKER_COUNTS.map((count) => pooled(phases.filter((phase) => phase.workers === count)));
  for (const row of scaling) log(`${row.workers} worker(s), ${ROUNDS} round(s) pooled: ${JSON.stringify(row)}`);

  // Per-stage overhead (wall time not spent running activities, per activity), one pipeline at a time.
  const overhead = async (target: Client, address: string, label: string) => {
    const queue = `scale-seq-${label}-${Date.now().toString(36)}`;
    return withWorkers(1, address, queue, async () => {
      await runPipelines(target, queue, 1);
      const perStage: number[] = [];
      for (let i = 0; i < SEQUENTIAL; i++) {
        const [id] = await runPipelines(target, queue, 1);
        const { wallMs, stages } = await stageTimings(target, id!);
        perStage.push((wallMs - stages.reduce((sum, s) => sum + s.runMs, 0)) / stages.length);
      }
      const mean = perStage.reduce((a, b) => a + b, 0) / perStage.length;
      log(`${label}: ${mean.toFixed(1)} ms of scheduling per stage`);
      return mean;
    });
  };
  const devConnection = await Connection.connect({ address: config.temporal.address });
  const devClient = new Client({ connection: devConnection, namespace: config.temporal.namespace });
  const clusterOverhead = await overhead(client, cluster.address, 'cluster');
  const devOverhead = await overhead(devClient, config.temporal.address, 'dev');
  await devConnection.close();

  const ceiling = await trainingCeiling();
  const scalar = await scalarCeiling();
  log(
    `the same kind of training outside Flywheel: ${ceiling.aloneS.toFixed(2)} s alone, ${ceiling.pairS.toFixed(2)} s each when two run at once → ${ceiling.ratio.toFixed(2)}× from 1 to 2 processes; plain scalar loops ${scalar.toFixed(2)}×`,
  );

  const ppm = Object.fromEntries(scaling.map((s) => [String(s.workers), s.pipelinesPerMin]));
  const one = scaling.find((s) => s.workers === 1)?.pipelinesPerMin;
  const two = scaling.find((s) => s.workers === 2)?.pipelinesPerMin;
  const limits = scalingLimits(
    scaling.find((s) => s.workers === 1),
    scaling.find((s) => s.workers === 2),
  );
  if (limits)
    log(
      `from 1 to 2 workers: the workers' CPU grew ${limits.worker_cores_1_to_2}× (at most ${limits.worker_cores_ceiling_1_to_2}× beside the rest of the machine's work) and each core of theirs finished ${limits.pipelines_per_worker_core_1_to_2}× as many pipelines`,
    );
  console.log(
    JSON.stringify({
      bench: 'scale',
      topology: 'temporal cluster (frontend, history, matching, worker) on Postgres',
      cpu_cores: cpus().length,
      pipelines_per_batch: BATCH,
      pipelines_per_min: ppm,
      scaling_1_to_2: one && two ? Number((two / one).toFixed(2)) : null,
      scaling_1_to_4:
        one && scaling.find((s) => s.workers === 4)
          ? Number((scaling.find((s) => s.workers === 4)!.pipelinesPerMin / one).toFixed(2))
          : null,
      queue_wait_p95_ms: Object.fromEntries(scaling.map((s) => [String(s.workers), s.queueWaitP95Ms])),
      stage_run_p50_ms: Object.fromEntries(scaling.map((s) => [String(s.workers), s.runP50Ms])),
      cpu_cores_used: Object.fromEntries(scaling.map((s) => [String(s.workers), s.cpuCores])),
      scaling_limits: limits,
      ceiling_1_to_2: Number(ceiling.ratio.toFixed(2)),
      ceiling_scalar_1_to_2: Number(scalar.toFixed(2)),
      ceiling_fit_s: { alone: Number(ceiling.aloneS.toFixed(2)), two_at_once: Number(ceiling.pairS.toFixed(2)) },
      stage_overhead_ms: { cluster: Number(clusterOverhead.toFixed(1)), dev: Number(devOverhead.toFixed(1)) },
      stage_overhead_ratio_cluster_vs_dev: Number((clusterOverhead / devOverhead).toFixed(2)),
    }),
  );
} finally {
  await connection.close();
  await stopCluster(cluster);
}
