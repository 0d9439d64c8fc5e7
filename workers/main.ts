/**
 * The main worker: pipeline and monitor workflows plus the CPU stages, on the `flywheel` queue, and the registry
 * webhook dispatcher.
 */
import { loadConfig } from '../config/env';
import { installWorkerLogging } from '../observability/temporal';
import { runUntilSignalled } from './runWorkers';
import { startWebhookDispatcher } from './webhookDispatcher';
import { buildLabel } from './versioning';
import { connectServices, createMainWorker } from './wiring';

const config = loadConfig();
installWorkerLogging();
const services = await connectServices(config, 'worker-main');
const worker = await createMainWorker(services, config.taskQueues.main);
await runUntilSignalled(
  services,
  [worker],
  `flywheel main worker${buildLabel(config.temporal.deployment)}`,
  [startWebhookDispatcher(services.db, config.webhooks)],
  config.observability,
);
