/**
 * Temporal's side of logs and metrics in a worker process: the SDK's logger (workflow and activity `log` calls, worker
 * lifecycle) routed into pino with workflowId / runId / activityType, and an activity interceptor that measures queue
 * wait (schedule → start), stage run time and drift check outcomes.
 */
import { Runtime, type ActivityInterceptorsFactory } from '@temporalio/worker';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { componentLogger, type Logger } from './log';
import { activityOutcome, activityQueueWait, driftChecks, queueWaitSeconds, stageDuration } from './metrics';

const LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** The SDK's log attributes under Flywheel's names; the task token is an opaque credential-like blob: dropped. */
export function logFields(meta: LogMetadata | undefined): Record<string, unknown> {
  if (!meta) return {};
  const { workflowRunId, taskToken: _taskToken, ...rest } = meta as Record<string, unknown>;
  return { ...rest, ...(workflowRunId !== undefined ? { runId: workflowRunId } : {}) };
}

/** Temporal's `Logger` interface over a pino logger. */
export class PinoTemporalLogger implements TemporalLogger {
  constructor(private readonly pinoLogger: Logger = componentLogger('temporal')) {}
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const fields = logFields(meta);
    // The SDK passes errors in `error` / `failure`: pino's `err` serializer keeps their stack.
    if (fields.error instanceof Error) [fields.err, fields.error] = [fields.error, undefined];
    this.pinoLogger[LEVEL[level] ?? 'info'](fields, message);
  }
  trace = (message: string, meta?: LogMetadata) => this.log('TRACE', message, meta);
  debug = (message: string, meta?: LogMetadata) => this.log('DEBUG', message, meta);
  info = (message: string, meta?: LogMetadata) => this.log('INFO', message, meta);
  warn = (message: string, meta?: LogMetadata) => this.log('WARN', message, meta);
  error = (message: string, meta?: LogMetadata) => this.log('ERROR', message, meta);
}

/**
 * Routes the SDK's logs into pino; call before the first connection or worker (the Runtime is installed once per
 * process). Returns false when one was installed already (a test's).
 */
export function installWorkerLogging(): boolean {
  try {
    Runtime.install({ logger: new PinoTemporalLogger() });
    return true;
  } catch {
    return false;
  }
}

/** The activity that reports a monitor's verdict (activities/monitor.ts): its result's `verdict` is counted. */
const DRIFT_CHECK = 'checkPredictionDrift';

/** Measures each activity attempt: queue wait, run time by outcome, and drift check verdicts. */
export const activityMetricsInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const { activityType, taskQueue, currentAttemptScheduledTimestampMs } = ctx.info;
      const startedAt = Date.now();
      activityQueueWait.observe(
        { activity_type: activityType, task_queue: taskQueue },
        queueWaitSeconds(currentAttemptScheduledTimestampMs, startedAt),
      );
      const ended = (outcome: string) =>
        stageDuration.observe({ stage: activityType, outcome }, (Date.now() - startedAt) / 1000);
      try {
        const result = await next(input);
        ended('completed');
        if (activityType === DRIFT_CHECK)
          driftChecks.inc({ outcome: String((result as { verdict?: string } | null)?.verdict ?? 'unknown') });
        return result;
      } catch (error) {
        ended(activityOutcome(error));
        if (activityType === DRIFT_CHECK) driftChecks.inc({ outcome: 'error' });
        throw error;
      }
    },
  },
});
