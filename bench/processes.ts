/**
 * What the HTTP benches (serve, features) share: child processes stopped on exit, CPU accounting from /proc, waiting
 * for a server, and one load phase of bench/serveLoad.ts in its own process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { PROJECT_ROOT } from '../config/env';
import { cpuSeconds, statFields } from '../config/procStat';
import { niced } from '../scripts/proc';
import type { Db } from '../storage/db';
import type { LoadResult, LoadSpec } from './serveLoad';

/** CPU seconds (user + system) of a process and of its reaped children, and its parent; undefined when it is gone. */
export function statOf(pid: number | string): { ppid: number; self: number; children: number } | undefined {
  const f = statFields(pid);
  if (!f) return undefined;
  return { ppid: Number(f[1]), ...cpuSeconds(f) };
}

/** CPU seconds a process has used so far; 0 when it is gone. */
export const cpuSecondsOf = (pid: number | string | undefined) => (pid ? (statOf(pid)?.self ?? 0) : 0);

/** Busy and total jiffies of the whole machine (/proc/stat). */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - (line[3] ?? 0) - (line[4] ?? 0), total };
}

export const busyPct = (m0: { busy: number; total: number }, m1: { busy: number; total: number }) =>
  (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total);

/** The bench's child processes, so a failure or a signal stops every one of them. */
export const children = new Set<ChildProcess>();

/** SIGTERM, then SIGKILL after `timeoutMs`; resolves when the process is gone. */
export function stopChild(child: ChildProcess, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      children.delete(child);
      return resolve();
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      children.delete(child);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  child?: ChildProcess,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child && (child.exitCode !== null || child.signalCode !== null))
      throw new Error(`${what}: the process exited (${child.exitCode ?? child.signalCode})`);
    if (await probe().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what}: not ready after ${timeoutMs / 1000} s`);
}

export interface PhaseCpu {
  server_cpu_s: number;
  machine_busy_pct: number;
}

/**
 * The fixed-rate phase the serving benches share (serve, serve-onnx, features): open loop over 16 connections, answers
 * still outstanding after the window awaited 10 s. The rate, timing, target and ids are the bench's.
 */
export function openLoopLoad<T extends Partial<LoadSpec>>(
  spec: T,
): T & Pick<LoadSpec, 'mode' | 'connections' | 'graceS'> {
  return { mode: 'open', connections: 16, graceS: 10, ...spec };
}

/**
 * A load generator's command line: `node --import tsx <args>` under nice(1) at `nice`, so that every thread of it runs
 * at that niceness (a setPriority after the spawn reached its main thread and the threads started after it, not those
 * Node had already started). Not root, a negative nice is left out: the generator's send lag, which the benches
 * report, shows what that costs.
 */
export function generatorCommand(nice: number, args: string[]): [string, string[]] {
  const allowed = nice < 0 && process.getuid?.() !== 0 ? 0 : nice;
  return niced(allowed, process.execPath, ['--import', 'tsx', ...args]);
}

/**
 * One load phase: bench/serveLoad.ts in a child process (never the server's event loop) at `nice` (0: unchanged; as
 * root a negative nice keeps an open-loop generator's sends on time), with the server's CPU and the machine's busy
 * share over the phase.
 */
export async function runLoadPhase(
  spec: LoadSpec,
  options: { dir: string; serverPid?: number; nice: number },
): Promise<LoadResult & PhaseCpu> {
  const specFile = join(options.dir, `load-${spec.idPrefix.replace(/[^a-z0-9-]/gi, '_')}.json`);
  writeFileSync(specFile, JSON.stringify(spec));
  const cpu0 = cpuSecondsOf(options.serverPid);
  const m0 = machineTicks();
  const child = spawn(...generatorCommand(options.nice, [join(PROJECT_ROOT, 'bench', 'serveLoad.ts'), specFile]), {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  children.delete(child);
  const server_cpu_s = cpuSecondsOf(options.serverPid) - cpu0;
  const m1 = machineTicks();
  if (code !== 0) throw new Error(`load generator exited with ${code}\n${stdout}`);
  return {
    ...(JSON.parse(stdout.trim().split('\n').pop()!) as LoadResult),
    server_cpu_s,
    machine_busy_pct: busyPct(m0, m1),
  };
}

/** A TCP port free on loopback right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Lost prediction logs: of the request ids answered 200 (`<prefix>m<seq>`), those not in `predictions` (rows after
 * `baseId`) once the log had up to `drainS` seconds to drain. Polls every 250 ms.
 */
export async function lostPredictionLogs(
  db: Db,
  input: { baseId: number; prefix: string; okIds: readonly number[]; drainS: number },
): Promise<{ answered: number; logged: number; missing: number; drainS: number }> {
  const answered = new Set(input.okIds.map((seq) => `${input.prefix}m${seq}`));
  const started = performance.now();
  for (;;) {
    const rows = await db.execute<{ request_id: string }>(
      sql`select request_id from predictions where id > ${input.baseId} and request_id like ${`${input.prefix}m%`}`,
    );
    const found = new Set(rows.rows.map((r) => r.request_id));
    const missing = [...answered].filter((id) => !found.has(id)).length;
    const waited = (performance.now() - started) / 1000;
    if (missing === 0 || waited >= input.drainS)
      return { answered: answered.size, logged: found.size, missing, drainS: waited };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
