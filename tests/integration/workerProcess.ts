/** A worker in its own process (main + CPU training on the given queues), so a test can kill -9 it. */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from '../../config/env';
import { connectServices, createMainWorker, createTrainingWorker } from '../../workers/wiring';

Runtime.install({ logger: new DefaultLogger('WARN') });
const [mainQueue, trainQueue] = [process.env.TEST_MAIN_QUEUE!, process.env.TEST_TRAIN_QUEUE!];
const services = await connectServices(loadConfig());
const workers = [
  await createMainWorker(services, mainQueue),
  await createTrainingWorker(services, trainQueue, { gpu: false }),
];
console.log('worker ready');
await Promise.all(workers.map((w) => w.run()));
