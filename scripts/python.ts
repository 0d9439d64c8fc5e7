/**
 * Python virtual environments for tools and tests that need a Python client (MLflow's): created once under the cache
 * dir, named by the pinned requirements' hash, and reused. A marker written after a successful install tells a finished
 * venv from one an interrupted install left behind, which is rebuilt.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, loadConfig } from '../config/env';

/** The MLflow client and what the acceptance test drives it with; versions that install together on Python 3.11. */
export const MLFLOW_REQUIREMENTS = ['mlflow==3.17.2', 'pytest==9.2.0', 'httpx==0.29.0', 'scikit-learn==1.9.1'] as const;
/** An MLflow 2 client (the last 2.x) for teams not yet on MLflow 3: the compatibility test drives it too. */
export const MLFLOW2_REQUIREMENTS = ['mlflow-skinny==2.22.1', 'scikit-learn==1.9.1', 'pandas==3.1.1'] as const;
/** tritonclient, the OIP v2 client Triton and KServe users call models with: the serving tests drive it. */
export const TRITON_CLIENT_REQUIREMENTS = ['tritonclient[http]==2.73.0', 'numpy==2.4.6'] as const;

export interface PythonEnvOptions {
  /** Build on the system interpreter (`/usr/bin/python3`) and see its packages (Debian's python3-*). @default false */
  systemSitePackages?: boolean;
  /** Where venvs live. @default `<cacheDir>/venvs` */
  root?: string;
  /** Progress lines. @default console.error */
  log?: (line: string) => void;
}

const MARKER = '.flywheel-installed';

/** The venv's python executable, creating the venv and installing `requirements` on first use. */
export async function ensurePythonEnv(
  name: string,
  requirements: readonly string[],
  options: PythonEnvOptions = {},
): Promise<string> {
  const log = options.log ?? ((line: string) => console.error(line));
  const systemSite = options.systemSitePackages ?? false;
  const hash = createHash('sha256')
    .update(JSON.stringify({ requirements: [...requirements].sort(), systemSite }))
    .digest('hex')
    .slice(0, 12);
  const root = options.root ?? join(loadConfig().cacheDir, 'venvs');
  const dir = join(root, `${name}-${hash}`);
  const python = join(dir, 'bin', 'python');
  if (existsSync(join(dir, MARKER)) && existsSync(python)) return python;

  // No marker: absent, or half made by an interrupted install. Built in place, as a venv records its own path.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const started = Date.now();
  log(`Creating the Python environment "${name}" in ${dir} (first time only; pip install takes a minute or two).`);
  const [interpreter, ...venvArgs] = systemSite ? ['/usr/bin/python3', '--system-site-packages'] : ['python3'];
  await run(interpreter!, ['-m', 'venv', ...venvArgs, dir], log, name);
  log(`  installing ${requirements.join(' ')}`);
  await run(python, ['-m', 'pip', 'install', '--no-input', '--progress-bar', 'off', ...requirements], log, name);
  writeFileSync(join(dir, MARKER), `${requirements.join('\n')}\n`);
  log(`  Python environment "${name}" ready in ${Math.round((Date.now() - started) / 1000)} s.`);
  return python;
}

/** Runs a command, printing a heartbeat while it works and its output's tail when it fails. */
function run(command: string, args: string[], log: (line: string) => void, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv({ PIP_DISABLE_PIP_VERSION_CHECK: '1' }),
    });
    let tail = '';
    let collected = 0;
    const started = Date.now();
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString();
      collected += (text.match(/^(Collecting|Downloading|Using cached) /gm) ?? []).length;
      tail = (tail + text).slice(-4000);
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const timer = setInterval(
      () => log(`  … ${name}: ${collected} packages fetched, ${Math.round((Date.now() - started) / 1000)} s`),
      15_000,
    );
    child.on('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearInterval(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed (exit ${code}):\n${tail}`));
    });
  });
}
