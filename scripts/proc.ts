/** Small process helpers for the local stack: detached starts, liveness, free ports, waiting on conditions. */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { childEnv } from '../config/env';
import { lowerAutogroup } from '../config/priority';

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a long-lived process that outlives this one, logging to `logFile`, at niceness `nice` (niced). Detached, it
 * leads a session of its own, so a positive `nice` goes to that session's autogroup too (config/priority.ts): under
 * autogroup scheduling the process's own niceness ranks it only within its session, not against serving's.
 */
export function startDetached(
  command: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv = childEnv(),
  cwd?: string,
  nice = 0,
): number {
  mkdirSync(dirname(logFile), { recursive: true });
  const log = openSync(logFile, 'a', 0o600);
  const child = spawn(...niced(nice, command, args), { detached: true, stdio: ['ignore', log, log], env, cwd });
  child.unref();
  if (!child.pid) throw new Error(`could not start ${command}`);
  // The autogroup alone: `nice` adds to the niceness it finds, so a setPriority here would race it.
  if (nice > 0) lowerAutogroup(child.pid, nice);
  return child.pid;
}

export async function stopProcess(pid: number | undefined, graceMs = 10_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(-pid!, 'SIGTERM');
  } catch {
    try {
      process.kill(pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    try {
      process.kill(-pid!, 'SIGKILL');
    } catch {
      try {
        process.kill(pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** The preferred port when free, else the next free ones after it. */
export async function choosePort(preferred: number, avoid: number[] = []): Promise<number> {
  for (let port = preferred; port < preferred + 200; port++) {
    if (!avoid.includes(port) && (await portIsFree(port))) return port;
  }
  throw new Error(`no free port in ${preferred}..${preferred + 199}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns true; fails with `what` and the log to read after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  logFile?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(
    `${what} did not become ready within ${Math.round(timeoutMs / 1000)} s${logFile ? `; see ${logFile}` : ''}`,
  );
}

/**
 * Runs `work` holding an exclusive lock file (O_EXCL): two `flywheel up` at once (a test and a developer, or
 * several test processes) would otherwise each start their own Temporal, MinIO and Postgres on the same data.
 * A lock left by a dead process is taken over.
 */
export async function withLockFile<T>(path: string, work: () => Promise<T>, timeoutMs = 900_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx', mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(path, 'utf8').trim() || NaN);
      if (!isAlive(holder)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() - started > timeoutMs) throw new Error(`another "flywheel up" (pid ${holder}) holds ${path}`);
      await sleep(250);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(path, { force: true });
  }
}

/**
 * `command` under `nice -n <nice>` (coreutils execs it: the pid is the command's, and every thread it starts inherits
 * the priority). Workers share the machine with serving and the API server: batch work (training, ingest, monitor
 * scans) yields the CPU, so a prediction's few milliseconds are not queued behind an epoch.
 */
export function niced(nice: number, command: string, args: string[]): [string, string[]] {
  return nice === 0 ? [command, args] : ['nice', ['-n', String(nice), command, ...args]];
}
