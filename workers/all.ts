/**
 * One process for a laptop or the demo: the main worker plus a CPU training worker, and the registry webhook
 * dispatcher.
 */
import { loadConfig } from '../config/env';
import { installWorkerLogging } from '../observability/temporal';
import { runUntilSignalled } from './runWorkers';
import { startWebhookDispatcher } from './webhookDispatcher';
import { buildLabel } from './versioning';
import { connectServices, createMainWorker, createTrainingWorker } from './wiring';

const config = loadConfig();
installWorkerLogging();
const services = await connectServices(config, 'worker');
const workers = [
  await createMainWorker(services, config.taskQueues.main),
  await createTrainingWorker(services, config.taskQueues.trainCpu, { gpu: false }),
];
await runUntilSignalled(
  services,
  workers,
  `flywheel worker (main + CPU training)${buildLabel(config.temporal.deployment)}`,
  [startWebhookDispatcher(services.db, config.webhooks)],
  config.observability,
);
