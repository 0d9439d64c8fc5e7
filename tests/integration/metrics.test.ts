/**
 * Logs and metrics on the real stack after one small pipeline: a training worker in its own process logs JSON lines
 * and serves /metrics on a free port it logs; the server's /metrics (read scope) and the serving process's answer with
 * stage durations, queue waits, HTTP requests and predictions; `flywheel status` shows queue wait vs run time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../config/env';
import { createMainWorker } from '../../workers/wiring';
import { startCliServer, type CliServer } from './cliServer';
import { cli, demandPipeline, eventually, startHarness, type Harness } from './harness';

let harness: Harness;
let server: CliServer;
let mainWorker: Worker;
let mainRunning: Promise<void>;
let trainer: ChildProcess;
const trainerLog: Record<string, unknown>[] = [];

beforeAll(async () => {
  harness = await startHarness({ workers: false });
  mainWorker = await createMainWorker(harness.services, harness.queues.main, {
    trainingQueues: { trainCpu: harness.queues.trainCpu, trainGpu: harness.queues.trainGpu },
  });
  mainRunning = mainWorker.run();
  // No FLYWHEEL_WORKER_METRICS_PORT: the worker picks a free port and logs it.
  const { FLYWHEEL_WORKER_METRICS_PORT: _port, ...env } = process.env;
  trainer = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'workers', 'train.ts')], {
    cwd: PROJECT_ROOT,
    env: {
      ...env,
      FLYWHEEL_TRAIN_CPU_QUEUE: harness.queues.trainCpu,
      FLYWHEEL_LOG_FORMAT: 'json',
      FLYWHEEL_LOG_LEVEL: 'debug',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  createInterface({ input: trainer.stdout! }).on('line', (line) => trainerLog.push(JSON.parse(line)));
  server = await startCliServer(harness);
}, 120_000);

afterAll(async () => {
  trainer?.kill('SIGTERM');
  await server?.close();
  mainWorker?.shutdown();
  await mainRunning;
  await harness?.stop();
});

const scrape = async (url: string, token?: string) => {
  const response = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: response.status, text: await response.text() };
};

it('scrapes stage durations and queue waits from a worker, the server and serving after a pipeline', async () => {
  const polling = await eventually(
    async () => trainerLog.find((record) => typeof record.metricsUrl === 'string'),
    90_000,
    "the training worker's polling line",
  );
  expect(polling).toMatchObject({ level: 'info', component: 'worker', taskQueues: [harness.queues.trainCpu] });
  expect(String(polling.time)).toMatch(/^\d{4}-/);
  expect(String(polling.msg)).toContain('polling');

  const config = await demandPipeline(harness.workDir, { data: { stores: 2, items: 3, days: 40 } });
  const { workflowId, result } = await harness.runPipeline(config);
  const outcome = await result;
  expect(outcome.deployment?.serving).toBe('confirmed');

  // The training worker's process: the training stage's run time and its wait on the CPU training queue.
  const worker = await scrape(String(polling.metricsUrl));
  expect(worker.status).toBe(200);
  expect(worker.text).toContain('flywheel_stage_duration_seconds_count{stage="trainModel",outcome="completed"} 1');
  expect(worker.text).toContain(
    `flywheel_activity_queue_wait_seconds_count{activity_type="trainModel",task_queue="${harness.queues.trainCpu}"} 1`,
  );
  expect(worker.text).toContain('process_resident_memory_bytes');
  // Its activity logs (the SDK's, at debug) carry the workflow's ids.
  expect(trainerLog.some((r) => r.workflowId === workflowId && r.activityType === 'trainModel' && r.runId)).toBe(true);

  // The server needs a read token; this process also runs the main worker, so its stages are in the same registry.
  expect((await scrape(`${server.url}/metrics`)).status).toBe(401);
  const status = await cli(harness, ['status', workflowId], server.env(server.tokens.read));
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/queue wait vs run time per step/);
  expect(status.stdout).toMatch(/ingestDataset\s+\S+\s+\d+(ms|\.\d+s)\s+\d+(ms|\.\d+s)\s+completed/);
  const served = await scrape(`${server.url}/metrics`, server.tokens.read);
  expect(served.status).toBe(200);
  expect(served.text).toContain(
    'flywheel_http_requests_total{method="GET",route="/api/v1/pipelines/:workflowId/timeline",status="200"} 1',
  );
  expect(served.text).toMatch(
    /flywheel_stage_duration_seconds_count\{stage="ingestDataset",outcome="completed"\} [1-9]/,
  );
  expect(served.text).toContain(
    `flywheel_activity_queue_wait_seconds_bucket{le="+Inf",activity_type="ingestDataset",task_queue="${harness.queues.main}"} 1`,
  );

  // Serving: a prediction counted by model, version and status; /metrics needs no key.
  const prediction = await fetch(`${harness.servingUrl}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: config.model,
      instances: [{ price: 9.5, promo: 1, is_holiday: 0, store_id: 'S01', item_id: 'I002', day_of_week: 6 }],
    }),
  });
  expect(prediction.status).toBe(200);
  const serving = await scrape(`${harness.servingUrl}/metrics`);
  expect(serving.status).toBe(200);
  expect(serving.text).toContain(`flywheel_predictions_total{model="${config.model}",version="1",status="200"} 1`);
  expect(serving.text).toContain(`flywheel_prediction_latency_seconds_count{model="${config.model}",version="1"} 1`);
}, 300_000);
