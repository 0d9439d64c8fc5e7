/**
 * `flywheel up --cluster --mtls`: a second local stack whose Temporal is the four-service cluster on Postgres with a
 * frontend that refuses clients without a certificate; the Python worker it starts (`--python`) connects with the
 * cluster's client certificate; `up` again keeps it, `down` stops all of it, and a stack that runs the dev server
 * refuses to switch.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { afterAll, expect, it } from 'vitest';
import { loadConfig, PROJECT_ROOT, type StackState } from '../../config/env';
import { ensureDatabase } from '../../scripts/postgres';
import { isAlive } from '../../scripts/proc';
import { eventually } from './harness';

const shared = loadConfig();
const stateDir = join(shared.stateDir, 'cluster-stack-test');
const database = new URL(shared.databaseUrl);
database.pathname = '/flywheel_cluster_stack_test';
const env: NodeJS.ProcessEnv = { ...process.env, FLYWHEEL_STATE_DIR: stateDir, DATABASE_URL: database.toString() };
for (const name of Object.keys(env)) if (name.startsWith('TEMPORAL_')) delete env[name];

function flywheel(args: string[], environment = env): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'flywheel.js'), ...args],
      { env: environment, timeout: 600_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

/** temporal.api.enums.v1.TaskQueueType */
const TASK_QUEUE_TYPE_ACTIVITY = 2;
const pythonCode = join(PROJECT_ROOT, 'examples', 'churn-sklearn');
const stack = (): StackState => JSON.parse(readFileSync(join(stateDir, 'stack.json'), 'utf8')) as StackState;

afterAll(async () => {
  await flywheel(['down']);
}, 120_000);

it('starts a Temporal cluster with mTLS, keeps it on the next up and stops it with down', async () => {
  const admin = new URL(shared.databaseUrl);
  admin.pathname = '/postgres';
  await ensureDatabase(admin.toString(), 'flywheel_cluster_stack_test');

  const up = await flywheel(['up', '--cluster', '--mtls', '--infra-only', '--python', pythonCode]);
  expect(up.code, up.output).toBe(0);
  expect(up.output).toContain('cluster on Postgres, mTLS');
  const cluster = stack().temporal!.cluster!;
  expect(Object.keys(cluster.pids).sort()).toEqual(['frontend', 'history', 'matching', 'worker']);
  const tls = cluster.tls!;
  const pythonWorker = stack().pythonWorker!.pid;

  // Without a client certificate the frontend refuses the TLS handshake.
  const anonymous = Connection.connect({
    address: cluster.address,
    connectTimeout: '3s',
    tls: { serverNameOverride: tls.serverName, serverRootCACertificate: readFileSync(tls.caFile) },
  }).then(async (connection) => {
    try {
      await connection.workflowService.getSystemInfo({});
    } finally {
      await connection.close();
    }
  });
  await expect(anonymous).rejects.toThrow();

  // With one, Flywheel's namespace and search attributes are there.
  const connection = await Connection.connect({
    address: cluster.address,
    tls: {
      serverNameOverride: tls.serverName,
      serverRootCACertificate: readFileSync(tls.caFile),
      clientCertPair: { crt: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) },
    },
  });
  try {
    const attributes = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    expect(Object.keys(attributes.customAttributes ?? {})).toContain('FlywheelModel');
    // The Python worker polls its queue through the same frontend: the stack handed it the cluster's TLS files.
    const queue = loadConfig(env).taskQueues.trainPythonCpu;
    const pythonLog = join(stateDir, 'logs', 'python-worker.log');
    const polled = await eventually(
      async () => {
        const { pollers } = await connection.workflowService.describeTaskQueue({
          namespace: 'default',
          taskQueue: { name: queue },
          taskQueueType: TASK_QUEUE_TYPE_ACTIVITY,
        });
        return (pollers?.length ?? 0) > 0 || (!isAlive(stack().pythonWorker!.pid) && 'exited');
      },
      120_000,
      `a poller on ${queue}`,
    ).catch((error: Error) => error.message);
    const log = readFileSync(pythonLog, 'utf8');
    expect(polled, log.slice(-3000)).toBe(true);
    expect(log).toContain(`on ${cluster.address}/default (mTLS)`);
  } finally {
    await connection.close();
  }

  // `up` again (no flag): the stack keeps its kind and its processes.
  const again = await flywheel(['up', '--infra-only', '--quiet']);
  expect(again.code, again.output).toBe(0);
  expect(stack().temporal!.cluster!.pids).toEqual(cluster.pids);

  // The shared stack runs the dev server: asking it for a cluster is refused, with what to do instead.
  const sharedEnv = { ...process.env };
  const refused = await flywheel(['up', '--cluster', '--infra-only'], sharedEnv);
  expect(refused.code).not.toBe(0);
  expect(refused.output).toContain('flywheel down');

  const down = await flywheel(['down']);
  expect(down.code, down.output).toBe(0);
  for (const pid of Object.values(cluster.pids)) expect(isAlive(pid)).toBe(false);
  expect(isAlive(pythonWorker)).toBe(false);
}, 900_000);
