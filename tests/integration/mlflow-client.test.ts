/**
 * The real MLflow client (3.17, in a venv from scripts/python.ts) against the Flywheel server started in this process:
 * experiments, runs, 1,000 metric steps, artifacts through the proxy, search, a scikit-learn logged model loaded back,
 * registered and aliased; then the run as the CLI shows it. Needs the local stack (`flywheel up --infra-only`).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePythonEnv, MLFLOW2_REQUIREMENTS, MLFLOW_REQUIREMENTS } from '../../scripts/python';
import { apiTokens } from '../../schema/models';
import { runDatasetInputs, runs } from '../../schema/runs';
import { startServer } from '../../server/start';
import { closeDb, connectDb, type Db } from '../../storage/db';
import { createToken, hashToken } from '../../store/tokens';
import { loadConfig, PROJECT_ROOT } from '../../config/env';
import { unique } from './harness';

const run = promisify(execFile);
const suite = unique('mlflow-client');
const adminToken = `fw_admin_test_${suite}`;
let readToken: string;
let python: string;
let server: { url: string; close(): Promise<void> };
let db: Db;

beforeAll(async () => {
  python = await ensurePythonEnv('mlflow-client', MLFLOW_REQUIREMENTS);
  db = connectDb(loadConfig().databaseUrl, 2);
  // The suite's own admin token, inserted hashed: `createToken` needs an admin token once any exists.
  await db.insert(apiTokens).values({ name: `${suite}-admin`, scope: 'admin', hash: hashToken(adminToken) });
  readToken = await createToken(db, `${suite}-read`, 'read', adminToken);
  server = await startServer({ port: 0 });
}, 900_000);

afterAll(async () => {
  await server?.close();
  if (db) {
    await db
      .update(apiTokens)
      .set({ revokedAt: new Date() })
      .where(like(apiTokens.name, `${suite}-%`));
    await closeDb(db);
  }
});

/** Runs one of the client check scripts against this suite's server; a failure carries the script's output. */
function clientCheck(interpreter: string, script: string, args: string[]) {
  return run(interpreter, [join(PROJECT_ROOT, 'tests', 'integration', script), ...args], {
    env: {
      ...process.env,
      MLFLOW_TRACKING_URI: server.url,
      MLFLOW_TRACKING_TOKEN: adminToken,
      // Fail on the first error instead of retrying with backoff; no telemetry from a test.
      MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0',
      MLFLOW_HTTP_REQUEST_TIMEOUT: '60',
      MLFLOW_DISABLE_TELEMETRY: 'true',
      DO_NOT_TRACK: 'true',
    },
    timeout: 600_000,
    maxBuffer: 32 * 1024 * 1024,
  }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`${script} failed:\n${(error.stderr ?? '').slice(-6000) || error.message}\n${error.stdout ?? ''}`);
  });
}

describe('the MLflow client against the Flywheel server', () => {
  it('logs, searches, logs a scikit-learn model, loads it back, registers and aliases it; the CLI lists the run', async () => {
    const experiment = `${suite}-experiment`;
    const registered = `${suite}-model`;
    const outcome = await clientCheck(python, 'mlflow_client_check.py', [experiment, registered]);
    const summary = JSON.parse(outcome.stdout.trim().split('\n').at(-1)!) as {
      run_id: string;
      model_run_id: string;
      model_id: string;
      version: string;
      inputs_run_id: string;
    };
    expect(summary.model_id).toMatch(/^m-[0-9a-f]{32}$/);
    expect(summary.version).toBe('1');
    // What log_input stored: each dataset once, its description and tags, no rows.
    const inputs = await db
      .select()
      .from(runDatasetInputs)
      .where(eq(runDatasetInputs.runId, summary.inputs_run_id))
      .orderBy(runDatasetInputs.loggedAt);
    expect(inputs.map((input) => [input.name, input.sourceType, input.tags])).toEqual([
      ['train', 's3', { 'mlflow.data.context': 'training' }],
      ['holdout', 'code', { 'mlflow.data.context': 'eval', k: 'v' }],
    ]);

    // The CLI asks this suite's server, with a read token, for what the client logged.
    const listed = await run(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'flywheel.js'), 'runs', 'list', '--experiment', experiment],
      {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, FLYWHEEL_URL: server.url, FLYWHEEL_TOKEN: readToken },
      },
    );
    const row = listed.stdout.split('\n').find((line) => line.includes(summary.run_id));
    expect(row, listed.stdout).toBeDefined();
    expect(row).toContain('finished');
    expect(listed.stdout).toContain(summary.model_run_id);
    expect(listed.stdout).toContain('2 run(s)');
  }, 900_000);

  it('an MLflow 2 client logs, logs a model with its metadata, registers it and loads it back, with no warning', async () => {
    const python2 = await ensurePythonEnv('mlflow2-client', MLFLOW2_REQUIREMENTS);
    const outcome = await clientCheck(python2, 'mlflow2_client_check.py', [
      `${suite}-mlflow2`,
      `${suite}-mlflow2-model`,
    ]);
    const summary = JSON.parse(outcome.stdout.trim().split('\n').at(-1)!) as { run_id: string };
    const [stored] = await db.select({ tags: runs.tags }).from(runs).where(eq(runs.id, summary.run_id));
    expect(JSON.parse(stored!.tags['mlflow.log-model.history']!)).toMatchObject([{ artifact_path: 'model' }]);
  }, 900_000);

  it('streams artifacts through the proxy, lists them one level deep, and refuses unsafe paths and read-only tokens', async () => {
    const base = `${server.url}/api/2.0/mlflow-artifacts/artifacts`;
    const auth = (token: string) => ({ authorization: `Bearer ${token}` });
    const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const put = await fetch(`${base}/${suite}/blobs/weights.bin`, { method: 'PUT', headers: auth(adminToken), body });
    expect(put.status).toBe(200);

    const got = await fetch(`${base}/${suite}/blobs/weights.bin`, { headers: auth(readToken) });
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await got.arrayBuffer()).equals(body)).toBe(true);

    const listed = await (await fetch(`${base}?path=${suite}`, { headers: auth(readToken) })).json();
    expect(listed).toEqual({ files: [{ path: 'blobs', is_dir: true }] });
    const inner = await (await fetch(`${base}?path=${suite}/blobs`, { headers: auth(readToken) })).json();
    expect(inner).toEqual({ files: [{ path: 'weights.bin', is_dir: false, file_size: body.length }] });

    for (const unsafe of [
      `${base}?path=${suite}/../x`,
      `${base}?path=/etc`,
      `${base}/${suite}/a%5Cb`,
      `${base}/${suite}/a%00b`,
    ]) {
      const refused = await fetch(unsafe, { headers: auth(readToken) });
      expect(refused.status, unsafe).toBe(400);
      expect(((await refused.json()) as { message: string }).message).toMatch(
        /artifact path ".*"|must not contain NUL/,
      );
    }
    expect(
      (await fetch(`${base}/${suite}/blobs/other.bin`, { method: 'PUT', headers: auth(readToken), body: 'x' })).status,
    ).toBe(403);
    expect((await fetch(`${base}/${suite}/blobs/missing.bin`, { headers: auth(readToken) })).status).toBe(404);

    expect((await fetch(`${base}/${suite}`, { method: 'DELETE', headers: auth(adminToken) })).status).toBe(200);
    expect(await (await fetch(`${base}?path=${suite}`, { headers: auth(readToken) })).json()).toEqual({ files: [] });
  });
});
