/**
 * config/priority.ts: a process lowered with lowerPriority runs at that niceness, and where it leads its session
 * (a detached child: a session of its own) its autogroup does too; a child that shares this process's session leaves
 * the session's autogroup alone. config/procStat.ts reads a process's CPU time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { autogroupNice, kernelHasAutogroups, lowerAutogroup, lowerPriority } from '../../config/priority';
import { cpuSeconds, statFields } from '../../config/procStat';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

function sleeper(detached: boolean, command: string[] = ['sleep', '30']): number {
  const child = spawn(command[0]!, command.slice(1), { detached, stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

it.skipIf(!kernelHasAutogroups())(
  "a session leader's autogroup takes its niceness; a process in this session leaves this session's alone",
  () => {
    const own = autogroupNice(process.pid);
    const leader = sleeper(true);
    expect(lowerPriority(leader, 9)).toBe(true);
    expect(getPriority(leader)).toBe(9);
    expect(autogroupNice(leader)).toBe(9);

    const member = sleeper(false);
    expect(lowerPriority(member, 9)).toBe(true);
    expect(getPriority(member)).toBe(9);
    expect(autogroupNice(member)).toBe(own);
    expect(autogroupNice(process.pid)).toBe(own);
  },
);

it.skipIf(!kernelHasAutogroups())(
  'a process started under nice -n keeps that niceness when its autogroup is lowered right after the start',
  async () => {
    // flywheel up's workers: `nice` adds to the niceness it finds, so the process's own is left to it.
    const pid = sleeper(true, ['nice', '-n', '9', 'sleep', '30']);
    expect(lowerAutogroup(pid, 9)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('sleep');
    expect(getPriority(pid)).toBe(9);
    expect(autogroupNice(pid)).toBe(9);
  },
);

it.skipIf(!kernelHasAutogroups())(
  "a session leader whose name holds ') ' and spaces is still found to lead its session",
  () => {
    // /proc/<pid>/stat puts the name in parentheses unescaped: the fields start after its last ')'.
    const dir = mkdtempSync(join(tmpdir(), 'flywheel-priority-'));
    try {
      const binary = join(dir, 'x) 1 2 3');
      copyFileSync('/bin/sleep', binary);
      const pid = sleeper(true, [binary, '30']);
      expect(lowerAutogroup(pid, 6)).toBe(true);
      expect(autogroupNice(pid)).toBe(6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

it('a process that is gone is reported, not thrown', () => {
  expect(lowerPriority(2 ** 22 + 1, 5)).toBe(false);
});

it("reads this process's CPU time from its stat in seconds, as process.cpuUsage counts it", () => {
  const spinUntil = Date.now() + 300;
  while (Date.now() < spinUntil); // some CPU time to count
  const before = process.cpuUsage();
  const { self } = cpuSeconds(statFields(process.pid)!);
  const after = process.cpuUsage();
  const seconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;
  // stat counts whole clock ticks of every thread, cpuUsage microseconds: the same figure within a few ticks
  expect(self).toBeGreaterThan(seconds(before) - 0.1);
  expect(self).toBeLessThan(seconds(after) + 0.5);
});
