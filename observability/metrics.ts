/**
 * Prometheus metrics of every Flywheel process (server, serving, workers), in one registry of this module's own
 * (prom-client's global one is shared by every copy of this module a test runner loads). Series names are in the
 * README's "Operations" section.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();

/** Seconds, from a few ms (a quick stage) to an hour (a long training run). */
const STAGE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
/** Seconds an activity task waited on its queue: a healthy fleet picks up in milliseconds. */
const WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
/** Seconds to answer a prediction or an API request. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** `stage`: the activity type (one per lifecycle stage: ingestDataset, validateDataset, train …). */
export const stageDuration = new Histogram({
  name: 'flywheel_stage_duration_seconds',
  help: 'Run time of each stage activity attempt on this worker, by stage (activity type) and outcome',
  labelNames: ['stage', 'outcome'] as const,
  buckets: STAGE_BUCKETS,
  registers: [registry],
});

export const activityQueueWait = new Histogram({
  name: 'flywheel_activity_queue_wait_seconds',
  help: "Time from an activity attempt's scheduling to its start on this worker (schedule → start)",
  labelNames: ['activity_type', 'task_queue'] as const,
  buckets: WAIT_BUCKETS,
  registers: [registry],
});

export const predictionsServed = new Counter({
  name: 'flywheel_predictions_total',
  help: 'Prediction requests answered by this serving process, by model, version and HTTP status',
  labelNames: ['model', 'version', 'status'] as const,
  registers: [registry],
});

export const predictionLatency = new Histogram({
  name: 'flywheel_prediction_latency_seconds',
  help: 'Time to answer a prediction request, by model and version',
  labelNames: ['model', 'version'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

/** Whatever holds records not yet written (the serving process's prediction log) reports its count here. */
const backlogSources = new Set<() => number>();
export const predictionLogBacklog = new Gauge({
  name: 'flywheel_prediction_log_backlog',
  help: 'Prediction log records (predictions, shadow answers, request errors) buffered but not yet written to Postgres',
  registers: [registry],
  collect() {
    let waiting = 0;
    for (const source of backlogSources) waiting += source();
    this.set(waiting);
  },
});

/** Counts `source()` into the backlog gauge until the returned function is called. */
export function trackBacklog(source: () => number): () => void {
  backlogSources.add(source);
  return () => backlogSources.delete(source);
}

/** `outcome`: the check's verdict (ok, drift, insufficient-data, no-deployment) or `error`. */
export const driftChecks = new Counter({
  name: 'flywheel_drift_checks_total',
  help: 'Monitor drift checks run on this worker, by outcome',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

/** `outcome`: delivered, retry (failed, tried again later) or dead (failed for good). */
export const webhookDeliveries = new Counter({
  name: 'flywheel_webhook_deliveries_total',
  help: 'Registry webhook delivery attempts by this process, by outcome',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

/** `route`: the declared route's pattern (`/api/v1/runs/:runId`), never the raw path (unbounded labels). */
export const httpRequests = new Counter({
  name: 'flywheel_http_requests_total',
  help: 'HTTP requests answered by the API server, by method, route pattern and status',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
});

export const httpDuration = new Histogram({
  name: 'flywheel_http_request_duration_seconds',
  help: 'Time to answer an HTTP request on the API server, by method and route pattern',
  labelNames: ['method', 'route'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

let processMetrics = false;
/** Node's process metrics (CPU, memory, event loop lag, GC), once per process. */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: registry });
}

/** The text a scraper reads, with its content type. */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}

/** Seconds an attempt waited: its start minus its scheduling, never negative (worker and server clocks differ). */
export function queueWaitSeconds(scheduledAtMs: number, startedAtMs: number): number {
  return Math.max(0, startedAtMs - scheduledAtMs) / 1000;
}

/** How an activity attempt ended, for the `outcome` label. */
export function activityOutcome(error: unknown): 'completed' | 'failed' | 'cancelled' | 'async' {
  if (error === undefined) return 'completed';
  const name = (error as { name?: string } | null)?.name;
  if (name === 'CancelledFailure' || name === 'AbortError') return 'cancelled';
  // The activity handed its completion to someone else: not a failure.
  if (name === 'CompleteAsyncError') return 'async';
  return 'failed';
}
