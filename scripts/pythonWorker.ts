/**
 * The Python training worker (sdk/python's `flywheel-worker`): the venv it runs in, Debian's torch beside it, and a
 * handle on a worker process (started, ready once it polls, stopped).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, loadConfig, PROJECT_ROOT, temporalEnv } from '../config/env';
import { ensurePythonEnv, type PythonEnvOptions } from './python';

const SDK_DIR = join(PROJECT_ROOT, 'sdk', 'python');

/**
 * The worker's packages; they install together on Python 3.11 over the system site packages, where Debian's
 * python3-torch 1.13 (built against numpy 1.24) stays importable: numpy stays 1.x (1.26.4 keeps that ABI), and these
 * scikit-learn, skl2onnx, onnx, onnxruntime and pandas releases accept it. The SDK is installed editable.
 */
export const PYTHON_WORKER_REQUIREMENTS = [
  'temporalio==1.35.0',
  'numpy==1.26.4',
  'scikit-learn==1.9.1',
  'skl2onnx==1.20.0',
  'onnx==1.23.2',
  'onnxruntime==1.32.0',
  'pandas==3.0.6',
  'pytest==9.2.0',
  '-e',
  SDK_DIR,
] as const;

/** The python executable of the worker's venv, built on first use (a changed pyproject.toml gets a new venv). */
export async function ensurePythonWorkerEnv(
  options: Omit<PythonEnvOptions, 'systemSitePackages'> = {},
): Promise<string> {
  const pyproject = createHash('sha256')
    .update(readFileSync(join(SDK_DIR, 'pyproject.toml')))
    .digest('hex')
    .slice(0, 8);
  return ensurePythonEnv(`python-worker-${pyproject}`, PYTHON_WORKER_REQUIREMENTS, {
    ...options,
    systemSitePackages: true,
  });
}

/**
 * Torch's version as the system python imports it; installs Debian's python3-torch with apt-get when it is missing
 * and this process is root, else fails saying how to install it.
 */
export async function ensureTorch(options: { log?: (line: string) => void } = {}): Promise<string> {
  const log = options.log ?? ((line: string) => console.error(line));
  const probe = () => output('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)']);
  try {
    return (await probe()).trim();
  } catch (error) {
    if (process.getuid?.() !== 0) {
      throw new Error(
        `torch is not importable by /usr/bin/python3 (${firstLine(error)}): install Debian's python3-torch as root ` +
          '(apt-get install python3-torch), or pip install torch into the worker venv',
      );
    }
  }
  log('Installing python3-torch with apt-get (first time only; a few minutes).');
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['install', '-y', '--no-install-recommends', 'python3-torch'];
  try {
    await output('apt-get', install, env);
  } catch {
    // A machine whose package lists were never fetched knows no python3-torch yet.
    await output('apt-get', ['update'], env);
    await output('apt-get', install, env);
  }
  return (await probe()).trim();
}

export interface PythonWorkerOptions {
  /** The Flywheel server the worker (and the user's code) reaches. */
  url: string;
  /** A write-scope token; passed in the environment, never on the command line. */
  token: string;
  /** `cpu`, `gpu` or a task queue name. @default 'cpu' */
  queue?: string;
  /** Code roots entrypoints are found in. @default the current directory */
  paths?: readonly string[];
  /** Training attempts at once on a CPU queue. @default 1 */
  maxConcurrent?: number;
  /** GPU queue: the devices the worker owns, one attempt each (`--gpus`). @default FLYWHEEL_GPU_DEVICES, else all */
  gpus?: readonly string[];
  /** Where it serves /metrics (`--metrics-port`). @default FLYWHEEL_WORKER_METRICS_PORT, else a free port */
  metricsPort?: number;
  /** Extra environment for the worker (Temporal's address, namespace and TLS default to Flywheel's config). */
  env?: Record<string, string | undefined>;
  /** The python to run. @default the venv from `ensurePythonWorkerEnv()` */
  python?: string;
  /** Each line the worker prints. @default to stderr, prefixed `[python-worker]` */
  log?: (line: string) => void;
}

export interface PythonWorkerHandle {
  child: ChildProcess;
  /** Resolves when the worker printed its startup line (it polls); rejects when it exits first. */
  ready: Promise<void>;
  /** The last lines it printed (for a failing test's message). */
  output(): string;
  /** Its `/metrics` URL, from the startup line; undefined until it polls. */
  metricsUrl(): string | undefined;
  /** SIGTERM (running attempts are cancelled), SIGKILL after `graceMs`; resolves with its exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/** Starts `python -m flywheel.worker` with the given queue and code roots. */
export async function startPythonWorker(options: PythonWorkerOptions): Promise<PythonWorkerHandle> {
  const python = options.python ?? (await ensurePythonWorkerEnv());
  const log = options.log ?? ((line: string) => console.error(`[python-worker] ${line}`));
  const temporal = loadConfig().temporal;
  const args = ['-m', 'flywheel.worker', '--queue', options.queue ?? 'cpu'];
  for (const path of options.paths ?? []) args.push('--path', path);
  if (options.maxConcurrent) args.push('--max-concurrent', String(options.maxConcurrent));
  if (options.gpus) args.push('--gpus', options.gpus.join(','));
  if (options.metricsPort !== undefined) args.push('--metrics-port', String(options.metricsPort));
  const child = spawn(python, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv({
      ...temporalEnv(temporal),
      PYTHONUNBUFFERED: '1',
      ...options.env,
      FLYWHEEL_URL: options.url,
      FLYWHEEL_TOKEN: options.token,
    }),
  });
  const lines: string[] = [];
  let metricsUrl: string | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))),
  );
  const ready = new Promise<void>((resolve, reject) => {
    const onLine = (line: string) => {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      log(line);
      if (line.startsWith('flywheel-worker: polling task queue')) {
        metricsUrl = /; metrics on (\S+)$/.exec(line)?.[1];
        resolve();
      }
    };
    pipeLines(child.stdout!, onLine);
    pipeLines(child.stderr!, onLine);
    child.once('error', reject);
    void exited.then((code) =>
      reject(new Error(`the Python worker exited (${code}) before it polled:\n${lines.slice(-30).join('\n')}`)),
    );
  });
  ready.catch(() => undefined); // a caller that never awaits `ready` must not get an unhandled rejection
  return {
    child,
    ready,
    output: () => lines.join('\n'),
    metricsUrl: () => metricsUrl,
    async stop(graceMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function pipeLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) onLine(part);
  });
  stream.on('end', () => rest && onLine(rest));
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).trim().split('\n').at(-1) ?? '';
}

/** Runs a command to its end; its stdout, or an error with its output's tail. */
function output(command: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: childEnv(env), maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${`${stdout}${stderr}`.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}
