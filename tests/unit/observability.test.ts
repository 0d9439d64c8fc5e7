/** Logs and metrics: the pure parts (formatting, labels, settings) and the registry's text. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig, observabilitySettings } from '../../config/env';
import { createLogger, formatPretty } from '../../observability/log';
import {
  activityOutcome,
  activityQueueWait,
  metricsText,
  queueWaitSeconds,
  stageDuration,
} from '../../observability/metrics';
import { logFields, PinoTemporalLogger } from '../../observability/temporal';
import { isPredictionRequest, predictionLabels } from '../../serving/metrics';
import { routeLabel } from '../../server/metrics';
import { checkpointPrefixes } from '../../training/checkpointRetention';
import { formatMs, stepTimings, type TimelineStep } from '../../cli/timings';
import { createApp } from '../../server/app';
import type { ServerDeps } from '../../server/deps';

function captured() {
  const lines: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, out, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('settings', () => {
  it('defaults to info, json when not on a terminal and pretty on one, and names a bad variable', () => {
    expect(observabilitySettings({}, false)).toMatchObject({
      logLevel: 'info',
      logFormat: 'json',
      metricsPublic: false,
    });
    expect(observabilitySettings({}, true).logFormat).toBe('pretty');
    expect(observabilitySettings({ FLYWHEEL_LOG_FORMAT: 'json' }, true).logFormat).toBe('json');
    expect(observabilitySettings({ FLYWHEEL_LOG_LEVEL: 'DEBUG', FLYWHEEL_METRICS_PUBLIC: '1' }, false)).toMatchObject({
      logLevel: 'debug',
      metricsPublic: true,
    });
    expect(() => observabilitySettings({ FLYWHEEL_LOG_LEVEL: 'loud' })).toThrow(/FLYWHEEL_LOG_LEVEL must be one of/);
    expect(() => observabilitySettings({ FLYWHEEL_LOG_FORMAT: 'xml' })).toThrow(/FLYWHEEL_LOG_FORMAT must be json/);
    expect(() => observabilitySettings({ FLYWHEEL_WORKER_METRICS_PORT: 'x' })).toThrow(/FLYWHEEL_WORKER_METRICS_PORT/);
    expect(observabilitySettings({ FLYWHEEL_WORKER_METRICS_PORT: '9464' }).workerMetricsPort).toBe(9464);
  });

  it('keeps checkpoints 7 days by default; 0 keeps them for good', () => {
    expect(loadConfig({}).serving.checkpointRetentionDays).toBe(7);
    expect(loadConfig({ FLYWHEEL_CHECKPOINT_RETENTION_DAYS: '0' }).serving.checkpointRetentionDays).toBe(0);
    expect(() => loadConfig({ FLYWHEEL_CHECKPOINT_RETENTION_DAYS: '-1' })).toThrow(
      /FLYWHEEL_CHECKPOINT_RETENTION_DAYS/,
    );
  });
});

describe('logs', () => {
  it('writes one JSON line per record with the level by name, an ISO time and msg, and drops records below the level', () => {
    const { out, records } = captured();
    const log = createLogger({ logLevel: 'info', logFormat: 'json' }, out);
    log.debug('not shown');
    log.child({ component: 'worker' }).info({ workflowId: 'wf-1' }, 'polling q');
    const [record, ...rest] = records();
    expect(rest).toHaveLength(0);
    expect(record).toMatchObject({ level: 'info', msg: 'polling q', component: 'worker', workflowId: 'wf-1' });
    expect(String(record!.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('formats a record as one human line, its fields as key=value and an error stack below', () => {
    const line = formatPretty({
      level: 'warn',
      time: '2026-12-01T10:11:12.345Z',
      msg: 'refresh failed',
      component: 'serving',
      pid: 1,
      model: 'demand',
      versions: [1, 2],
      err: { message: 'boom', stack: 'Error: boom\n    at x' },
    });
    expect(line).toBe(
      '10:11:12.345 WARN  [serving] refresh failed model=demand versions=[1,2]\n  Error: boom\n      at x',
    );
  });

  it("routes Temporal's log calls with workflowId, runId and activityType, never the task token", () => {
    expect(logFields({ workflowId: 'w', workflowRunId: 'r', activityType: 'train', taskToken: 'secret' })).toEqual({
      workflowId: 'w',
      runId: 'r',
      activityType: 'train',
    });
    const { out, records } = captured();
    const temporal = new PinoTemporalLogger(createLogger({ logLevel: 'debug', logFormat: 'json' }, out));
    temporal.warn('Activity failed', { workflowId: 'w', workflowRunId: 'r', error: new Error('disk full') });
    temporal.debug('Activity started', { activityType: 'ingestDataset' });
    const [failed, started] = records();
    expect(failed).toMatchObject({ level: 'warn', msg: 'Activity failed', workflowId: 'w', runId: 'r' });
    expect((failed!.err as { message: string }).message).toBe('disk full');
    expect(started).toMatchObject({ level: 'debug', activityType: 'ingestDataset' });
  });
});

describe('metrics', () => {
  it('measures queue wait from scheduling to start, never below zero (clocks differ)', () => {
    expect(queueWaitSeconds(1_000, 3_500)).toBe(2.5);
    expect(queueWaitSeconds(5_000, 4_000)).toBe(0);
  });

  it('names how an activity attempt ended', () => {
    expect(activityOutcome(undefined)).toBe('completed');
    expect(activityOutcome(new Error('x'))).toBe('failed');
    expect(activityOutcome(Object.assign(new Error('c'), { name: 'CancelledFailure' }))).toBe('cancelled');
    expect(activityOutcome(Object.assign(new Error('a'), { name: 'CompleteAsyncError' }))).toBe('async');
  });

  it('shows stage durations and queue waits in the text a scraper reads', async () => {
    stageDuration.observe({ stage: 'ingestDataset', outcome: 'completed' }, 1.5);
    activityQueueWait.observe({ activity_type: 'train', task_queue: 'flywheel-train-cpu' }, 0.02);
    const { contentType, body } = await metricsText();
    expect(contentType).toMatch(/^text\/plain/);
    expect(body).toContain(
      'flywheel_stage_duration_seconds_bucket{le="2.5",stage="ingestDataset",outcome="completed"} 1',
    );
    expect(body).toContain(
      'flywheel_activity_queue_wait_seconds_count{activity_type="train",task_queue="flywheel-train-cpu"} 1',
    );
    for (const name of ['flywheel_predictions_total', 'flywheel_prediction_log_backlog', 'flywheel_drift_checks_total'])
      expect(body).toContain(`# TYPE ${name}`);
  });

  it('counts only prediction routes, and a request that reached no served version as unresolved', () => {
    expect(isPredictionRequest('POST', '/predict')).toBe(true);
    expect(isPredictionRequest('POST', '/v2/models/demand/infer?x=1')).toBe(true);
    expect(isPredictionRequest('POST', '/v2/models/demand/versions/3/infer')).toBe(true);
    expect(isPredictionRequest('GET', '/v2/models/demand')).toBe(false);
    expect(isPredictionRequest('POST', '/feedback')).toBe(false);
    expect(predictionLabels({ model: 'demand', version: 3 }, 200)).toEqual({
      model: 'demand',
      version: '3',
      status: '200',
    });
    expect(predictionLabels({ model: 'typo-name' }, 404)).toEqual({
      model: 'unresolved',
      version: 'none',
      status: '404',
    });
  });

  it("labels HTTP requests by the route's pattern, and unmatched ones as such", () => {
    expect(routeLabel('/api/v1/runs/:runId')).toBe('/api/v1/runs/:runId');
    expect(routeLabel('*')).toBe('unmatched');
    expect(routeLabel(undefined)).toBe('unmatched');
  });
});

describe('queue wait vs run time per step', () => {
  const step = (
    name: string,
    scheduledAt: number,
    startedAt: number | null,
    closedAt: number | null,
  ): TimelineStep => ({
    kind: 'activity',
    name,
    taskQueue: 'q',
    scheduledAt,
    startedAt,
    closedAt,
    status: closedAt ? 'completed' : startedAt ? 'running' : 'scheduled',
  });

  it('folds steps by name, sums repeated ones and counts a running step up to now', () => {
    const timings = stepTimings(
      [
        step('ingestDataset', 0, 50, 1_050),
        step('recordPipeline', 1_100, 1_110, 1_120),
        step('recordPipeline', 1_200, 1_230, 1_240),
        step('train', 2_000, 2_500, null),
        step('evaluate', 3_000, null, null),
      ],
      4_000,
    );
    expect(timings.map((t) => [t.name, t.queueWaitMs, t.runMs, t.count])).toEqual([
      ['ingestDataset', 50, 1_000, 1],
      ['recordPipeline', 40, 20, 2],
      ['train', 500, 1_500, 1],
      ['evaluate', null, null, 1],
    ]);
    expect([formatMs(null), formatMs(87.4), formatMs(1_234), formatMs(61_000)]).toEqual([
      '-',
      '87ms',
      '1.234s',
      '61.0s',
    ]);
  });
});

describe('checkpoint retention', () => {
  it("covers the TF.js trainer's prefix and, with an experiment, the Python SDK's among the run's artifacts", () => {
    expect(checkpointPrefixes('r1', 4)).toEqual(['checkpoints/r1/', 'mlflow-artifacts/4/r1/artifacts/checkpoints/']);
    expect(checkpointPrefixes('r1', null)).toEqual(['checkpoints/r1/']);
  });
});

describe("the server's /metrics", () => {
  // Refused before any dependency is touched, or answered from the registry alone.
  const depsOf = (env: Record<string, string>) => ({ config: loadConfig(env) }) as unknown as ServerDeps;

  it('needs a read token by default, and counts requests by route pattern', async () => {
    const app = createApp(depsOf({}));
    const refused = await app.request('/metrics');
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    await app.request('/api/v1/runs/abc');
    const open = createApp(depsOf({ FLYWHEEL_METRICS_PUBLIC: '1' }));
    const scraped = await open.request('/metrics');
    expect(scraped.status).toBe(200);
    const text = await scraped.text();
    expect(text).toContain('flywheel_http_requests_total{method="GET",route="/metrics",status="401"} 1');
    expect(text).toMatch(
      /flywheel_http_requests_total\{method="GET",route="\/api\/v1\/runs\/:[a-zA-Z]+",status="401"\} 1/,
    );
    expect(text).toContain('process_cpu_user_seconds_total');
  });
});
