/** The main worker: pipeline and monitor workflows plus the CPU stages, on the `flywheel` queue. */
import { loadConfig } from '../temporal.config';
import { runUntilSignalled } from './runWorkers';
import { connectServices, createMainWorker } from './wiring';

const config = loadConfig();
const services = await connectServices(config);
await runUntilSignalled(services, [await createMainWorker(services, config.taskQueues.main)], 'flywheel main worker');
