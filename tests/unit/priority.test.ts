/**
 * config/priority.ts: a process lowered with lowerPriority runs at that niceness, and where it leads its session
 * (a detached child: a session of its own) its autogroup does too; a child that shares this process's session leaves
 * the session's autogroup alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { autogroupNice, lowerPriority } from '../../config/priority';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

function sleeper(detached: boolean): number {
  const child = spawn('sleep', ['30'], { detached, stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

const niceOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);

it.skipIf(autogroupNice(process.pid) === undefined)(
  "a session leader's autogroup takes its niceness; a process in this session leaves this session's alone",
  () => {
    const own = autogroupNice(process.pid);
    const leader = sleeper(true);
    expect(lowerPriority(leader, 9)).toBe(true);
    expect(niceOf(leader)).toBe(9);
    expect(autogroupNice(leader)).toBe(9);

    const member = sleeper(false);
    expect(lowerPriority(member, 9)).toBe(true);
    expect(niceOf(member)).toBe(9);
    expect(autogroupNice(member)).toBe(own);
    expect(autogroupNice(process.pid)).toBe(own);
  },
);

it('a process that is gone is reported, not thrown', () => {
  expect(lowerPriority(2 ** 22 + 1, 5)).toBe(false);
});
