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
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/** sched_getattr / sched_setattr by architecture (Linux's syscall tables); others are not tried. */
const SCHED_ATTR_CALLS: Partial<Record<NodeJS.Architecture, { get: number; set: number }>> = {
  x64: { get: 315, set: 314 },
  arm64: { get: 275, set: 274 },
};

/**
 * For each thread id: read its struct sched_attr, and where it runs a fair policy (SCHED_OTHER or SCHED_BATCH) write
 * it back with `sched_runtime` — a fair thread's slice — set, keeping its policy and niceness; then count the threads
 * that read back that slice. Perl, because Node cannot make a system call of its own and perl-base is in every Debian
 * and Ubuntu image, the slim ones included. struct sched_attr: u32 size, u32 policy, u64 flags, s32 nice,
 * u32 priority, u64 runtime, deadline, period (48 bytes, SCHED_ATTR_SIZE_VER0), u32 util_min, util_max (56).
 */
const SET_SLICE_PERL = `
my ($get, $set, $ns, @tids) = @ARGV;
my $count = 0;
for my $tid (@tids) {
  my $attr = "\\0" x 56;
  next if syscall($get + 0, $tid + 0, $attr, 56, 0) != 0;
  my (undef, $policy, $flags, $nice, $priority) = unpack('L L Q l L', $attr);
  next unless $policy == 0 || $policy == 3;
  next if syscall($set + 0, $tid + 0, pack('L L Q l L Q Q Q', 48, $policy, $flags, $nice, $priority, $ns, 0, 0), 0) != 0;
  $attr = "\\0" x 56;
  next if syscall($get + 0, $tid + 0, $attr, 56, 0) != 0;
  $count++ if (unpack('L L Q l L Q', $attr))[5] == $ns;
}
print $count;
`;

/**
 * Asks the scheduler for short time slices for every thread of process `pid` (`sliceUs` microseconds, 100–100,000):
 * under EEVDF (Linux 6.12 and later) a thread with a shorter slice has an earlier virtual deadline, so when it wakes —
 * a request arrived — it preempts a thread of the same niceness that has been running its longer default slice
 * (0.7–3 ms times a log of the CPU count), instead of waiting for it to end. For a process that answers requests and
 * then sleeps again (serving); its share of the CPU stays the same. Threads the process starts later inherit it.
 * Best effort: returns how many threads read the slice back, 0 where nothing took it (a kernel before 6.12 accepts
 * and ignores it; no perl; another architecture).
 */
export function shortenSlices(pid: number, sliceUs: number): number {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  const args = sliceArgs(tids, sliceUs);
  if (!args) return 0;
  const result = spawnSync('perl', args, { encoding: 'utf8', timeout: 5_000 });
  return result.status === 0 ? Number(result.stdout.trim()) || 0 : 0;
}

/**
 * shortenSlices for the given threads, without blocking the event loop: for a process that answers requests and
 * opens connections as it goes (a Postgres backend is one thread, its pid). Resolves to how many took the slice.
 */
export function shortenThreadSlices(tids: number[], sliceUs: number): Promise<number> {
  const args = sliceArgs(tids.map(String), sliceUs);
  if (!args) return Promise.resolve(0);
  return new Promise((resolve) => {
    execFile('perl', args, { encoding: 'utf8', timeout: 5_000 }, (error, stdout) =>
      resolve(error ? 0 : Number(stdout.trim()) || 0),
    );
  });
}

/** The perl command line that sets `sliceUs` on `tids`, or undefined where it cannot be tried. */
function sliceArgs(tids: string[], sliceUs: number): string[] | undefined {
  const calls = SCHED_ATTR_CALLS[process.arch];
  if (!calls || !Number.isInteger(sliceUs) || sliceUs < 100 || sliceUs > 100_000 || tids.length === 0) return undefined;
  return ['-e', SET_SLICE_PERL, String(calls.get), String(calls.set), String(sliceUs * 1000), ...tids];
}

/** A thread's slice in microseconds as sched_getattr reads it (`sched_runtime`), or undefined where it cannot. */
export function sliceOf(tid: number): number | undefined {
  const calls = SCHED_ATTR_CALLS[process.arch];
  if (!calls) return undefined;
  const result = spawnSync(
    'perl',
    [
      '-e',
      'my $a = "\\0" x 56; syscall($ARGV[0] + 0, $ARGV[1] + 0, $a, 56, 0) == 0 or exit 1; ' +
        "print((unpack('L L Q l L Q', $a))[5])",
      String(calls.get),
      String(tid),
    ],
    { encoding: 'utf8', timeout: 5_000 },
  );
  return result.status === 0 ? Number(result.stdout) / 1000 : undefined;
}
