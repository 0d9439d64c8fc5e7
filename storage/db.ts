/** The Postgres connection (drizzle over pg) and the checked-in migrations. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from '../schema/index';
import { PROJECT_ROOT } from '../config/env';
import { lowerPriority, shortenThreadSlices } from '../config/priority';

export type Db = NodePgDatabase<typeof schema> & { $client: pg.Pool };

export interface DbOptions {
  /**
   * The niceness this pool's Postgres sessions run at when Postgres runs on this machine (0 leaves them as they are).
   * A worker passes its own: its bulk SQL (materialisations, monitor scans, ingest) then yields the CPU to the
   * serving and API processes' queries as the worker itself does, instead of running at full priority in Postgres.
   */
  sessionNice?: number;
  /**
   * Sessions plan each execution of a prepared statement for its own parameters (`plan_cache_mode =
   * force_custom_plan`): a pool whose hot statement is prepared saves the parse on every call and never keeps a
   * generic plan made while a table was still empty (a sequential scan, then 200–500 ms per lookup once it filled).
   */
  customPlans?: boolean;
  /**
   * The scheduler slice, in µs, this pool's Postgres backends ask for when Postgres runs on this machine (0 or unset
   * leaves the kernel's; config/priority.ts `shortenSlices`). For a pool that answers requests (serving's feature
   * lookups): its backend, woken by a query, then preempts a busy backend (a materialisation's) at once instead of
   * waiting out that backend's slice. Best effort, set asynchronously after the connection opens.
   */
  sessionSliceUs?: number;
}

/** The startup option `customPlans` sets; `plansPerExecution` looks for it. */
const CUSTOM_PLANS = '-c plan_cache_mode=force_custom_plan';

/** Whether a pool was opened with `customPlans`. */
export function plansPerExecution(db: Db): boolean {
  return String((db.$client.options as { options?: unknown }).options ?? '').includes(CUSTOM_PLANS);
}

export function connectDb(databaseUrl: string, max = 5, options: DbOptions = {}): Db {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    // A worker cut off mid-transaction leaves its session holding row locks until TCP gives up (hours): its retried
    // attempts elsewhere would wait on them. Postgres ends such a session after a minute; keepalives notice sooner.
    idle_in_transaction_session_timeout: 60_000,
    keepAlive: true,
    ...(options.customPlans ? { options: CUSTOM_PLANS } : {}),
  });
  // An idle client's network error must not crash a worker; the next query reconnects.
  pool.on('error', () => undefined);
  const nice = options.sessionNice ?? 0;
  if (nice > 0 && isLocalDatabase(databaseUrl)) pool.on('connect', (client) => lowerSessionPriority(client, nice));
  const sliceUs = options.sessionSliceUs ?? 0;
  if (sliceUs > 0 && isLocalDatabase(databaseUrl)) {
    pool.on('connect', (client) => void shortenSessionSlice(client, sliceUs));
  }
  return drizzle(pool, { schema }) as Db;
}

/** Whether the URL names a Postgres on this machine (loopback or a Unix socket): only then are its backends local. */
export function isLocalDatabase(databaseUrl: string): boolean {
  if (/[?&]host=(\/|%2F)/i.test(databaseUrl)) return true;
  try {
    return ['localhost', '127.0.0.1', '[::1]'].includes(new URL(databaseUrl).hostname);
  } catch {
    return false;
  }
}

/**
 * Runs the session's Postgres backend at `nice` (as the `prioritize` extension's set_backend_priority does), best
 * effort: only a backend process of this machine that is a child of a postmaster (a Postgres behind a forwarded port,
 * in a container, has pids of another namespace) and only where the OS allows it (raising niceness needs no
 * privilege when the processes share a user). Returns whether it did. A niced session keeps its locks longer under
 * load: meant for bulk, background work, never for a request's queries.
 *
 * The session then starts no parallel workers (`max_parallel_workers_per_gather = 0`, queued before any query of
 * the caller's): the postmaster forks them at its own priority, and a monitor's drift check beside serving scanned
 * the predictions table in two parallel workers at nice 0. Its scans take longer and yield the CPU as the worker does.
 */
export function lowerSessionPriority(client: pg.ClientBase, nice: number): boolean {
  const pid = localBackendPid(client);
  // Each backend leads a session of its own: its autogroup is lowered too (config/priority.ts).
  if (!pid || !lowerPriority(pid, nice)) return false;
  // A failure here surfaces as the caller's own query failing on the same broken connection.
  client.query('SET max_parallel_workers_per_gather = 0').catch(() => undefined);
  return true;
}

/**
 * Asks for `sliceUs` µs scheduler slices for the session's Postgres backend (DbOptions.sessionSliceUs), when it is a
 * backend process of this machine. Resolves to whether the backend took it.
 */
export async function shortenSessionSlice(client: pg.ClientBase, sliceUs: number): Promise<boolean> {
  const pid = localBackendPid(client);
  if (!pid) return false;
  return (await shortenThreadSlices([pid], sliceUs)) === 1;
}

/** The pid of the session's backend where it is a Postgres backend process of this machine, else undefined. */
function localBackendPid(client: pg.ClientBase): number | undefined {
  // The backend's pid came with the connection (BackendKeyData): no query, so none races the session's first.
  const pid = (client as pg.ClientBase & { processID?: number }).processID;
  return pid && isPostgresBackend(pid) ? pid : undefined;
}

function isPostgresBackend(pid: number): boolean {
  try {
    const comm = (p: number | string) => readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    const parent = /^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return comm(pid) === 'postgres' && parent !== undefined && comm(parent) === 'postgres';
  } catch {
    return false;
  }
}

export async function migrateDb(db: Db): Promise<void> {
  await migrate(db, { migrationsFolder: join(PROJECT_ROOT, 'schema', 'migrations') });
}

export async function closeDb(db: Db): Promise<void> {
  await db.$client.end();
}
