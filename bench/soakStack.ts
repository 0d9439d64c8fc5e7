/**
 * bench:soak's own processes: a private MinIO (own port, own data dir) that can be killed and started again on the
 * same data, and Flywheel's real entry points (workers, serving, API server) as child processes pointed at it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../config/env';
import { children, stopChild, waitUntil } from './processes';

/** Resident memory of a process in MB (/proc/<pid>/status VmRSS); undefined when it is gone. */
export function rssMb(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The last `lines` lines of a log file, for a failure message. */
export function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface MinioSpec {
  binary: string;
  dataDir: string;
  port: number;
  consolePort: number;
  accessKey: string;
  secretKey: string;
  logFile: string;
}

/** A MinIO of the bench's own; `kill()` is a SIGKILL (the fault), `start()` again reuses the same data dir and port. */
export class OwnMinio {
  process?: ChildProcess;
  private log?: WriteStream;

  constructor(readonly spec: MinioSpec) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.spec.port}`;
  }

  async start(): Promise<void> {
    const { binary, dataDir, port, consolePort, accessKey, secretKey, logFile } = this.spec;
    this.log ??= createWriteStream(logFile, { flags: 'a' });
    const child = spawn(
      binary,
      ['server', dataDir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'],
      {
        env: { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, MINIO_BROWSER: 'off' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    children.add(child);
    this.process = child;
    await waitUntil(
      'the soak MinIO',
      async () => (await fetch(`${this.endpoint}/minio/health/live`, { signal: AbortSignal.timeout(1_000) })).ok,
      60_000,
      child,
    );
  }

  /** SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
    children.delete(child);
  }

  async stop(): Promise<void> {
    if (this.process) await stopChild(this.process);
    this.log?.end();
  }
}

/** A Flywheel process of the soak: its pid, its log, and how it ended if it did. */
export interface Service {
  name: string;
  child: ChildProcess;
  logFile: string;
  startedAt: number;
  /** Set when it exited without the bench asking. */
  exited?: string;
}

/**
 * Starts `node --import tsx <script>` (not the tsx CLI, which forks: the pid is the process itself, so SIGKILL and
 * /proc read the right one) with `env`, stdout and stderr to `logFile`; resolves once `ready` says so.
 */
export async function startService(
  name: string,
  script: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
  ready: { line: string } | { probe: () => Promise<boolean> },
): Promise<Service> {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, script)], {
    cwd: PROJECT_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const service: Service = { name, child, logFile, startedAt: performance.now() };
  let seen = '';
  let printed = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    log.write(chunk);
    if (!printed) {
      seen = (seen + chunk.toString()).slice(-4096);
      if ('line' in ready && seen.includes(ready.line)) printed = true;
    }
  });
  child.stderr!.pipe(log, { end: false });
  child.once('exit', (code, signal) => {
    service.exited = `${signal ?? `exit ${code}`}`;
    children.delete(child);
    setTimeout(() => log.end(), 100).unref();
  });
  try {
    await waitUntil(name, 'line' in ready ? async () => printed : ready.probe, 120_000, child);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- ${logFile} ---\n${logTail(logFile)}`);
  }
  return service;
}
