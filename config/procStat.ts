/** Reading a local process's /proc/<pid>/stat, for the CPU priority helpers, the stack and the benches. */
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
