/** Runs an activity function directly, in an activity context of its own (heartbeats kept, never cancelled). */
import { asyncLocalStorage, Context, type Info } from '@temporalio/activity';
import { noopMetricMeter, type LogLevel } from '@temporalio/common';

export interface ActivityRun<T> {
  result: Promise<T>;
  heartbeats: unknown[];
}

export function inActivity<T>(work: () => Promise<T>, activityType = 'test'): ActivityRun<T> {
  const heartbeats: unknown[] = [];
  const quiet = (_level: LogLevel | string, _message: string) => undefined;
  const log = { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet };
  const context = new Context(
    { activityType, attempt: 1, activityId: '1', workflowType: 'test', isLocal: false } as unknown as Info,
    new Promise<never>(() => undefined),
    new AbortController().signal,
    (details?: unknown) => heartbeats.push(details),
    undefined,
    log as never,
    noopMetricMeter,
    {},
  );
  return { result: asyncLocalStorage.run(context, work), heartbeats };
}
