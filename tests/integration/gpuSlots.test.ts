/**
 * GPU slots on the real stack, without a GPU (device ids are only ids here): a Python worker started with `--gpus 0,1`
 * on this suite's Python GPU queue trains two pipelines at once, each user fit() seeing only its own device in
 * CUDA_VISIBLE_DEVICES and each run tagged with it; both devices are free again afterwards; the worker's /metrics
 * counts the attempts. And the TF.js GPU worker (workers/train.ts --gpus) trains in the child process that owns the
 * device, then drains on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { like } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { churnCsv } from '../../examples/churn-sklearn/generate';
import { loadPipelineConfig, parsePipelineConfig } from '../../config/pipeline';
import { PROJECT_ROOT } from '../../config/env';
import { apiTokens } from '../../schema/models';
import { ensurePythonWorkerEnv, startPythonWorker, type PythonWorkerHandle } from '../../scripts/pythonWorker';
import { startServer } from '../../server/start';
import { getRun } from '../../store/runs';
import { hashToken } from '../../store/tokens';
import { demandPipeline, eventually, startHarness, unique, type Harness } from './harness';

const suite = unique('gpuslots');
const token = `fw_write_test_${suite}`;

let harness: Harness;
let server: { url: string; close(): Promise<void> };
let worker: PythonWorkerHandle;
let churnSource: string;

beforeAll(async () => {
  const python = await ensurePythonWorkerEnv();
  harness = await startHarness();
  await harness.services.db
    .insert(apiTokens)
    .values({ name: `${suite}-write`, scope: 'write', hash: hashToken(token) });
  server = await startServer({ port: 0 });
  churnSource = join(harness.workDir, 'churn.csv');
  writeFileSync(churnSource, churnCsv({ rows: 600, seed: 5 }));
  worker = await startPythonWorker({
    python,
    url: server.url,
    token,
    queue: harness.queues.trainPythonGpu,
    gpus: ['0', '1'],
    paths: [join(PROJECT_ROOT, 'tests', 'fixtures', 'python')],
  });
  await worker.ready;
}, 900_000);

afterAll(async () => {
  await worker?.stop();
  await harness?.cleanup();
  await server?.close();
  await harness?.services.db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(like(apiTokens.name, `${suite}-%`));
  await harness?.stop();
});

/** The churn example on this suite's data, trained by gpu_slots.py on the GPU queue, not deployed. */
function onGpu(rendezvous: string, together: number) {
  const loaded = loadPipelineConfig(join(PROJECT_ROOT, 'examples', 'churn-sklearn', 'pipeline.yaml'));
  const name = unique('gpu-slot');
  return parsePipelineConfig({
    ...loaded,
    name,
    model: name,
    data: { dataset: name, source: churnSource },
    evaluation: { gates: [] },
    deploy: { enabled: false },
    training: {
      ...loaded.training,
      features: { numeric: ['tenure_months', 'monthly_charges', 'support_calls', 'paperless'], categorical: [] },
      entrypoint: 'gpu_slots.py:fit_on_my_device',
      params: { rendezvous, together },
      resources: { gpu: 1, gpuWait: '5m' },
    },
  });
}

it('runs one training attempt per device at once, each fit() seeing only its own CUDA_VISIBLE_DEVICES', async () => {
  expect(worker.output()).toContain(`polling task queue ${harness.queues.trainPythonGpu} (gpu)`);
  expect(worker.output()).toContain('one attempt per GPU: 0,1');
  // Each fit waits until the other one trains too: with one slot (or one device shared) neither would finish.
  const together = mkdtempSync(join(harness.workDir, 'together-'));
  const started = await Promise.all([onGpu(together, 2), onGpu(together, 2)].map((c) => harness.runPipeline(c)));
  const results = await Promise.all(started.map((pipeline) => pipeline.result));
  expect(results.map((result) => result.trainingQueue)).toEqual([
    harness.queues.trainPythonGpu,
    harness.queues.trainPythonGpu,
  ]);
  const runs = await Promise.all(results.map((result) => getRun(harness.services.db, result.runId)));
  const seen = runs.map((run) => run.tags['test.cudaVisibleDevices']);
  expect([...seen].sort()).toEqual(['0', '1']);
  expect(runs.map((run) => run.tags['flywheel.device'])).toEqual(seen.map((device) => `cuda:${device}`));

  // Both slots were given back: a later attempt finds the first device free.
  const alone = mkdtempSync(join(harness.workDir, 'alone-'));
  const later = await (await harness.runPipeline(onGpu(alone, 1))).result;
  expect((await getRun(harness.services.db, later.runId)).tags['test.cudaVisibleDevices']).toBe('0');

  const metrics = await (await fetch(worker.metricsUrl()!)).text();
  const completed = /^flywheel_stage_duration_seconds_count\{outcome="completed",stage="trainPython"\} (\d+)$/m.exec(
    metrics,
  );
  expect(Number(completed?.[1]), metrics.slice(0, 2000)).toBe(3);
  expect(metrics).toContain(
    `flywheel_activity_queue_wait_seconds_count{activity_type="trainPython",task_queue="${harness.queues.trainPythonGpu}"} 3`,
  );
}, 600_000);

it('the TF.js GPU worker trains in the child process that owns the device, tags the run, and drains on SIGTERM', async () => {
  const supervisor = spawn(
    process.execPath,
    ['--import', 'tsx', join(PROJECT_ROOT, 'workers', 'train.ts'), '--gpus', '1'],
    {
      cwd: PROJECT_ROOT,
      env: { ...process.env, FLYWHEEL_TRAIN_GPU_QUEUE: harness.queues.trainGpu, FLYWHEEL_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<number | null>((resolve) => supervisor.once('exit', (code) => resolve(code)));
  const log: { msg?: string }[] = [];
  createInterface({ input: supervisor.stdout! }).on('line', (line) => log.push(JSON.parse(line) as { msg?: string }));
  try {
    await eventually(
      async () => log.find((record) => record.msg?.includes('training worker (device 1): polling')),
      120_000,
      "the device worker's polling line",
    );
    const base = await demandPipeline(harness.workDir, { data: { stores: 2, items: 3, days: 40 } });
    const config = parsePipelineConfig({
      ...base,
      evaluation: { gates: [] },
      deploy: { enabled: false },
      training: { ...base.training, resources: { gpu: 1, gpuWait: '5m' } },
    });
    const result = await (await harness.runPipeline(config)).result;
    expect(result.trainingQueue).toBe(harness.queues.trainGpu);
    expect((await getRun(harness.services.db, result.runId)).tags['flywheel.device']).toBe('cuda:1');
  } finally {
    supervisor.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
  expect(log.some((record) => record.msg?.includes('draining the device workers'))).toBe(true);
}, 300_000);
