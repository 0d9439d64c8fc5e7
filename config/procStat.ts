/** Reading a local process's /proc/<pid>/stat, for the CPU priority helpers, the stack and the benches. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * The fields of /proc/<pid>/stat after the command name (which may itself hold spaces and parentheses, so the split
 * starts after its last ')'): [0] state, [1] ppid, [2] pgrp, [3] session, …, [11] utime, [12] stime, [13] cutime,
 * [14] cstime (field n of proc(5) at index n − 3). Undefined when the process is gone or not visible.
 */
export function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Clock ticks per second, the unit of stat's CPU times (`getconf CLK_TCK`; 100 where it cannot be asked). */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** CPU seconds (user + system) in stat fields `f`: the process's own, and those of its reaped children. */
export function cpuSeconds(f: string[]): { self: number; children: number } {
  return {
    self: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS,
    children: (Number(f[13]) + Number(f[14])) / CLOCK_TICKS,
  };
}
