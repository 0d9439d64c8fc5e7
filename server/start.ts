/** Starts the Flywheel API server in this process (Flywheel's /api/v1, MLflow's REST API, artifacts, /openapi.json). */
import { serve } from '@hono/node-server';
import { closeDb, connectDb } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { temporalClient } from '../storage/temporal';
import { loadConfig } from '../config/env';
import type { Client } from '@temporalio/client';
import { createApp } from './app';
import { componentLogger } from '../observability/log';
import { startTracing } from '../observability/tracing';

export async function startServer(
  options: { port?: number; host?: string } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const config = loadConfig();
  const db = connectDb(config.databaseUrl, 10);
  let temporal: Promise<Client> | undefined;
  const app = createApp(
    {
      db,
      objects: new S3ObjectStore(config.s3),
      config,
      temporal: () =>
        (temporal ??= startTracing(config.observability.tracing, 'server')
          // With tracing on, a pipeline the server starts opens its trace here (StartWorkflow), not at the worker.
          .then((tracing) => temporalClient(config.temporal, { interceptors: tracing?.clientInterceptors }))
          .catch((error: unknown) => {
            // Temporal down when first asked: the next request tries again instead of failing for ever.
            temporal = undefined;
            throw error;
          })),
    },
    (line) => componentLogger('server').error(line),
  );
  const port = options.port ?? config.server.port;
  const host = options.host ?? config.server.host;
  const server = serve({ fetch: app.fetch, port, hostname: host });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  // Slow or idle clients must not hold sockets for ever.
  const http = server as unknown as import('node:http').Server;
  http.headersTimeout = 20_000;
  // Artifact uploads stream for as long as they take; headers and idle keep-alives are what is bounded.
  http.requestTimeout = 0;
  http.keepAliveTimeout = 5_000;
  http.maxConnections = 4_096;
  const address = http.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return {
    url: `http://${host}:${bound}`,
    async close() {
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await closeDb(db);
    },
  };
}
