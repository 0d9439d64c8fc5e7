/**
 * Integration fixtures on the real local stack (`flywheel up --infra-only` has started Temporal, MinIO, Postgres):
 * each suite gets its own task queues, its own in-process workers and serving process, and unique names.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { expect } from 'vitest';
import { parsePipelineConfig, type PipelineConfig } from '../../config/pipeline';
import { issueGrant } from '../../store/grants';
import { generateDemand, type DemandOptions } from '../../examples/demand/generate';
import { createServingHandler } from '../../serving/app';
import { ServedModels } from '../../serving/models';
import { PredictionLog } from '../../serving/predictionLog';
import { loadConfig, PROJECT_ROOT } from '../../config/env';
import { connectServices, createMainWorker, createTrainingWorker, type Services } from '../../workers/wiring';
import type { DatasetWorkflowInput, DatasetWorkflowResult } from '../../workflows/dataset';
import type { PipelineInput, PipelineResult } from '../../workflows/pipeline';

// Worker lifecycle chatter drowns test output; warnings and errors still show.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // already installed by another suite in this process
}

export const unique = (prefix: string) =>
  `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

export interface Harness {
  services: Services;
  queues: { main: string; trainCpu: string; trainGpu: string; trainPythonCpu: string; trainPythonGpu: string };
  servingUrl: string;
  workDir: string;
  /**
   * `release`: carry an admin's release grant, as `flywheel run --token` does (needed to redeploy an existing model).
   */
  runPipeline(
    config: PipelineConfig,
    workflowId?: string,
    options?: { release?: boolean },
  ): Promise<{ workflowId: string; result: Promise<PipelineResult> }>;
  /** Ingest + validate only (the `datasetWorkflow`); resolves with its result or rejects with its failure. */
  runDataset(input: DatasetWorkflowInput): Promise<DatasetWorkflowResult>;
  /**
   * Terminates every workflow still running on the suite's task queues (monitors, pipelines, rollouts); `stop()` calls
   * it.
   */
  cleanup(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Terminates every workflow still running on these task queues and returns their ids. The queues are the suite's
 * own, so nothing of another suite is touched; listing is eventually consistent, so it lists again until a listing a
 * second after the last termination finds none.
 */
export async function terminateWorkflowsOn(
  client: Client,
  queues: string[],
  reason = 'test suite finished',
): Promise<string[]> {
  const query = `ExecutionStatus = 'Running' AND (${queues.map((q) => `TaskQueue = '${q}'`).join(' OR ')})`;
  const terminated: string[] = [];
  const deadline = Date.now() + 30_000;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    const running: string[] = [];
    for await (const execution of client.workflow.list({ query })) running.push(execution.workflowId);
    if (!running.length && Date.now() - quietSince >= 1_000) break;
    for (const workflowId of running) {
      // Already ended between the listing and now: nothing to do.
      await client.workflow
        .getHandle(workflowId)
        .terminate(reason)
        .then(
          () => terminated.push(workflowId),
          () => undefined,
        );
    }
    if (running.length) quietSince = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return terminated;
}

export async function startHarness(options: { workers?: boolean } = {}): Promise<Harness> {
  const settings = loadConfig();
  const services = await connectServices(settings);
  const id = unique('t');
  const queues = {
    main: `${id}-main`,
    trainCpu: `${id}-train-cpu`,
    trainGpu: `${id}-train-gpu`,
    // No Python worker polls these unless a test starts one (tests/integration/pythonTraining.test.ts).
    trainPythonCpu: `${id}-train-python-cpu`,
    trainPythonGpu: `${id}-train-python-gpu`,
  };
  const workers: Worker[] = [];
  const running: Promise<void>[] = [];
  if (options.workers !== false) {
    workers.push(
      await createMainWorker(services, queues.main, {
        trainingQueues: { trainCpu: queues.trainCpu, trainGpu: queues.trainGpu },
      }),
      await createTrainingWorker(services, queues.trainCpu, { gpu: false }),
    );
    running.push(...workers.map((w) => w.run()));
  }
  const models = new ServedModels(services.db, services.store);
  await models.start(250);
  const predictionLog = new PredictionLog(services.db, 500, 100);
  const server: Server = createServer(createServingHandler(models, predictionLog));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const servingUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const workDir = await mkdtemp(join(tmpdir(), 'flywheel-test-'));
  // Local sources are read only from allowed folders: the suite's files live here (workers in this process and the
  // processes it starts inherit it).
  process.env.FLYWHEEL_DATA_ROOTS = [process.env.FLYWHEEL_DATA_ROOTS, workDir].filter(Boolean).join(':');

  return {
    services,
    queues,
    servingUrl,
    workDir,
    async runPipeline(config, workflowId = unique(config.name), options = {}) {
      const grant = options.release
        ? issueGrant({ actor: 'token:test', scope: 'admin', model: config.model, action: 'release', workflowId })
        : undefined;
      const input: PipelineInput = {
        config,
        trigger: { kind: 'test' },
        servingUrl,
        queues: {
          trainCpu: queues.trainCpu,
          trainGpu: queues.trainGpu,
          trainPythonCpu: queues.trainPythonCpu,
          trainPythonGpu: queues.trainPythonGpu,
        },
        grant,
      };
      const handle = await services.client.workflow.start('pipelineWorkflow', {
        workflowId,
        taskQueue: queues.main,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      });
      return { workflowId, result: handle.result() as Promise<PipelineResult> };
    },
    async runDataset(input) {
      return services.client.workflow.execute('datasetWorkflow', {
        workflowId: unique(`dataset-${input.dataset}`),
        taskQueue: queues.main,
        args: [input],
      });
    },
    cleanup() {
      return terminateWorkflowsOn(services.client, Object.values(queues));
    },
    async stop() {
      // Nothing a suite started outlives it: a monitor left running would wait for this suite's workers for ever.
      await terminateWorkflowsOn(services.client, Object.values(queues));
      models.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await predictionLog.close();
      workers.forEach((w) => w.shutdown());
      await Promise.all(running);
      await services.close();
    },
  };
}

/** The pinned contract of the generated demand data. */
export const DEMAND_SCHEMA = {
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

/** A small demand pipeline config on freshly generated data; names are unique per call. */
export async function demandPipeline(
  dir: string,
  overrides: { data?: Partial<DemandOptions>; config?: Record<string, unknown>; source?: string } = {},
): Promise<PipelineConfig> {
  const name = unique('demand');
  const source = overrides.source ?? join(dir, `${name}.csv`);
  if (!overrides.source) await generateDemand(source, { stores: 3, items: 5, days: 60, ...overrides.data });
  return parsePipelineConfig({
    name,
    model: `${name}-model`,
    data: { dataset: `${name}-data`, source },
    schema: DEMAND_SCHEMA,
    training: {
      task: 'regression',
      target: 'units_sold',
      features: { numeric: ['price', 'promo', 'is_holiday'], categorical: ['store_id', 'item_id', 'day_of_week'] },
      model: { type: 'mlp', hiddenUnits: [16] },
      epochs: 3,
      batchSize: 64,
      learningRate: 0.01,
    },
    evaluation: { gates: [{ metric: 'r2', min: 0.3 }] },
    ...overrides.config,
  });
}

/** The whole failure chain of a workflow that must fail, as one text: each cause on a line, with its error type. */
export async function failureOf(result: Promise<unknown>): Promise<string> {
  const error = await result.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  let message = '';
  for (
    let current = error as { message?: string; type?: string; cause?: unknown } | undefined;
    current;
    current = current.cause as typeof current
  ) {
    message += `${current.type ? `[${current.type}] ` : ''}${current.message}\n`;
  }
  return message;
}

/** Waits for a condition instead of sleeping a fixed time. */
/** A workflow's whole history as text, followed by every payload decoded, so a secret anywhere in it would show. */
export async function historyText(client: Client, workflowId: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payloads: string[] = [];
  const raw = JSON.stringify(history, (key, value: unknown) => {
    if (value instanceof Uint8Array) payloads.push(Buffer.from(value).toString('utf8'));
    else if (key === 'data' && typeof value === 'string') payloads.push(Buffer.from(value, 'base64').toString('utf8'));
    return value;
  });
  return [raw, ...payloads].join('\n');
}

export async function eventually<T>(
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * Runs the `flywheel` CLI without blocking this process (its workers keep running), on the suite's queue and server.
 */
export function cli(
  harness: Harness,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'flywheel.js'), ...args],
      {
        env: {
          ...process.env,
          FLYWHEEL_TASK_QUEUE: harness.queues.main,
          FLYWHEEL_SERVING_URL: harness.servingUrl,
          FLYWHEEL_TOKEN: '',
          ...env,
        },
        timeout: 120_000,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}
