/**
 * Webhook fixtures for suites on the shared stack: a receiver that records what it gets, and the fast retry schedule
 * every suite's dispatcher uses (dispatchers of concurrent suites claim each other's rows, so they must agree on it).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookDispatcherOptions } from '../../workers/webhookDispatcher';

/** Three attempts, 300 ms then 600 ms apart; a POST gets 2 s. */
export const TEST_WEBHOOK_SCHEDULE = {
  maxAttempts: 3,
  initialBackoffMs: 300,
  maxBackoffMs: 2_000,
  timeoutMs: 2_000,
  pollMs: 100,
} as const satisfies WebhookDispatcherOptions;

export interface WebhookReceiver {
  /** `${url}/fail…` answers 500; any other path 204. */
  url: string;
  received: { path: string; headers: IncomingHttpHeaders; body: string }[];
  /** A URL nothing listens on: connections are refused. */
  refusedUrl: string;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: WebhookReceiver['received'] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      received.push({ path: request.url ?? '', headers: request.headers, body });
      response.writeHead(request.url?.startsWith('/fail') ? 500 : 204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const refusedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/hook`;
  await new Promise((resolve) => closed.close(resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    refusedUrl,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
