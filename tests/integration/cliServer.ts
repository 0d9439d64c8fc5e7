/**
 * The Flywheel server the CLI talks to in a suite: in process on a free port, on the local stack's database and
 * Temporal, starting workflows on the suite's own task queue (a harness also gives its training queues and serving
 * process), with the suite's own admin, write and read tokens. `env(token)` is what a `cli()` call needs to use it.
 */
import type { Client } from '@temporalio/client';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { like } from 'drizzle-orm';
import { apiTokens } from '../../schema/models';
import { createApp } from '../../server/app';
import { closeDb, connectDb } from '../../storage/db';
import { S3ObjectStore } from '../../storage/objectStore';
import { temporalClient } from '../../storage/temporal';
import { createToken, hashToken } from '../../store/tokens';
import { loadConfig } from '../../config/env';
import { unique, type Harness } from './harness';

export interface CliServer {
  url: string;
  tokens: { admin: string; write: string; read: string };
  /** FLYWHEEL_URL, and FLYWHEEL_TOKEN (the suite's write token unless one is given). */
  env(token?: string): Record<string, string>;
  close(): Promise<void>;
}

/** `target`: the suite's main task queue, or its harness (queues and serving process). */
export async function startCliServer(target: string | Harness): Promise<CliServer> {
  const base = loadConfig();
  const harness = typeof target === 'string' ? undefined : target;
  const config = {
    ...base,
    taskQueues: harness ? { ...base.taskQueues, ...harness.queues } : { ...base.taskQueues, main: target as string },
    serving: harness ? { ...base.serving, url: harness.servingUrl } : base.serving,
  };
  const db = connectDb(config.databaseUrl, 4);
  const suite = unique('cli');
  // Inserted hashed: `createToken` needs an admin token once any exists.
  const admin = `fw_admin_test_${suite}`;
  await db.insert(apiTokens).values({ name: `${suite}-admin`, scope: 'admin', hash: hashToken(admin) });
  const tokens = {
    admin,
    write: await createToken(db, `${suite}-write`, 'write', admin),
    read: await createToken(db, `${suite}-read`, 'read', admin),
  };
  let temporal: Promise<Client> | undefined;
  const app = createApp({
    db,
    objects: new S3ObjectStore(config.s3),
    config,
    temporal: () =>
      (temporal ??= temporalClient(config.temporal).catch((error: unknown) => {
        temporal = undefined;
        throw error;
      })),
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as unknown as Server;
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    tokens,
    env: (token = tokens.write) => ({ FLYWHEEL_URL: url, FLYWHEEL_TOKEN: token }),
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await (await temporal?.catch(() => undefined))?.connection.close();
      // No admin token may outlive the suite: other suites rely on bootstrapping the first one.
      await db
        .update(apiTokens)
        .set({ revokedAt: new Date() })
        .where(like(apiTokens.name, `${suite}-%`));
      await closeDb(db);
    },
  };
}
