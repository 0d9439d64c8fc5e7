/**
 * /api/v1/webhooks (admin): the registry's webhooks — list, add, remove — and their deliveries, dead letters included.
 * A secret is write-only: answers say whether a webhook signs (`hasSecret`), never with what.
 */
import { z } from 'zod';
import { notFound } from '../../config/errors';
import {
  addWebhook,
  DELIVERY_STATUSES,
  listDeliveries,
  listWebhooks,
  removeWebhook,
  WEBHOOK_EVENTS,
  type Webhook,
  type WebhookDelivery,
} from '../../store/webhooks';
import { INT32_MAX } from '../mlflow/wire';
import { route, type RouteSpec } from '../route';

const BASE = '/api/v1/webhooks';
const tags = ['Webhooks'];

const receiverUrl = z
  .string()
  .max(2048)
  .url('must be a URL')
  .refine((url) => !URL.canParse(url) || /^https?:$/.test(new URL(url).protocol), 'must be an http:// or https:// URL');

const webhookJson = (hook: Webhook) => ({
  id: hook.id,
  url: hook.url,
  events: hook.events,
  modelName: hook.modelName,
  createdAt: hook.createdAt,
  hasSecret: hook.hasSecret,
});

const deliveryJson = (d: WebhookDelivery) => ({
  id: d.id,
  webhookId: d.webhookId,
  url: d.url,
  event: d.event,
  modelName: d.modelName,
  status: d.status,
  attempts: d.attempts,
  nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt : null,
  lastError: d.lastError,
  payload: d.payload,
  createdAt: d.createdAt,
  deliveredAt: d.deliveredAt,
});

export const webhookRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: BASE,
    summary: 'Registry webhooks (secrets are never shown)',
    tags,
    scope: 'admin',
    handler: async ({ deps }) => ({ webhooks: (await listWebhooks(deps.db)).map(webhookJson) }),
  }),
  route({
    method: 'post',
    path: BASE,
    summary: 'Add a webhook: POSTs on new versions and alias moves (all models, or one), signed when it has a secret',
    tags,
    scope: 'admin',
    body: z
      .object({
        url: receiverUrl,
        events: z
          .array(z.enum(WEBHOOK_EVENTS))
          .min(1, 'name at least one event')
          .transform((events) => [...new Set(events)]),
        modelName: z.string().min(1).max(256).nullable().optional(),
        secret: z.string().min(1).max(1024).nullable().optional(),
      })
      .strict(),
    handler: async ({ body, c, deps }) => c.json(webhookJson(await addWebhook(deps.db, body)), 201),
  }),
  route({
    method: 'get',
    path: `${BASE}/deliveries`,
    summary: 'Recent deliveries, newest first, with attempts and the last error (`status=dead`: the dead letters)',
    tags,
    scope: 'admin',
    query: z
      .object({
        status: z.enum(DELIVERY_STATUSES).optional(),
        webhookId: z.coerce.number().int().positive().max(INT32_MAX).optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
      })
      .strict(),
    handler: async ({ query, deps }) => ({ deliveries: (await listDeliveries(deps.db, query)).map(deliveryJson) }),
  }),
  route({
    method: 'delete',
    path: `${BASE}/{id}`,
    summary: 'Remove a webhook; its pending deliveries become dead letters',
    tags,
    scope: 'admin',
    params: z
      .object({
        id: z
          .string()
          .regex(/^[1-9]\d{0,9}$/, 'must be a webhook id')
          .transform(Number)
          .refine((id) => id <= INT32_MAX, 'must be a webhook id'),
      })
      .strict(),
    handler: async ({ params, deps }) => {
      if (!(await removeWebhook(deps.db, params.id))) throw notFound(`webhook #${params.id}`);
      return { id: params.id, deleted: true };
    },
  }),
];
