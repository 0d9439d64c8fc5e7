/**
 * A worker's Postgres sessions run at the worker's niceness (storage/db.ts `sessionNice`): on the local stack's
 * Postgres, a pool opened with it has its backend processes (and their autogroups) niced and plans no parallel
 * workers (the postmaster would fork them at nice 0), one opened without it leaves all that alone, and a Postgres that
 * is not on this machine is never touched. A pool opened with `sessionSliceUs` (serving's feature lookups) has its
 * backends ask for that scheduler slice.
 */
import { getPriority } from 'node:os';
import { afterAll, expect, it } from 'vitest';
import { closeDb, connectDb, isLocalDatabase, type Db } from '../../storage/db';
import { loadConfig } from '../../config/env';
import { autogroupNice, kernelHasAutogroups, sliceOf } from '../../config/priority';

const pools: Db[] = [];
afterAll(async () => {
  for (const pool of pools) await closeDb(pool);
});

/** The niceness of a pool's backend, and of its autogroup (each backend leads a session of its own). */
async function backendNice(db: Db): Promise<{ nice: number; autogroup: number | undefined }> {
  const client = await db.$client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return { nice: getPriority(rows[0]!.pid), autogroup: autogroupNice(rows[0]!.pid) };
  } finally {
    client.release();
  }
}

/** How many parallel workers the session plans for a scan that parallel query is made to want (cost settings). */
async function workersPlanned(db: Db): Promise<number> {
  const client = await db.$client.connect();
  try {
    await client.query('BEGIN');
    for (const setting of ['parallel_setup_cost', 'parallel_tuple_cost', 'min_parallel_table_scan_size']) {
      await client.query(`SET LOCAL ${setting} = 0`);
    }
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(
      'EXPLAIN SELECT count(*) FROM generate_series(1, 10) AS g, pg_class',
    );
    await client.query('ROLLBACK');
    const line = rows.map((row) => row['QUERY PLAN']).find((text) => text.includes('Workers Planned'));
    return line ? Number(/Workers Planned: (\d+)/.exec(line)![1]) : 0;
  } finally {
    client.release();
  }
}

const databaseUrl = loadConfig().databaseUrl;

it.skipIf(!isLocalDatabase(databaseUrl))(
  'a pool opened with sessionNice runs its backends at it, without parallel workers; one without leaves both as they are',
  async () => {
    const niced = connectDb(databaseUrl, 2, { sessionNice: 7 });
    const plain = connectDb(databaseUrl, 2);
    pools.push(niced, plain);
    // Where the kernel has autogroups, each backend leads one (the postmaster setsid()s it) and it is lowered too. Not
    // judged by this process's own: one in the kernel's default group (a CI started from init's session) shows none.
    const hasAutogroups = kernelHasAutogroups();
    expect(await backendNice(niced)).toEqual({ nice: 7, autogroup: hasAutogroups ? 7 : undefined });
    expect(await backendNice(plain)).toEqual({ nice: 0, autogroup: hasAutogroups ? 0 : undefined });
    expect(await workersPlanned(niced)).toBe(0);
    expect(await workersPlanned(plain)).toBeGreaterThan(0);
  },
);

/** The pid of the backend a pool hands out (a pool of one: the same backend each time). */
async function backendPid(db: Db): Promise<number> {
  const { rows } = await db.$client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]!.pid;
}

// EEVDF's custom slices (Linux 6.12+): such a kernel reads a fair thread's slice back; an older one reads 0.
const customSlices = (sliceOf(process.pid) ?? 0) > 0;

it.skipIf(!isLocalDatabase(databaseUrl) || !customSlices)(
  'a pool opened with sessionSliceUs has its backends take that scheduler slice; one without leaves the default',
  async () => {
    const short = connectDb(databaseUrl, 1, { sessionSliceUs: 300 });
    const plain = connectDb(databaseUrl, 1);
    pools.push(short, plain);
    const shortPid = await backendPid(short);
    // set after the connection opens, without blocking it
    let slice = sliceOf(shortPid);
    for (let tries = 0; tries < 50 && slice !== 300; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      slice = sliceOf(shortPid);
    }
    expect(slice).toBe(300);
    expect(getPriority(shortPid)).toBe(0);
    expect(sliceOf(await backendPid(plain))).not.toBe(300);
  },
);

it('only a loopback host or a Unix socket counts as this machine', () => {
  expect(isLocalDatabase('postgres://u:p@127.0.0.1:5432/db')).toBe(true);
  expect(isLocalDatabase('postgres://u:p@localhost/db')).toBe(true);
  expect(isLocalDatabase('postgres://u:p@[::1]:5432/db')).toBe(true);
  expect(isLocalDatabase('postgres://u@/db?host=/var/run/postgresql')).toBe(true);
  expect(isLocalDatabase('postgres://u:p@db.internal:5432/db')).toBe(false);
  expect(isLocalDatabase('postgres://u:p@10.0.0.5/db')).toBe(false);
  expect(isLocalDatabase('not a url')).toBe(false);
});
