/**
 * The app in process (no port) on the local stack's database, with a suite's own admin, write and read tokens and a
 * `call()` that sends GET parameters as the query string and other bodies as JSON (as MLflow's client does).
 */
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll } from 'vitest';
import { like } from 'drizzle-orm';
import type { Hono } from 'hono';
import { apiTokens } from '../../schema/models';
import { createApp } from '../../server/app';
import { closeDb, connectDb, type Db } from '../../storage/db';
import { S3ObjectStore } from '../../storage/objectStore';
import { temporalClient } from '../../storage/temporal';
import { createToken, hashToken } from '../../store/tokens';
import { loadConfig } from '../../config/env';
import { unique } from './harness';

export interface Answer {
  status: number;
  body: Record<string, any>;
}

export interface ApiSuite {
  suite: string;
  db: Db;
  app: Hono;
  tokens: { admin: string; write: string; read: string };
  call(method: string, path: string, token: string | undefined, payload?: Record<string, unknown>): Promise<Answer>;
  close(): Promise<void>;
}

export async function startApiSuite(prefix: string): Promise<ApiSuite> {
  const config = loadConfig();
  const suite = unique(prefix);
  const db = connectDb(config.databaseUrl, 4);
  let temporal: Client | undefined;
  const app = createApp({
    db,
    objects: new S3ObjectStore(config.s3),
    config,
    temporal: async () => (temporal ??= await temporalClient(config.temporal)),
  });
  // The suite's own admin token, inserted hashed: `createToken` needs an admin token once any exists.
  const admin = `fw_admin_test_${suite}`;
  await db.insert(apiTokens).values({ name: `${suite}-admin`, scope: 'admin', hash: hashToken(admin) });
  const tokens = {
    admin,
    write: await createToken(db, `${suite}-write`, 'write', admin),
    read: await createToken(db, `${suite}-read`, 'read', admin),
  };
  return {
    suite,
    db,
    app,
    tokens,
    async call(method, path, token, payload) {
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      let url = path;
      let body: string | undefined;
      if (method === 'GET' && payload) {
        const query = new URLSearchParams();
        for (const [key, value] of Object.entries(payload))
          for (const item of [value].flat()) query.append(key, String(item));
        url = `${path}?${query}`;
      } else if (payload) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(payload);
      }
      const response = await app.request(url, { method, headers, body });
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    },
    async close() {
      await temporal?.connection.close();
      await db
        .update(apiTokens)
        .set({ revokedAt: new Date() })
        .where(like(apiTokens.name, `${suite}-%`));
      await closeDb(db);
    },
  };
}

/** Starts the suite before the file's tests and closes it after them; its fields are read once it has started. */
export function useApiSuite(
  prefix: string,
): Pick<ApiSuite, 'tokens' | 'call'> & { readonly db: Db; readonly suite: string } {
  let current: ApiSuite | undefined;
  const tokens = { admin: '', write: '', read: '' };
  beforeAll(async () => {
    current = await startApiSuite(prefix);
    Object.assign(tokens, current.tokens);
  });
  afterAll(async () => {
    await current?.close();
  });
  const started = () => {
    if (!current) throw new Error(`the ${prefix} API suite has not started`);
    return current;
  };
  return {
    tokens,
    call: (...args) => started().call(...args),
    get db() {
      return started().db;
    },
    get suite() {
      return started().suite;
    },
  };
}
