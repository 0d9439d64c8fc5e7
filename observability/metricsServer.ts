/** A bare `/metrics` HTTP listener for processes without an HTTP server of their own (workers). */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { enableProcessMetrics, metricsText } from './metrics';

/** Answers `GET /metrics` with the registry's text; true when it did (other paths are the caller's). */
export async function answerMetrics(request: IncomingMessage, response: ServerResponse): Promise<boolean> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' || path !== '/metrics') return false;
  const { contentType, body } = await metricsText();
  response.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(body);
  return true;
}

export interface MetricsListener {
  /** `http://host:port/metrics` */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Listens on `host:port` (0: a free port) and serves only `/metrics`; process metrics are turned on. */
export async function serveMetrics(options: { port: number; host: string }): Promise<MetricsListener> {
  enableProcessMetrics();
  const server = createServer((request, response) => {
    answerMetrics(request, response).then(
      (answered) => {
        if (!answered) response.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics here\n');
      },
      (error: unknown) => response.writeHead(500).end(`metrics: ${(error as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  // A scraper's connection must not keep a draining worker alive.
  server.unref();
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/metrics`,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
