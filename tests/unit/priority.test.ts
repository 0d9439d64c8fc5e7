/**
 * config/priority.ts: a process lowered with lowerPriority runs at that niceness, and where it leads its session
 * (a detached child: a session of its own) its autogroup does too; a child that shares this process's session leaves
 * the session's autogroup alone. config/procStat.ts reads a process's CPU time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import {
  autogroupNice,
  kernelHasAutogroups,
  lowerAutogroup,
  lowerPriority,
  shortenSlices,
  sliceOf,
} from '../../config/priority';
import { loadConfig } from '../../config/env';
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

// EEVDF's custom slices (Linux 6.12+): such a kernel reads a fair thread's slice back; an older one reads 0.
const customSlices = (sliceOf(process.pid) ?? 0) > 0;

it.skipIf(!customSlices)(
  'every thread of a process, its worker threads included, takes the slice asked for and keeps its niceness',
  async () => {
    // a process at nice 4 with a worker thread, as serving runs with V8's and libuv's
    const pid = sleeper(false, [
      'nice',
      '-n',
      '4',
      process.execPath,
      '-e',
      "new (require('node:worker_threads').Worker)('setTimeout(() => {}, 30000)', { eval: true }); " +
        'setTimeout(() => {}, 30000)',
    ]);
    let tids: string[] = [];
    for (let tries = 0; tries < 50 && tids.length < 8; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      tids = readdirSync(`/proc/${pid}/task`);
    }
    expect(sliceOf(pid)).not.toBe(300);
    expect(shortenSlices(pid, 300)).toBeGreaterThanOrEqual(tids.length);
    // a thread started since is the main thread's child and inherits the slice
    const after = readdirSync(`/proc/${pid}/task`);
    expect(after.map((tid) => sliceOf(Number(tid)))).toEqual(after.map(() => 300));
    expect(getPriority(pid)).toBe(4);
  },
);

it("refuses a slice out of the kernel's range or a process that is gone, changing nothing", () => {
  const pid = sleeper(false);
  const before = sliceOf(pid);
  expect(shortenSlices(pid, 50)).toBe(0);
  expect(shortenSlices(pid, 200_000)).toBe(0);
  expect(sliceOf(pid)).toBe(before);
  expect(shortenSlices(2 ** 22 + 1, 300)).toBe(0);
});

it("reads FLYWHEEL_SERVING_SLICE_US: 200 µs by default, 0 to leave the kernel's, a bad value named", () => {
  expect(loadConfig({}).serving.sliceUs).toBe(200);
  expect(loadConfig({ FLYWHEEL_SERVING_SLICE_US: '0' }).serving.sliceUs).toBe(0);
  expect(loadConfig({ FLYWHEEL_SERVING_SLICE_US: '500' }).serving.sliceUs).toBe(500);
  expect(() => loadConfig({ FLYWHEEL_SERVING_SLICE_US: '50' })).toThrow(/FLYWHEEL_SERVING_SLICE_US.*"50"/);
  expect(() => loadConfig({ FLYWHEEL_SERVING_SLICE_US: 'fast' })).toThrow(/FLYWHEEL_SERVING_SLICE_US/);
});
