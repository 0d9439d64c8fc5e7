/**
 * Runs workers (and loops beside them, such as the webhook dispatcher) until SIGINT/SIGTERM, then drains them and
 * closes connections.
 */
import type { Worker } from '@temporalio/worker';
import type { Services } from './wiring';

export async function runUntilSignalled(
  services: Services,
  workers: Worker[],
  label: string,
  beside: { stop(): Promise<void> }[] = [],
): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => workers.forEach((worker) => worker.shutdown()));
  }
  console.log(`${label}: polling ${workers.map((w) => w.options.taskQueue).join(', ')}`);
  try {
    await Promise.all(workers.map((worker) => worker.run()));
  } finally {
    await Promise.allSettled(beside.map((loop) => loop.stop()));
    await services.close();
  }
}
