/**
 * Lowering a process's CPU priority so that it holds under Linux's autogroup scheduling.
 *
 * With autogroups on (`/proc/sys/kernel/sched_autogroup_enabled`, the default of most distributions' kernels, and of
 * this project's machines), the scheduler first shares the CPU between sessions, equally whatever their processes'
 * niceness: niceness only ranks processes within one session. A worker `flywheel up` starts detached leads a session
 * of its own, and so does every Postgres backend (the postmaster calls setsid() for each): at nice 10 each still got
 * as much CPU as the whole session of the serving process. A session's share follows the niceness written to
 * `/proc/<pid>/autogroup`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { statFields } from './procStat';

/**
 * Runs process `pid` at niceness `nice` and, when it leads its session, that session's autogroup at the same
 * niceness (lowerAutogroup). Returns whether the process's own niceness was set. For a process started under
 * `nice -n`, call lowerAutogroup alone: `nice` adds to the niceness it finds, and a setPriority that came first would
 * be counted twice.
 */
export function lowerPriority(pid: number, nice: number): boolean {
  try {
    setPriority(pid, nice);
  } catch {
    return false;
  }
  lowerAutogroup(pid, nice);
  return true;
}

/**
 * Runs the autogroup of `pid`'s session at niceness `nice` when `pid` leads that session. Only a session leader's
 * autogroup is changed: a process started from a terminal shares the terminal's session, which must not lose its
 * share. Best effort, returns whether it did: a kernel without autogroups has no such file, and lowering a niceness
 * needs privilege.
 */
export function lowerAutogroup(pid: number, nice: number): boolean {
  if (!leadsSession(pid)) return false;
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether this kernel has autogroups (`/proc/<pid>/autogroup` exists). A process may still show none: one whose session
 * line never called setsid() since init runs in the kernel's default group, whose file is empty.
 */
export function kernelHasAutogroups(): boolean {
  return existsSync('/proc/self/autogroup');
}

/**
 * The niceness of the autogroup `pid` runs in, or undefined where it runs in none: a kernel without autogroups, or a
 * process in the default group (see kernelHasAutogroups).
 */
export function autogroupNice(pid: number): number | undefined {
  try {
    const match = /nice (-?\d+)/.exec(readFileSync(`/proc/${pid}/autogroup`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is its session's leader (field 6 of /proc/<pid>/stat, the session id, is its own pid). */
function leadsSession(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== undefined && Number(fields[3]) === pid;
}
