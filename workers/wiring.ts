/** Builds workers from real dependencies; entry points and tests share this wiring. */
import { createRequire } from 'node:module';
import { getPriority } from 'node:os';
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
import { startTracing, type Tracing } from '../observability/tracing';
import { deploymentOptions, type WorkerDeployment } from './versioning';

export interface Services {
  db: Db;
  store: S3ObjectStore;
  client: Client;
  connection: NativeConnection;
  /** The workers' Worker Deployment (FLYWHEEL_WORKER_BUILD_ID versions them). */
  deployment: WorkerDeployment;
  /** Set while OpenTelemetry tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT). */
  tracing?: Tracing;
  close(): Promise<void>;
}

/** `component` names the traces' service (`flywheel-<component>`) when tracing is on. @default 'worker' */
export async function connectServices(config: Readonly<FlywheelConfig>, component = 'worker'): Promise<Services> {
  const tracing = await startTracing(config.observability.tracing, component);
  // A worker started at a lower priority (flywheel up: FLYWHEEL_WORKER_NICE) has its Postgres sessions run at it too.
  const db = connectDb(config.databaseUrl, 5, { sessionNice: getPriority() });
  const store = new S3ObjectStore(config.s3);
  const client = await temporalClient(config.temporal, { interceptors: tracing?.clientInterceptors });
  const connection = await connectWorker(config.temporal);
  return {
    db,
    store,
    client,
    connection,
    deployment: config.temporal.deployment,
    tracing,
    async close() {
      // Spans of the last activities and workflow tasks leave before the process does.
      await tracing?.flush().catch(() => undefined);
      await connection.close();
      await client.connection.close();
      await db.$client.end();
    },
  };
}

const require = createRequire(import.meta.url);

/** Interceptors and sinks of a worker: metrics always, tracing's when it is on. */
function observedWorker(tracing: Tracing | undefined, options: { workflows: boolean }) {
  return {
    interceptors: {
      activity: [activityMetricsInterceptor, ...(tracing?.worker.activity ?? [])],
      workflowModules: options.workflows ? tracing?.worker.workflowModules : undefined,
    },
    sinks: options.workflows ? tracing?.worker.sinks : undefined,
  };
}

/** Workflows + CPU stages on `taskQueue`; `deployment` overrides the services' (a test's second build). */
export async function createMainWorker(
  services: Services,
  taskQueue: string,
  options: {
    maxConcurrentActivities?: number;
    trainingQueues?: ActivityDeps['trainingQueues'];
    deployment?: WorkerDeployment;
  } = {},
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
    ...observedWorker(services.tracing, { workflows: true }),
    workerDeploymentOptions: deploymentOptions(options.deployment ?? services.deployment),
    maxConcurrentWorkflowTaskExecutions: 10,
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivities ?? 8,
    shutdownGraceTime: '10s',
    // A nondeterministic change should fail the run loudly, not retry its task forever.
    workflowFailureErrorTypes: { '*': ['NondeterminismError'] } as never,
  });
}

/**
 * Training activities only, one task at a time unless `concurrency` says otherwise; a GPU worker owns one `device`
 * (`cuda:<id>`, tagged on its runs): workers/train.ts runs one per GPU.
 */
export async function createTrainingWorker(
  services: Services,
  taskQueue: string,
  options: { gpu: boolean; concurrency?: number; pinBackend?: string; deployment?: WorkerDeployment; device?: string },
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
    activities: createTrainActivities(deps, {
      preferGpu: options.gpu,
      pinBackend: options.pinBackend,
      device: options.device,
    }),
    ...observedWorker(services.tracing, { workflows: false }),
    // Same build as the main workers: a pinned pipeline's training runs on the code it started with.
    workerDeploymentOptions: deploymentOptions(options.deployment ?? services.deployment),
    maxConcurrentActivityTaskExecutions: options.concurrency ?? 1,
    shutdownGraceTime: '10s',
  });
}
