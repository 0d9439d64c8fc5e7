/** The Python peers of the benchmarks come from Debian; installed here when missing and running as root. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PROJECT_ROOT } from '../config/env';

/**
 * Runs `probe` (python code printing what the caller needs) with `python`; when it fails and this is root with
 * apt-get, installs `debianPackage` and tries again; else exits with what to install. Returns the probe's stdout.
 */
export function ensurePythonPeer(python: string, probe: string, debianPackage: string, bench: string): string {
  const run = () => spawnSync(python, ['-c', probe], { encoding: 'utf8' });
  let found = run();
  if (
    found.status !== 0 &&
    process.getuid?.() === 0 &&
    python === '/usr/bin/python3' &&
    existsSync('/usr/bin/apt-get')
  ) {
    console.error(`  ${debianPackage} is missing from /usr/bin/python3: apt-get install -y ${debianPackage}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', debianPackage], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    });
    found = run();
  }
  if (found.status !== 0) {
    console.error(
      `${bench} needs Debian's ${debianPackage} for ${python} (sudo apt-get install -y ${debianPackage}), or BENCH_PYTHON pointing at a python that has it.\n${found.stderr ?? found.error?.message ?? ''}`,
    );
    process.exit(1);
  }
  return found.stdout.trim();
}

/** A non-negative integer from the environment (BENCH_ROWS and the like), or the default. */
export function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

/**
 * Runs up to `repeats` interleaved rounds, skipping the rest when another round (judged by the last one's length)
 * would pass `budgetS` of total wall time. Returns how many ran and, when it stopped early, why.
 */
export async function budgetedRounds(
  repeats: number,
  budgetS: number,
  elapsedS: () => number,
  round: (index: number) => Promise<void>,
): Promise<{ rounds: number; stopped: string }> {
  let last = 0;
  for (let index = 0; index < repeats; index++) {
    if (index > 0 && elapsedS() + last * 1.2 > budgetS) {
      const stopped = `stopped after ${index} of ${repeats} rounds: another (~${last.toFixed(0)} s) would pass BENCH_BUDGET_S=${budgetS}`;
      console.error(`  ${stopped}`);
      return { rounds: index, stopped };
    }
    const started = performance.now();
    await round(index);
    last = (performance.now() - started) / 1000;
  }
  return { rounds: repeats, stopped: '' };
}

/**
 * Runs a child to the end in the project root: its stdout (and stderr, unless `inherit` shows it live) and wall
 * seconds;
 * a non-zero exit rejects with both outputs.
 */
export function runProcess(
  command: string,
  args: string[],
  options: { stderr?: 'inherit' | 'capture' } = {},
): Promise<{ stdout: string; stderr: string; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const capture = options.stderr !== 'inherit';
    const child = spawn(command, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', capture ? 'pipe' : 'inherit'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    if (capture) child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ stdout, stderr, seconds: (performance.now() - started) / 1000 });
      else
        reject(
          new Error(
            `${command} ${args.join(' ')} exited with ${signal ?? code}\n${stdout}${capture ? `\n${stderr}` : ''}`,
          ),
        );
    });
  });
}

/** The last line of a child's stdout that is a JSON object (the benches' children end with one). */
export function lastJson<T>(stdout: string, what = 'the child', stderr = ''): T {
  const line =
    stdout
      .trim()
      .split('\n')
      .reverse()
      .find((l) => l.startsWith('{')) ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`expected a JSON line from ${what}, got:\n${stdout}${stderr ? `\n${stderr}` : ''}`);
  }
}
