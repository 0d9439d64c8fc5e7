/**
 * The registry webhook dispatcher: claims due outbox rows (store/webhooks.ts), POSTs them signed, with a short timeout
 * and bounded concurrency, retries with exponential backoff and keeps what never got through as a dead letter.
 * All its state is in Postgres, so it resumes after a restart, and any number of processes may run one.
 */
import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootCause } from '../config/errors';
import type { Db } from '../storage/db';
import { claimDueDeliveries, markDelivered, markFailed, type ClaimedDelivery } from '../store/webhooks';
import { componentLogger } from '../observability/log';
import { webhookDeliveries } from '../observability/metrics';

export interface WebhookRetrySchedule {
  /** Attempts before a delivery is dead. @default 6 */
  maxAttempts: number;
  /** Wait after the first failure; each later wait doubles. @default 60_000 (six attempts span about 31 minutes) */
  initialBackoffMs: number;
  /** @default 900_000 */
  maxBackoffMs: number;
}

export interface WebhookDispatcherOptions extends Partial<WebhookRetrySchedule> {
  /** One POST's limit. @default 5_000 */
  timeoutMs?: number;
  /** POSTs in flight at once. @default 8 */
  concurrency?: number;
  /** How often an idle dispatcher looks for due deliveries. @default 1_000 */
  pollMs?: number;
  log?: (line: string) => void;
}

export const DEFAULT_RETRY_SCHEDULE: Readonly<WebhookRetrySchedule> = Object.freeze({
  maxAttempts: 6,
  initialBackoffMs: 60_000,
  maxBackoffMs: 900_000,
});

/** The wait after failed attempt `attempt` (1-based), or null when it was the last. */
export function retryDelayMs(attempt: number, schedule: WebhookRetrySchedule): number | null {
  if (attempt >= schedule.maxAttempts) return null;
  return Math.min(schedule.initialBackoffMs * 2 ** (attempt - 1), schedule.maxBackoffMs);
}

/** The exact bytes a receiver gets, and the headers that identify and sign them. */
export function webhookRequest(delivery: Pick<ClaimedDelivery, 'id' | 'event' | 'modelName' | 'payload' | 'secret'>): {
  body: string;
  headers: Record<string, string>;
} {
  const body = JSON.stringify({
    event: delivery.event,
    delivery_id: delivery.id,
    model: delivery.modelName,
    ...delivery.payload,
  });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'flywheel-webhooks',
    'x-flywheel-event': delivery.event,
    'x-flywheel-delivery': delivery.id,
  };
  if (delivery.secret)
    headers['x-flywheel-signature'] = `sha256=${createHmac('sha256', delivery.secret).update(body).digest('hex')}`;
  return { body, headers };
}

/** A network fault in words: the innermost cause (`connect ECONNREFUSED 127.0.0.1:9`), never a header. */
function faultOf(error: unknown, timeoutMs: number): string {
  if ((error as Error)?.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  return (rootCause(error) as { message?: string } | undefined)?.message ?? String(error);
}

/** Where a receiver lives, for logs: a path or query may carry a token of the receiver's (Slack's URLs do). */
const originOf = (url: string) => (URL.canParse(url) ? new URL(url).origin : 'an unparsable URL');

export interface WebhookDispatcher {
  /** Stops claiming, lets the POSTs in flight end (each within its timeout), then resolves. */
  stop(): Promise<void>;
}

export function startWebhookDispatcher(db: Db, options: WebhookDispatcherOptions = {}): WebhookDispatcher {
  const schedule: WebhookRetrySchedule = {
    maxAttempts: options.maxAttempts ?? DEFAULT_RETRY_SCHEDULE.maxAttempts,
    initialBackoffMs: options.initialBackoffMs ?? DEFAULT_RETRY_SCHEDULE.initialBackoffMs,
    maxBackoffMs: options.maxBackoffMs ?? DEFAULT_RETRY_SCHEDULE.maxBackoffMs,
  };
  const timeoutMs = options.timeoutMs ?? 5_000;
  const concurrency = options.concurrency ?? 8;
  const pollMs = options.pollMs ?? 1_000;
  const dispatcherLog = componentLogger('webhooks');
  const log = options.log ?? ((line: string) => dispatcherLog.warn(line));
  // A claimed row is someone's until its POST has had time to end; after that a crash leaves it to another dispatcher.
  const leaseMs = timeoutMs + 30_000;
  const stopping = new AbortController();
  const stopped = new Promise<void>((resolve) =>
    stopping.signal.addEventListener('abort', () => resolve(), { once: true }),
  );
  const inFlight = new Set<Promise<void>>();

  async function deliver(delivery: ClaimedDelivery): Promise<void> {
    if (delivery.url === null) return markFailed(db, delivery.id, { error: 'the webhook was removed', retryAt: null });
    if (delivery.attempt > schedule.maxAttempts) {
      return markFailed(db, delivery.id, {
        error: `attempt ${delivery.attempt - 1} of ${schedule.maxAttempts} ended without a recorded outcome (its dispatcher stopped or lost the database mid-POST)`,
        retryAt: null,
      });
    }
    const { body, headers } = webhookRequest(delivery);
    let failure: string, retryable: boolean;
    try {
      const response = await fetch(delivery.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body?.cancel();
      if (response.ok) {
        webhookDeliveries.inc({ outcome: 'delivered' });
        return markDelivered(db, delivery.id);
      }
      // The receiver refused this payload: sending it again cannot help (408 and 429 ask for a retry).
      retryable = response.status >= 500 || response.status === 408 || response.status === 429;
      failure = `HTTP ${response.status}${retryable ? '' : ' (not retried)'}`;
    } catch (error) {
      failure = faultOf(error, timeoutMs);
      retryable = true;
    }
    const delay = retryable ? retryDelayMs(delivery.attempt, schedule) : null;
    webhookDeliveries.inc({ outcome: delay === null ? 'dead' : 'retry' });
    await markFailed(db, delivery.id, {
      error: `attempt ${delivery.attempt}: ${failure}`,
      retryAt: delay === null ? null : new Date(Date.now() + delay),
    });
    if (delay === null)
      log(
        `webhook ${delivery.event} for ${delivery.modelName} to ${originOf(delivery.url)} is dead after ${delivery.attempt} attempt(s): ${failure}`,
      );
  }

  async function loop(): Promise<void> {
    let unreachable = false;
    while (!stopping.signal.aborted) {
      const free = concurrency - inFlight.size;
      let claimed: ClaimedDelivery[] = [];
      if (free > 0) {
        try {
          claimed = await claimDueDeliveries(db, { limit: free, leaseMs });
          if (unreachable) log('webhook dispatcher: claiming deliveries again');
          unreachable = false;
        } catch (error) {
          // Once per outage, not once per poll.
          if (!unreachable)
            log(
              `webhook dispatcher: cannot claim deliveries (${faultOf(error, timeoutMs)}); trying again every ${pollMs} ms`,
            );
          unreachable = true;
        }
      }
      for (const delivery of claimed) {
        const sending: Promise<void> = deliver(delivery)
          .catch((error: unknown) =>
            log(
              `webhook dispatcher: delivery ${delivery.id} not recorded (${faultOf(error, timeoutMs)}); it is retried when its lease ends`,
            ),
          )
          .finally(() => inFlight.delete(sending));
        inFlight.add(sending);
      }
      // Every slot busy: go on when one frees; otherwise nothing more is due until the next poll.
      const wake =
        inFlight.size >= concurrency
          ? Promise.race(inFlight)
          : sleep(pollMs, undefined, { signal: stopping.signal }).catch(() => undefined);
      await Promise.race([wake, stopped]);
    }
    await Promise.allSettled(inFlight);
  }

  const running = loop();
  return {
    async stop() {
      stopping.abort();
      await running;
    },
  };
}
