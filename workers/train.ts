/**
 * A training worker. `--gpu` polls the GPU queue with tfjs-node-gpu and one slot per GPU;
 * otherwise the CPU queue with the best CPU backend (tfjs-node, wasm, cpu).
 */
import { loadConfig } from '../config/env';
import { installWorkerLogging } from '../observability/temporal';
import { runUntilSignalled } from './runWorkers';
import { connectServices, createTrainingWorker } from './wiring';

const gpu = process.argv.includes('--gpu');
const config = loadConfig();
installWorkerLogging();
const services = await connectServices(config);
const worker = await createTrainingWorker(services, gpu ? config.taskQueues.trainGpu : config.taskQueues.trainCpu, {
  gpu,
});
await runUntilSignalled(
  services,
  [worker],
  `flywheel ${gpu ? 'GPU' : 'CPU'} training worker`,
  [],
  config.observability,
);
