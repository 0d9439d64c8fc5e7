/**
 * Builds the Go tools the local stack needs (Temporal CLI, MinIO) once, into a cache outside the checkout,
 * and reuses them on later runs and in CI. A binary already on PATH wins.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, envVar, toolBinOverride } from '../config/env';

export interface GoTool {
  /** Binary name on PATH. */
  name: string;
  /** The file `go install` writes, when not `name` (the package's last path element). */
  binary?: string;
  /** Module path for `go install`. */
  module: string;
  version: string;
  why: string;
}

export const TEMPORAL_TOOL: GoTool = {
  name: 'temporal',
  module: 'github.com/temporalio/cli/cmd/temporal',
  // Later tags carry a `replace` directive that `go install` rejects.
  version: 'v1.5.1',
  why: 'the Temporal dev server (workflow engine + Web UI) that runs the pipelines',
};

export const MINIO_TOOL: GoTool = {
  name: 'minio',
  module: 'github.com/minio/minio',
  version: 'latest',
  why: 'the S3-compatible object store for datasets and model artifacts (MinIO ships source only)',
};

export function onPath(name: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path ? path : undefined;
}

/** Path of the tool's binary, building it on first use with visible progress. */
export async function ensureTool(tool: GoTool, cacheDir: string, log: (line: string) => void): Promise<string> {
  const envOverride = toolBinOverride(tool.name);
  if (envOverride) {
    if (!existsSync(envOverride))
      throw new Error(`FLYWHEEL_${tool.name.toUpperCase()}_BIN points to ${envOverride}, which does not exist`);
    return envOverride;
  }
  const fromPath = onPath(tool.name);
  if (fromPath) return fromPath;
  const binDir = join(cacheDir, 'bin', `${tool.name}-${tool.version}`);
  const binary = join(binDir, tool.binary ?? tool.name);
  if (existsSync(binary)) return binary;

  const go = onPath('go') ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go)
    throw new Error(
      `${tool.name} is not installed and Go is not available to build it; install Go ≥ 1.22 or put ${tool.name} on PATH`,
    );
  log(`Building ${tool.name} (${tool.module}@${tool.version}) — ${tool.why}.`);
  log(`  First time only: it takes a few minutes; the binary is cached in ${binDir}.`);
  const staging = `${binDir}.partial`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const started = Date.now();
  let packages = 0;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', '-v', `${tool.module}@${tool.version}`], {
      env: childEnv({ GOBIN: staging, GOFLAGS: envVar('GOFLAGS') ?? '-trimpath' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const timer = setInterval(
      () => log(`  … ${tool.name}: ${packages} packages compiled, ${Math.round((Date.now() - started) / 1000)} s`),
      15_000,
    );
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString();
      packages += text.split('\n').filter((line) => line && !line.startsWith('go: ')).length;
      tail = (tail + text).slice(-4000);
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.on('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearInterval(timer);
      if (code === 0) resolve();
      else reject(new Error(`go install ${tool.module}@${tool.version} failed (exit ${code}):\n${tail}`));
    });
  });
  rmSync(binDir, { recursive: true, force: true });
  renameSync(staging, binDir);
  log(`  ${tool.name} built in ${Math.round((Date.now() - started) / 1000)} s.`);
  return binary;
}
