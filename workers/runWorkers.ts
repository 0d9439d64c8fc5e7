/**
 * Runs workers (and loops beside them, such as the webhook dispatcher) until SIGINT/SIGTERM, then drains them and
 * closes connections. The process serves /metrics on its own port meanwhile.
 */
import type { Worker } from '@temporalio/worker';
import type { ObservabilitySettings } from '../config/env';
import { componentLogger } from '../observability/log';
import { serveMetrics } from '../observability/metricsServer';
import type { Services } from './wiring';

export async function runUntilSignalled(
  services: Services,
  workers: Worker[],
  label: string,
  beside: { stop(): Promise<void> }[] = [],
  metrics?: Pick<ObservabilitySettings, 'workerMetricsPort' | 'workerMetricsHost'>,
): Promise<void> {
  const log = componentLogger('worker');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log.info({ signal }, `${label}: draining`);
      workers.forEach((worker) => worker.shutdown());
    });
  }
  const listener = metrics
    ? await serveMetrics({ port: metrics.workerMetricsPort, host: metrics.workerMetricsHost })
    : undefined;
  const taskQueues = workers.map((w) => w.options.taskQueue);
  log.info(
    { taskQueues, metricsUrl: listener?.url },
    `${label}: polling ${taskQueues.join(', ')}${listener ? `; metrics on ${listener.url}` : ''}`,
  );
  try {
    await Promise.all(workers.map((worker) => worker.run()));
  } finally {
    await Promise.allSettled(beside.map((loop) => loop.stop()));
    await listener?.close();
    await services.close();
  }
}
