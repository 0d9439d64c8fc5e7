/**
 * The registry's webhooks and their outbox: subscriptions, the deliveries a registry change writes in its own
 * transaction,
 * and what the dispatcher (workers/webhookDispatcher.ts) claims and records. Secrets leave this store only in a claim.
 */
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import { registryWebhooks, webhookDeliveries } from '../schema/models';
import type { Db } from '../storage/db';
import type { Executor } from './experiments';

export const WEBHOOK_EVENTS = [
  'model_version.created',
  'model_version_alias.moved',
  'model_version_alias.deleted',
] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number];

/** A subscription as callers see it: whether it signs, never its secret. */
export interface Webhook {
  id: number;
  url: string;
  events: WebhookEventName[];
  modelName: string | null;
  hasSecret: boolean;
  createdAt: Date;
}

export const DELIVERY_STATUSES = ['pending', 'delivered', 'dead'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface WebhookDelivery {
  /** The `delivery_id` (and `x-flywheel-delivery` header) receivers deduplicate on. */
  id: string;
  /** Null once the webhook was removed. */
  webhookId: number | null;
  url: string | null;
  event: WebhookEventName;
  modelName: string;
  payload: Record<string, unknown>;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

/** A claimed delivery with what sending it needs; `url` is null when its webhook was removed meanwhile. */
export interface ClaimedDelivery {
  id: string;
  event: WebhookEventName;
  modelName: string;
  payload: Record<string, unknown>;
  /** This attempt's number (1 for the first). */
  attempt: number;
  url: string | null;
  secret: string | null;
}

const toWebhook = (row: typeof registryWebhooks.$inferSelect): Webhook => ({
  id: row.id,
  url: row.url,
  events: row.events as WebhookEventName[],
  modelName: row.modelName,
  hasSecret: row.secret !== null,
  createdAt: row.createdAt,
});

export async function addWebhook(
  db: Executor,
  input: { url: string; events: WebhookEventName[]; modelName?: string | null; secret?: string | null },
): Promise<Webhook> {
  const [row] = await db
    .insert(registryWebhooks)
    .values({ url: input.url, events: input.events, modelName: input.modelName ?? null, secret: input.secret ?? null })
    .returning();
  return toWebhook(row!);
}

export async function listWebhooks(db: Executor): Promise<Webhook[]> {
  return (await db.select().from(registryWebhooks).orderBy(asc(registryWebhooks.id))).map(toWebhook);
}

/** Removes a webhook; its pending deliveries become dead letters in the same transaction (the records stay). */
export async function removeWebhook(db: Db, id: number): Promise<boolean> {
  if (!Number.isSafeInteger(id)) return false;
  return db.transaction(async (tx) => {
    await tx
      .update(webhookDeliveries)
      .set({ status: 'dead', lastError: `webhook #${id} was removed`, updatedAt: new Date() })
      .where(and(eq(webhookDeliveries.webhookId, id), eq(webhookDeliveries.status, 'pending')));
    return (
      (await tx.delete(registryWebhooks).where(eq(registryWebhooks.id, id)).returning({ id: registryWebhooks.id }))
        .length > 0
    );
  });
}

/**
 * Queues `event` for every webhook that subscribes to it on `modelName`: call it inside the transaction that makes the
 * change, so the event exists exactly when the change does. One statement; answers how many deliveries it queued.
 */
export async function enqueueWebhookEvent(
  tx: Executor,
  event: WebhookEventName,
  modelName: string,
  payload: Record<string, unknown>,
): Promise<number> {
  const queued = await tx.execute(sql`
    insert into ${webhookDeliveries} (webhook_id, event, model_name, payload)
    select w.id, ${event}, ${modelName}, ${JSON.stringify(payload)}::jsonb from ${registryWebhooks} w
    where (w.model_name is null or w.model_name = ${modelName}) and w.events @> ${JSON.stringify([event])}::jsonb`);
  return queued.rowCount ?? 0;
}

/**
 * Takes up to `limit` due deliveries (`FOR UPDATE SKIP LOCKED`, so dispatchers never share one) and leases them for
 * `leaseMs`: counted as an attempt now, so a process that dies mid-POST neither loses the row nor retries it for ever.
 */
export async function claimDueDeliveries(
  db: Executor,
  input: { limit: number; leaseMs: number },
): Promise<ClaimedDelivery[]> {
  const result = await db.execute<{
    id: string;
    event: WebhookEventName;
    model_name: string;
    payload: Record<string, unknown>;
    attempts: number;
    url: string | null;
    secret: string | null;
  }>(sql`
    with due as (
      select id from ${webhookDeliveries}
      where status = 'pending' and next_attempt_at <= now()
      order by next_attempt_at limit ${input.limit}
      for update skip locked
    )
    update ${webhookDeliveries} d
    set attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => ${input.leaseMs / 1000}), updated_at = now()
    from due where d.id = due.id
    returning d.id, d.event, d.model_name, d.payload, d.attempts,
      (select w.url from ${registryWebhooks} w where w.id = d.webhook_id) as url,
      (select w.secret from ${registryWebhooks} w where w.id = d.webhook_id) as secret`);
  return result.rows.map((r) => ({
    id: r.id,
    event: r.event,
    modelName: r.model_name,
    payload: r.payload,
    attempt: r.attempts,
    url: r.url,
    secret: r.secret,
  }));
}

export async function markDelivered(db: Executor, id: string): Promise<void> {
  await db
    .update(webhookDeliveries)
    .set({ status: 'delivered', lastError: null, deliveredAt: new Date(), updatedAt: new Date() })
    .where(eq(webhookDeliveries.id, id));
}

/** A failed attempt: retried at `retryAt`, or, with null, kept as a dead letter. A row already dead stays dead. */
export async function markFailed(
  db: Executor,
  id: string,
  input: { error: string; retryAt: Date | null },
): Promise<void> {
  await db
    .update(webhookDeliveries)
    .set({
      status: input.retryAt ? 'pending' : 'dead',
      lastError: input.error.slice(0, 1000),
      nextAttemptAt: input.retryAt ?? sql`${webhookDeliveries.nextAttemptAt}`,
      updatedAt: new Date(),
    })
    .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.status, 'pending')));
}

/** Recent deliveries, newest first: all, or those of one status (`dead`: the dead letters). */
export async function listDeliveries(
  db: Executor,
  input: { status?: DeliveryStatus; webhookId?: number; limit?: number } = {},
): Promise<WebhookDelivery[]> {
  const rows = await db
    .select({ delivery: webhookDeliveries, url: registryWebhooks.url })
    .from(webhookDeliveries)
    .leftJoin(registryWebhooks, eq(registryWebhooks.id, webhookDeliveries.webhookId))
    .where(
      and(
        input.status ? eq(webhookDeliveries.status, input.status) : undefined,
        input.webhookId === undefined ? undefined : eq(webhookDeliveries.webhookId, input.webhookId),
      ),
    )
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(input.limit ?? 100);
  return rows.map(({ delivery: d, url }) => ({
    id: d.id,
    webhookId: d.webhookId,
    url,
    event: d.event as WebhookEventName,
    modelName: d.modelName,
    payload: d.payload,
    status: d.status as DeliveryStatus,
    attempts: d.attempts,
    nextAttemptAt: d.nextAttemptAt,
    lastError: d.lastError,
    createdAt: d.createdAt,
    deliveredAt: d.deliveredAt,
  }));
}
