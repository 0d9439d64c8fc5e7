/** The Postgres connection (drizzle over pg) and the checked-in migrations. */
import { join } from 'node:path';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from '../schema/index';
import { PROJECT_ROOT } from '../config/env';

export type Db = NodePgDatabase<typeof schema> & { $client: pg.Pool };

export function connectDb(databaseUrl: string, max = 5): Db {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    // A worker cut off mid-transaction leaves its session holding row locks until TCP gives up (hours): its retried
    // attempts elsewhere would wait on them. Postgres ends such a session after a minute; keepalives notice sooner.
    idle_in_transaction_session_timeout: 60_000,
    keepAlive: true,
  });
  // An idle client's network error must not crash a worker; the next query reconnects.
  pool.on('error', () => undefined);
  return drizzle(pool, { schema }) as Db;
}

export async function migrateDb(db: Db): Promise<void> {
  await migrate(db, { migrationsFolder: join(PROJECT_ROOT, 'schema', 'migrations') });
}

export async function closeDb(db: Db): Promise<void> {
  await db.$client.end();
}
