/** Builds workers from real dependencies; entry points and tests share this wiring. */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { createStageActivities, createTrainActivities } from '../activities/index';
import type { ActivityDeps } from '../activities/deps';
import { connectDb, type Db } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { connectWorker, temporalClient } from '../storage/temporal';
import { PROJECT_ROOT, type FlywheelConfig } from '../config/env';
import { activityMetricsInterceptor } from '../observability/temporal';

export interface Services {
  db: Db;
  store: S3ObjectStore;
  client: Client;
  connection: NativeConnection;
  close(): Promise<void>;
}

export async function connectServices(config: Readonly<FlywheelConfig>): Promise<Services> {
  const db = connectDb(config.databaseUrl);
  const store = new S3ObjectStore(config.s3);
  const client = await temporalClient(config.temporal);
  const connection = await connectWorker(config.temporal);
  return {
    db,
    store,
    client,
    connection,
    async close() {
      await connection.close();
      await client.connection.close();
      await db.$client.end();
    },
  };
}

const require = createRequire(import.meta.url);

/** Workflows + CPU stages on `taskQueue`. */
export async function createMainWorker(
  services: Services,
  taskQueue: string,
  options: { maxConcurrentActivities?: number; trainingQueues?: ActivityDeps['trainingQueues'] } = {},
): Promise<Worker> {
  const deps: ActivityDeps = {
    db: services.db,
    store: services.store,
    temporal: services.client,
    workflowTaskQueue: taskQueue,
    trainingQueues: options.trainingQueues,
  };
  return Worker.create({
    connection: services.connection,
    namespace: services.client.options.namespace,
    taskQueue,
    workflowsPath: require.resolve(join(PROJECT_ROOT, 'workflows', 'index.ts')),
    activities: createStageActivities(deps),
    interceptors: { activity: [activityMetricsInterceptor] },
    maxConcurrentWorkflowTaskExecutions: 10,
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivities ?? 8,
    shutdownGraceTime: '10s',
    // A nondeterministic change should fail the run loudly, not retry its task forever.
    workflowFailureErrorTypes: { '*': ['NondeterminismError'] } as never,
  });
}

/** Training activities only; a GPU worker takes as many tasks at once as it has GPUs. */
export async function createTrainingWorker(
  services: Services,
  taskQueue: string,
  options: { gpu: boolean; concurrency?: number; pinBackend?: string },
): Promise<Worker> {
  const deps: ActivityDeps = {
    db: services.db,
    store: services.store,
    temporal: services.client,
    workflowTaskQueue: taskQueue,
  };
  return Worker.create({
    connection: services.connection,
    namespace: services.client.options.namespace,
    taskQueue,
    activities: createTrainActivities(deps, { preferGpu: options.gpu, pinBackend: options.pinBackend }),
    interceptors: { activity: [activityMetricsInterceptor] },
    maxConcurrentActivityTaskExecutions: options.concurrency ?? (options.gpu ? countGpus() : 1),
    shutdownGraceTime: '10s',
  });
}

export function countGpus(): number {
  const listed = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' });
  if (listed.status !== 0) return 1;
  return Math.max(1, listed.stdout.split('\n').filter((line) => line.startsWith('GPU ')).length);
}
