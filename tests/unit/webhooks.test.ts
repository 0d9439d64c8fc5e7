/** The webhook dispatcher's pure parts: the retry schedule and the signed request a receiver gets. */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_SCHEDULE, retryDelayMs, webhookRequest } from '../../workers/webhookDispatcher';

describe('webhook retries', () => {
  it('the default schedule makes six attempts over about half an hour, then gives up', () => {
    const waits = [1, 2, 3, 4, 5].map((attempt) => retryDelayMs(attempt, DEFAULT_RETRY_SCHEDULE)!);
    expect(waits).toEqual([60_000, 120_000, 240_000, 480_000, 900_000]);
    expect(waits.reduce((a, b) => a + b, 0) / 60_000).toBeCloseTo(30, 0);
    expect(retryDelayMs(6, DEFAULT_RETRY_SCHEDULE)).toBeNull();
  });

  it('doubles each wait up to the cap', () => {
    const schedule = { maxAttempts: 10, initialBackoffMs: 100, maxBackoffMs: 500 };
    expect([1, 2, 3, 4, 9].map((attempt) => retryDelayMs(attempt, schedule))).toEqual([100, 200, 400, 500, 500]);
    expect(retryDelayMs(10, schedule)).toBeNull();
  });
});

describe('webhook requests', () => {
  const delivery = {
    id: '6f1c0b1e-8a43-4a57-9d37-1f0b0a7c2d11',
    event: 'model_version_alias.moved' as const,
    modelName: 'demand',
    payload: { alias: 'champion', from_version: 1, to_version: 2 },
  };

  it('signs the exact body with HMAC-SHA256 of the secret and names the event and delivery', () => {
    const { body, headers } = webhookRequest({ ...delivery, secret: 'k3y' });
    expect(JSON.parse(body)).toEqual({
      event: 'model_version_alias.moved',
      delivery_id: delivery.id,
      model: 'demand',
      alias: 'champion',
      from_version: 1,
      to_version: 2,
    });
    expect(headers['x-flywheel-signature']).toBe(`sha256=${createHmac('sha256', 'k3y').update(body).digest('hex')}`);
    expect(headers).toMatchObject({
      'x-flywheel-event': 'model_version_alias.moved',
      'x-flywheel-delivery': delivery.id,
      'content-type': 'application/json',
    });
    expect(JSON.stringify(headers)).not.toContain('k3y');
  });

  it('sends no signature header without a secret', () => {
    expect(webhookRequest({ ...delivery, secret: null }).headers).not.toHaveProperty('x-flywheel-signature');
  });
});
