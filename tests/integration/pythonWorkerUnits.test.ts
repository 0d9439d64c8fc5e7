/**
 * The Python training worker (sdk/python) in its own venv (`ensurePythonWorkerEnv`): its pytest files — entrypoint
 * resolution, GPU slots and /metrics, checkpoint slots, ONNX export (sklearn, a categorical pipeline, torch when
 * importable), the training context and process against the Flywheel server started here, and `flywheel-worker` on
 * the shared Temporal dev server — and the TS handle that starts and stops the worker. Needs the local stack
 * (`flywheel up --infra-only`).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, PROJECT_ROOT } from '../../config/env';
import { apiTokens } from '../../schema/models';
import { ensurePythonWorkerEnv, startPythonWorker } from '../../scripts/pythonWorker';
import { startServer } from '../../server/start';
import { connectDb, closeDb } from '../../storage/db';
import { hashToken } from '../../store/tokens';
import { unique } from './harness';

const TEST_FILES = [
  'test_worker_entrypoint.py',
  'test_worker_slots.py',
  'test_training_units.py',
  'test_onnx_export.py',
  'test_training_live.py',
  'test_worker_temporal.py',
].map((file) => join('sdk', 'python', 'tests', file));

const suite = unique('pyworker');
const token = `fw_write_test_${suite}`;
const db = connectDb(loadConfig().databaseUrl, 2);
let python: string;
let server: { url: string; close(): Promise<void> };
let cacheDir: string;

beforeAll(async () => {
  python = await ensurePythonWorkerEnv();
  await db.insert(apiTokens).values({ name: `${suite}-write`, scope: 'write', hash: hashToken(token) });
  server = await startServer({ port: 0 });
  cacheDir = await mkdtemp(join(tmpdir(), 'flywheel-pyworker-'));
}, 900_000);

afterAll(async () => {
  await server?.close();
  await db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(like(apiTokens.name, `${suite}-%`));
  await closeDb(db);
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
}, 60_000);

function pytest(): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      python,
      ['-m', 'pytest', ...TEST_FILES, '-q', '-rsx', '-p', 'no:cacheprovider'],
      {
        cwd: PROJECT_ROOT,
        env: {
          ...process.env,
          FLYWHEEL_URL: server.url,
          FLYWHEEL_TOKEN: token,
          FLYWHEEL_TEST_PREFIX: suite,
          FLYWHEEL_CACHE_DIR: cacheDir,
          FLYWHEEL_EXPERIMENT: '',
          TEMPORAL_ADDRESS: loadConfig().temporal.address,
          TEMPORAL_NAMESPACE: loadConfig().temporal.namespace,
          PYTHONDONTWRITEBYTECODE: '1',
        },
        timeout: 840_000,
        maxBuffer: 32 * 1024 * 1024,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

describe('the Python training worker', () => {
  it('passes its pytest files: entrypoints, checkpoints, ONNX export, the training process, the worker on Temporal', async () => {
    const { code, output } = await pytest();
    if (code !== 0) console.error(`pytest exited ${code}:\n${output.slice(-20_000)}`);
    expect(code, output.slice(-4000)).toBe(0);
    const lines = output.trim().split('\n');
    const skipped = lines.filter((line) => /^SKIPPED/.test(line));
    console.error(`pytest (python worker): ${lines.at(-1)}\n${skipped.join('\n')}`.trim());
    // Only the torch exports may skip (no torch, or no onnxscript for its dynamo exporter); the live and Temporal
    // files ran.
    expect(skipped.filter((line) => !line.includes('torch'))).toEqual([]);
    expect(lines.at(-1)).toMatch(/\b(2[5-9]|[3-9]\d) passed\b/);
  }, 900_000);

  it('starts flywheel-worker from TypeScript: ready once it polls, the token never printed, stopped cleanly', async () => {
    const queue = `${suite}-handle-python-cpu`;
    const worker = await startPythonWorker({
      url: server.url,
      token,
      queue,
      paths: [join(PROJECT_ROOT, 'sdk', 'python')],
      python,
      log: () => undefined,
    });
    await worker.ready;
    expect(worker.output()).toContain(`polling task queue ${queue} (cpu)`);
    expect(worker.output()).toContain(join(PROJECT_ROOT, 'sdk', 'python'));
    expect(worker.output()).not.toContain(token);
    expect(await worker.stop()).toBe(0);
  }, 120_000);
});
