/**
 * `flywheel up` / `down`: the local stack. Every step is idempotent: a healthy process from an earlier
 * `up` is reused, a dead one is restarted on the same data, and nothing is rebuilt that is cached.
 *   1. tools: temporal + minio binaries (PATH, else built once into the cache)
 *   2. Temporal dev server with SQLite persistence, Web UI, Flywheel's search attributes
 *   3. MinIO on loopback with generated credentials and the bucket
 *   4. Postgres (DATABASE_URL | local :5432 | embedded) with migrations applied
 *   5. the Flywheel API server (the CLI's endpoint), with the local CLI's token
 *   6. optionally the Flywheel worker and serving processes
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { Client as MinioClient } from 'minio';
import { closeDb, connectDb, migrateDb } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import {
  childEnv,
  externalServices,
  loadConfig,
  PROJECT_ROOT,
  readStackState,
  stateDirOf,
  temporalEnv,
  type StackState,
} from '../config/env';
import { issueToken, verifyToken } from '../store/tokens';
import { ensurePostgres } from './postgres';
import { ensurePythonWorkerEnv, ensureTorch } from './pythonWorker';
import { choosePort, isAlive, startDetached, stopProcess, waitFor, withLockFile } from './proc';
import { ensureTool, MINIO_TOOL, TEMPORAL_TOOL } from './tools';
import { ensureSearchAttributes, startCluster } from './cluster';
import { SEARCH_ATTRIBUTES } from '../workflows/searchAttributes';
import { connectTemporal } from '../storage/temporal';

export interface UpOptions {
  /** Also start the worker and serving processes. @default true */
  services: boolean;
  /**
   * Run Temporal as a cluster (its four services as processes, Postgres persistence and visibility) instead of the dev
   * server; `mtls` requires client certificates on its frontend. A stack keeps the kind it was started with.
   */
  cluster?: { mtls?: boolean };
  /** Also start a Python training worker whose user code lies in these folders (`flywheel up --python <dir>`). */
  python?: string[];
  log: (line: string) => void;
}

/**
 * Each checkout's local stack gets its own database next to its own Temporal and MinIO state,
 * so two clones on one machine (a developer's and CI's) never see each other's rows.
 */
function localDatabaseName(stateDir: string): string {
  return `flywheel_${createHash('sha256').update(stateDir).digest('hex').slice(0, 8)}`;
}

function saveState(stateDir: string, state: StackState): void {
  writeFileSync(join(stateDir, 'stack.json'), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
}

export async function stackUp(options: UpOptions): Promise<StackState> {
  const stateDir = stateDirOf();
  mkdirSync(join(stateDir, 'logs'), { recursive: true, mode: 0o700 });
  // Credentials, the Temporal database and logs live here: other users may not list or read them, but the embedded
  // Postgres (run as the `postgres` user) must reach its own data directory inside.
  chmodSync(stateDir, 0o711);
  chmodSync(join(stateDir, 'logs'), 0o700);
  return withLockFile(join(stateDir, 'up.lock'), () => upLocked(options, stateDir));
}

async function upLocked(options: UpOptions, stateDir: string): Promise<StackState> {
  const { log } = options;
  const state = readStackState(stateDir);
  const external = externalServices();
  const { cacheDir, localPostgres } = loadConfig();

  const clusterWanted = Boolean(options.cluster) || Boolean(state.temporal?.cluster);
  if (!external.temporal && options.cluster && state.temporal?.pid && isAlive(state.temporal.pid))
    throw new Error(
      'this stack runs the Temporal dev server: `flywheel down` first (its workflow history stays in the dev ' +
        "server's SQLite file), or start the cluster as a second stack with FLYWHEEL_STATE_DIR=<another folder>",
    );
  if (!external.temporal && !clusterWanted) state.temporal = await upTemporal(stateDir, cacheDir, state, log);
  saveState(stateDir, state);
  if (!external.s3) state.minio = await upMinio(stateDir, cacheDir, state, log);
  saveState(stateDir, state);

  const postgres = await ensurePostgres(
    {
      envUrl: localPostgres.envUrl,
      stateDir,
      database: localPostgres.database ?? localDatabaseName(stateDir),
      forceEmbedded: localPostgres.forceEmbedded,
      previous: state.embeddedPostgres,
    },
    log,
  );
  if (postgres.kind !== 'env') state.databaseUrl = postgres.databaseUrl;
  state.embeddedPostgres = postgres.embedded;
  saveState(stateDir, state);

  if (!external.temporal && clusterWanted) {
    const cluster = await startCluster({
      dir: join(stateDir, 'temporal-cluster'),
      databaseUrl: loadConfig().databaseUrl,
      databasePrefix: `${localDatabaseName(stateDir)}_temporal`,
      mtls: options.cluster?.mtls ?? Boolean(state.temporal?.cluster?.tls),
      previous: state.temporal?.cluster,
      cacheDir,
      log,
    });
    // No Web UI in this topology: links point at Flywheel's own pipeline pages (TEMPORAL_UI_URL overrides).
    state.temporal = { address: cluster.address, uiUrl: '', cluster };
    saveState(stateDir, state);
  }

  const config = loadConfig();
  const db = connectDb(config.databaseUrl, 1);
  try {
    await migrateDb(db);
  } finally {
    await closeDb(db);
  }
  await new S3ObjectStore(config.s3).ensureBucket();
  await registerSearchAttributes(config);

  // The API server is part of the infrastructure: the CLI is its client.
  const code = sourceFingerprint();
  await ensureCliToken(config.databaseUrl, stateDir);
  if (state.server?.pid && isAlive(state.server.pid) && state.server.code !== code) {
    log('Restarting the server process: the code changed since it started.');
    await stopProcess(state.server.pid);
  }
  const serverPort =
    state.server?.port && isAlive(state.server.pid) ? state.server.port : await choosePort(config.server.port);
  state.server = {
    port: serverPort,
    pid: await upService('server', state.server?.pid, ['server/main.ts'], stateDir, {
      FLYWHEEL_SERVER_PORT: String(serverPort),
    }),
    code,
  };
  saveState(stateDir, state);
  await waitFor(
    'Flywheel server',
    async () => (await fetch(`http://127.0.0.1:${serverPort}/health`)).ok,
    60_000,
    join(stateDir, 'logs', 'server.log'),
  );

  if (options.services) {
    // A worker running older code would replay workflows with the wrong definitions: restart what the checkout changed.
    for (const name of ['worker', 'serving'] as const) {
      const previous = state[name];
      if (previous?.pid && isAlive(previous.pid) && previous.code !== code) {
        log(`Restarting the ${name} process: the code changed since it started.`);
        await stopProcess(previous.pid);
      }
    }
    state.worker = {
      pid: await upService('worker', state.worker?.pid, ['workers/all.ts'], stateDir, {}, config.workerNice),
      code,
    };
    const servingPort =
      state.serving?.port && isAlive(state.serving.pid) ? state.serving.port : await choosePort(config.serving.port);
    state.serving = {
      port: servingPort,
      pid: await upService('serving', state.serving?.pid, ['serving/main.ts'], stateDir, {
        FLYWHEEL_SERVING_PORT: String(servingPort),
      }),
      code,
    };
    saveState(stateDir, state);
    await waitFor(
      'serving process',
      async () => (await fetch(`http://127.0.0.1:${servingPort}/v2/health/live`)).ok,
      60_000,
      join(stateDir, 'logs', 'serving.log'),
    );
  }
  if (options.python?.length) {
    state.pythonWorker = await upPythonWorker(state, options.python, code, stateDir, log);
    saveState(stateDir, state);
  }
  saveState(stateDir, state);
  return state;
}

/**
 * The Python training worker, detached like the others, polling the Python CPU queue with the local CLI's token
 * (scope write: it logs metrics and artifacts through the API). Restarted when the checkout or its code roots changed.
 */
async function upPythonWorker(
  state: StackState,
  roots: string[],
  code: string,
  stateDir: string,
  log: (line: string) => void,
): Promise<NonNullable<StackState['pythonWorker']>> {
  const paths = roots.map((root) => resolve(root));
  const previous = state.pythonWorker;
  const same = previous?.code === code && JSON.stringify(previous.paths) === JSON.stringify(paths);
  if (previous?.pid && isAlive(previous.pid)) {
    if (same) return previous;
    log('Restarting the Python worker: the code or its code roots changed.');
    await stopProcess(previous.pid);
  }
  // PyTorch steps need Debian's python3-torch (the venv sees the system's packages); scikit-learn steps do not.
  await ensureTorch({ log }).catch((error: Error) => log(`note: no PyTorch for Python steps: ${error.message}`));
  const python = await ensurePythonWorkerEnv({ log });
  const config = loadConfig();
  const args = ['-m', 'flywheel.worker', '--queue', config.taskQueues.trainPythonCpu];
  for (const path of paths) args.push('--path', path);
  const pid = startDetached(
    python,
    args,
    join(stateDir, 'logs', 'python-worker.log'),
    childEnv({
      FLYWHEEL_URL: config.server.url,
      FLYWHEEL_TOKEN: readFileSync(join(stateDir, 'cli-token'), 'utf8').trim(),
      ...temporalEnv(config.temporal),
      PYTHONUNBUFFERED: '1',
    }),
    PROJECT_ROOT,
    config.workerNice,
  );
  log(`Python worker (pid ${pid}) polls ${config.taskQueues.trainPythonCpu}; user code from ${paths.join(', ')}`);
  return { pid, code, paths };
}

/**
 * The local CLI's token (scope `write`), kept in the state dir (0600) like a kubeconfig: the CLI calls the API with
 * it when FLYWHEEL_TOKEN is not set. Admin actions still need an admin token of the user's own.
 */
async function ensureCliToken(databaseUrl: string, stateDir: string): Promise<void> {
  const file = join(stateDir, 'cli-token');
  const db = connectDb(databaseUrl, 1);
  try {
    const existing = existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
    if (existing && (await verifyToken(db, existing, ['write']))) return;
    const { token } = await issueToken(db, `local-cli@${hostname()}`, 'write');
    writeFileSync(file, token + '\n', { mode: 0o600 });
  } finally {
    await closeDb(db);
  }
}

async function upTemporal(
  stateDir: string,
  cacheDir: string,
  state: StackState,
  log: (line: string) => void,
): Promise<StackState['temporal']> {
  const previous = state.temporal;
  if (previous?.pid && isAlive(previous.pid) && (await temporalHealthy(previous.address))) return previous;
  const binary = await ensureTool(TEMPORAL_TOOL, cacheDir, log);
  const previousPort = previous ? Number(previous.address.split(':')[1]) : undefined;
  const port = await choosePort(previousPort ?? 7233);
  const uiPort = await choosePort(previous ? Number(new URL(previous.uiUrl).port) : port + 1000, [port]);
  const logFile = join(stateDir, 'logs', 'temporal.log');
  log(`Starting Temporal dev server on 127.0.0.1:${port} (Web UI http://127.0.0.1:${uiPort}).`);
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--db-filename',
    join(stateDir, 'temporal.db'),
    '--log-level',
    'warn',
    ...Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
  ];
  const pid = startDetached(binary, args, logFile);
  const address = `127.0.0.1:${port}`;
  await waitFor('Temporal dev server', () => temporalHealthy(address), 60_000, logFile);
  for (const file of ['temporal.db', 'temporal.db-wal', 'temporal.db-shm', 'temporal.db-journal']) {
    if (existsSync(join(stateDir, file))) chmodSync(join(stateDir, file), 0o600);
  }
  // Dev-server namespaces keep closed runs 24 h; a week keeps demo history inspectable.
  spawnSync(binary, ['operator', 'namespace', 'update', '--address', address, '--retention', '168h', 'default'], {
    stdio: 'ignore',
  });
  return { address, uiUrl: `http://127.0.0.1:${uiPort}`, pid };
}

async function temporalHealthy(address: string): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: '1s' });
    try {
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

async function upMinio(
  stateDir: string,
  cacheDir: string,
  state: StackState,
  log: (line: string) => void,
): Promise<StackState['minio']> {
  // MinIO's objects and its `.minio.sys` config (where credentials set through MinIO are kept) are the owner's alone.
  mkdirSync(join(stateDir, 'minio'), { recursive: true, mode: 0o700 });
  chmodSync(join(stateDir, 'minio'), 0o700);
  const previous = state.minio;
  if (previous?.pid && isAlive(previous.pid) && (await minioHealthy(previous.port))) return previous;
  const binary = await ensureTool(MINIO_TOOL, cacheDir, log);
  const port = await choosePort(previous?.port ?? 9000);
  const consolePort = await choosePort(port + 1, [port]);
  const accessKey = previous?.accessKey ?? `flywheel-${randomBytes(4).toString('hex')}`;
  const secretKey = previous?.secretKey ?? randomBytes(24).toString('base64url');
  const logFile = join(stateDir, 'logs', 'minio.log');
  log(`Starting MinIO on 127.0.0.1:${port} (data in ${join(stateDir, 'minio')}).`);
  const pid = startDetached(
    binary,
    [
      'server',
      join(stateDir, 'minio'),
      '--address',
      `127.0.0.1:${port}`,
      '--console-address',
      `127.0.0.1:${consolePort}`,
      '--quiet',
    ],
    logFile,
    childEnv({
      MINIO_ROOT_USER: accessKey,
      MINIO_ROOT_PASSWORD: secretKey,
      MINIO_BROWSER: 'on',
    }),
  );
  await waitFor('MinIO', () => minioHealthy(port), 60_000, logFile);
  const bucket = previous?.bucket ?? 'flywheel';
  const client = new MinioClient({ endPoint: '127.0.0.1', port, useSSL: false, accessKey, secretKey });
  await waitFor(
    'MinIO credentials',
    async () => {
      await client.listBuckets();
      return true;
    },
    30_000,
    logFile,
  );
  return { endPoint: '127.0.0.1', port, accessKey, secretKey, bucket, pid };
}

async function minioHealthy(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/minio/health/live`, { signal: AbortSignal.timeout(1_000) })).ok;
  } catch {
    return false;
  }
}

export async function registerSearchAttributes(config: ReturnType<typeof loadConfig>): Promise<void> {
  const connection = await connectTemporal(config.temporal);
  try {
    await ensureSearchAttributes(connection, config.temporal.namespace);
  } finally {
    await connection.close();
  }
}

/** The checked-out commit plus any uncommitted change to it; outside git, the package version. */
function sourceFingerprint(): string {
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  if (head.status !== 0) return `package-${loadConfig().packageVersion ?? 'unknown'}`;
  const diff = spawnSync('git', ['diff', 'HEAD', '--', '.', ':(exclude)*.md'], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return createHash('sha256')
    .update(head.stdout)
    .update(diff.stdout ?? '')
    .digest('hex')
    .slice(0, 16);
}

async function upService(
  name: string,
  previousPid: number | undefined,
  args: string[],
  stateDir: string,
  env: Record<string, string> = {},
  nice = 0,
): Promise<number> {
  if (isAlive(previousPid)) return previousPid!;
  return startDetached(
    process.execPath,
    ['--import', 'tsx', ...args],
    join(stateDir, 'logs', `${name}.log`),
    childEnv(env),
    PROJECT_ROOT,
    nice,
  );
}

export async function stackDown(log: (line: string) => void): Promise<void> {
  const stateDir = stateDirOf();
  const state = readStackState(stateDir);
  const targets: [string, number | undefined][] = [
    ['server', state.server?.pid],
    ['serving', state.serving?.pid],
    ['worker', state.worker?.pid],
    ['Python worker', state.pythonWorker?.pid],
    ['MinIO', state.minio?.pid],
    ['Temporal', state.temporal?.pid],
    ...Object.entries(state.temporal?.cluster?.pids ?? {}).map(
      ([service, pid]) => [`Temporal ${service}`, pid] as [string, number | undefined],
    ),
    ['embedded Postgres', state.embeddedPostgres?.pid],
  ];
  for (const [name, pid] of targets) {
    if (isAlive(pid)) {
      log(`Stopping ${name} (pid ${pid}).`);
      await stopProcess(pid);
    }
  }
}
