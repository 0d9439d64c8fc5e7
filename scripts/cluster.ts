/**
 * A production-shaped Temporal deployment on one machine (`flywheel up --cluster`, the cluster test and bench:scale):
 * the open-source server's four services (frontend, history, matching, worker) as separate processes, with Postgres
 * persistence and advanced visibility on Postgres, schema set up by Temporal's own SQL tool, optionally mTLS on the
 * frontend. The dev server (`temporal server start-dev`) is one process on SQLite.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import pg from 'pg';
import { childEnv, type TemporalClusterState } from '../config/env';
import { ensureDatabase } from './postgres';
import { choosePort, isAlive, portIsFree, sleep, startDetached, stopProcess, waitFor } from './proc';
import { ensureTool, type GoTool } from './tools';
import { SEARCH_ATTRIBUTES } from '../workflows/searchAttributes';

// v1.30.x is the newest line whose module builds with Go 1.26.8 and whose dependencies the module proxy serves.
const SERVER_VERSION = 'v1.30.8';

export const TEMPORAL_SERVER_TOOL: GoTool = {
  name: 'temporal-server',
  binary: 'server',
  module: 'go.temporal.io/server/cmd/server',
  version: SERVER_VERSION,
  why: 'the Temporal server services (frontend, history, matching, worker) for the cluster topology',
};

export const TEMPORAL_SQL_TOOL: GoTool = {
  name: 'temporal-sql-tool',
  binary: 'sql',
  module: 'go.temporal.io/server/cmd/tools/sql',
  version: SERVER_VERSION,
  why: "Temporal's schema tool, which creates and upgrades the cluster's Postgres schemas",
};

export const CLUSTER_SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
export type ClusterService = (typeof CLUSTER_SERVICES)[number];

export interface ClusterOptions {
  /** Config, certificates and logs of this cluster. */
  dir: string;
  /** Any Postgres URL whose user may create databases: the cluster's two databases live on that server. */
  databaseUrl: string;
  /** Database names: `<prefix>` (persistence) and `<prefix>_visibility`. @default 'temporal' */
  databasePrefix?: string;
  /** The address every service binds and advertises; workers elsewhere reach the frontend there. @default 127.0.0.1 */
  ip?: string;
  /** Frontend gRPC port to prefer. @default 7233 */
  frontendPort?: number;
  /** Require client certificates on the frontend (certificates generated under `dir/tls`). */
  mtls?: boolean;
  /** Pids of a previous start on the same `dir`: kept when all are alive and the frontend answers. */
  previous?: ClusterState;
  log: (line: string) => void;
  cacheDir: string;
}

export type ClusterState = TemporalClusterState;

/** Splits a Postgres URL into what Temporal's config and SQL tool take. */
export function postgresEndpoint(url: string): { host: string; port: number; user: string; password: string } {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    user: decodeURIComponent(parsed.username || 'postgres'),
    password: decodeURIComponent(parsed.password),
  };
}

function run(command: string, args: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000)));
    child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${what} failed (exit ${code}):\n${output.slice(-2000)}`)),
    );
  });
}

/** Creates (once) and upgrades (always; a no-op when current) the persistence and visibility schemas. */
async function setupSchemas(sqlTool: string, databaseUrl: string, prefix: string): Promise<void> {
  const endpoint = postgresEndpoint(databaseUrl);
  const adminUrl = new URL(databaseUrl);
  adminUrl.pathname = '/postgres';
  for (const [database, schema] of [
    [prefix, 'postgresql/v12/temporal'],
    [`${prefix}_visibility`, 'postgresql/v12/visibility'],
  ] as const) {
    await ensureDatabase(adminUrl.toString(), database);
    const base = [
      '--plugin',
      'postgres12',
      '--ep',
      endpoint.host,
      '-p',
      String(endpoint.port),
      '-u',
      endpoint.user,
      '--pw',
      endpoint.password,
      '--db',
      database,
    ];
    const dbUrl = new URL(databaseUrl);
    dbUrl.pathname = `/${database}`;
    const client = new pg.Client({ connectionString: dbUrl.toString() });
    await client.connect();
    const initialised = await client
      .query("select 1 from information_schema.tables where table_name = 'schema_version'")
      .then((result) => (result.rowCount ?? 0) > 0)
      .finally(() => client.end());
    if (!initialised) await run(sqlTool, [...base, 'setup-schema', '-v', '0.0'], `temporal-sql-tool setup ${database}`);
    await run(sqlTool, [...base, 'update-schema', '--schema-name', schema], `temporal-sql-tool update ${database}`);
  }
}

/** A CA, a frontend certificate for `ip` (and localhost) and one client certificate, all signed by the CA. */
async function generateCertificates(dir: string, ip: string): Promise<NonNullable<ClusterState['tls']>> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string) => join(dir, name);
  const tls = {
    caFile: file('ca.pem'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
    serverName: 'temporal-frontend',
  };
  // Reused while the frontend's address is the one its certificate names.
  if (existsSync(tls.clientKeyFile) && readFileSync(file('server.ext'), 'utf8').includes(`IP:${ip},`)) return tls;
  const openssl = (args: string[], what: string) => run('openssl', args, what);
  await openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '365', '-subj', '/CN=flywheel-temporal-ca'].concat([
      '-keyout',
      file('ca.key'),
      '-out',
      tls.caFile,
    ]),
    'creating the cluster CA',
  );
  for (const [name, subject, extensions] of [
    [
      'server',
      `/CN=${tls.serverName}`,
      `subjectAltName=DNS:${tls.serverName},DNS:localhost,IP:${ip},IP:127.0.0.1\nextendedKeyUsage=serverAuth`,
    ],
    ['client', '/CN=flywheel-worker', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    writeFileSync(file(`${name}.ext`), extensions + '\n');
    await openssl(
      [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        subject,
        '-keyout',
        file(`${name}.key`),
        '-out',
        file(`${name}.csr`),
      ],
      `creating the ${name} key`,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        file(`${name}.csr`),
        '-CA',
        tls.caFile,
        '-CAkey',
        file('ca.key'),
        '-CAcreateserial',
      ].concat(['-days', '365', '-extfile', file(`${name}.ext`), '-out', file(`${name}.pem`)]),
      `signing the ${name} certificate`,
    );
    chmodSync(file(`${name}.key`), 0o600);
  }
  return tls;
}

/** One service's YAML config: shared persistence and membership, its own metrics port. */
export function clusterConfigYaml(options: {
  ip: string;
  ports: ClusterState['ports'];
  metricsPort: number;
  postgres: ReturnType<typeof postgresEndpoint>;
  databasePrefix: string;
  dynamicConfigFile: string;
  tlsDir?: string;
}): string {
  const { ip, ports, postgres, databasePrefix } = options;
  const quote = (value: string | number) => JSON.stringify(String(value));
  const datastore = (database: string, maxConns: number) =>
    [
      `      sql:`,
      `        pluginName: "postgres12"`,
      `        databaseName: ${quote(database)}`,
      `        connectAddr: ${quote(`${postgres.host}:${postgres.port}`)}`,
      `        connectProtocol: "tcp"`,
      `        user: ${quote(postgres.user)}`,
      `        password: ${quote(postgres.password)}`,
      `        maxConns: ${maxConns}`,
      `        maxIdleConns: ${maxConns}`,
      `        maxConnLifetime: "1h"`,
    ].join('\n');
  const service = (name: ClusterService) =>
    [
      `  ${name}:`,
      `    rpc:`,
      `      grpcPort: ${ports[name]}`,
      `      membershipPort: ${ports[name] + 100}`,
      `      bindOnIP: ${quote(ip)}`,
      ...(name === 'frontend' ? [`      httpPort: ${ports.frontendHttp}`] : []),
    ].join('\n');
  const tls = options.tlsDir
    ? [
        `  tls:`,
        `    frontend:`,
        `      server:`,
        `        certFile: ${quote(join(options.tlsDir, 'server.pem'))}`,
        `        keyFile: ${quote(join(options.tlsDir, 'server.key'))}`,
        `        requireClientAuth: true`,
        `        clientCaFiles: [${quote(join(options.tlsDir, 'ca.pem'))}]`,
        `      client:`,
        `        serverName: "temporal-frontend"`,
        `        rootCaFiles: [${quote(join(options.tlsDir, 'ca.pem'))}]`,
        `    systemWorker:`,
        `      certFile: ${quote(join(options.tlsDir, 'client.pem'))}`,
        `      keyFile: ${quote(join(options.tlsDir, 'client.key'))}`,
        `      client:`,
        `        serverName: "temporal-frontend"`,
        `        rootCaFiles: [${quote(join(options.tlsDir, 'ca.pem'))}]`,
      ]
    : [];
  return [
    `log:`,
    `  stdout: true`,
    `  level: warn`,
    `persistence:`,
    `  defaultStore: postgres-default`,
    `  visibilityStore: postgres-visibility`,
    // Fixed when the database is created; 16 spreads history load over several history hosts should you add them.
    `  numHistoryShards: 16`,
    `  datastores:`,
    `    postgres-default:`,
    datastore(databasePrefix, 20),
    `    postgres-visibility:`,
    datastore(`${databasePrefix}_visibility`, 10),
    `global:`,
    `  membership:`,
    `    maxJoinDuration: 30s`,
    `    broadcastAddress: ${quote(ip)}`,
    `  metrics:`,
    `    prometheus:`,
    `      framework: "tally"`,
    `      timerType: "histogram"`,
    `      listenAddress: ${quote(`${ip}:${options.metricsPort}`)}`,
    ...tls,
    `services:`,
    ...CLUSTER_SERVICES.map(service),
    `clusterMetadata:`,
    `  enableGlobalNamespace: false`,
    `  failoverVersionIncrement: 10`,
    `  masterClusterName: "active"`,
    `  currentClusterName: "active"`,
    `  clusterInformation:`,
    `    active:`,
    `      enabled: true`,
    `      initialFailoverVersion: 1`,
    `      rpcName: "frontend"`,
    `      rpcAddress: ${quote(`${ip}:${ports.frontend}`)}`,
    `dcRedirectionPolicy:`,
    `  policy: "noop"`,
    `publicClient:`,
    `  hostPort: ${quote(`${ip}:${ports.frontend}`)}`,
    `dynamicConfigClient:`,
    `  filepath: ${quote(options.dynamicConfigFile)}`,
    `  pollInterval: "10s"`,
    ``,
  ].join('\n');
}

/** What Flywheel relies on and a stock cluster leaves off. */
const DYNAMIC_CONFIG = `# Written by flywheel (scripts/cluster.ts).
# New search attributes are visible at once (a pipeline's attributes are set in its first task).
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
frontend.enableUpdateWorkflowExecution:
  - value: true
# One partition per task queue: Flywheel's queues see tens of tasks a second, not thousands, and with several
# partitions a task written to one waits while a training queue's only idle poller listens on another.
matching.numTaskqueueReadPartitions:
  - value: 1
matching.numTaskqueueWritePartitions:
  - value: 1
# Worker versioning (build ids): a rolling upgrade pins running pipelines to the code they started on.
system.enableDeployments:
  - value: true
system.enableDeploymentVersions:
  - value: true
frontend.workerVersioningWorkflowAPIs:
  - value: true
frontend.workerVersioningDataAPIs:
  - value: true
`;

async function frontendHealthy(address: string, tls?: ClusterState['tls']): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: '1s', tls: clientTls(tls) });
    try {
      await connection.workflowService.getSystemInfo({});
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

/** The Temporal client TLS options for a cluster started with mTLS. */
export function clientTls(tls: ClusterState['tls'] | undefined) {
  if (!tls) return undefined;
  return {
    serverNameOverride: tls.serverName,
    serverRootCACertificate: readFileSync(tls.caFile),
    clientCertPair: { crt: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) },
  };
}

/** Starts (or reuses) the cluster and returns where its frontend answers. Idempotent on the same `dir`. */
export async function startCluster(options: ClusterOptions): Promise<ClusterState> {
  const { dir, log } = options;
  const ip = options.ip ?? '127.0.0.1';
  const prefix = options.databasePrefix ?? 'temporal';
  mkdirSync(join(dir, 'logs'), { recursive: true, mode: 0o700 });
  // What an earlier start on this folder left (a crashed test's cluster): reused when healthy, else stopped.
  const stateFile = join(dir, 'cluster.json');
  // Written on every start: a running cluster polls it, so a changed setting reaches it without a restart.
  writeFileSync(join(dir, 'dynamicconfig.yaml'), DYNAMIC_CONFIG);
  const previous =
    options.previous ??
    (existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as ClusterState) : undefined);
  if (
    previous &&
    previous.address.startsWith(`${ip}:`) &&
    Boolean(previous.tls) === Boolean(options.mtls) &&
    CLUSTER_SERVICES.every((name) => isAlive(previous.pids[name])) &&
    (await frontendHealthy(previous.address, previous.tls))
  ) {
    await ensureNamespace(previous, 'default');
    return previous;
  }
  for (const name of CLUSTER_SERVICES) await stopProcess(previous?.pids[name]);

  const server = await ensureTool(TEMPORAL_SERVER_TOOL, options.cacheDir, log);
  const sqlTool = await ensureTool(TEMPORAL_SQL_TOOL, options.cacheDir, log);
  log(`Setting up the cluster's Postgres schemas (${prefix}, ${prefix}_visibility).`);
  await setupSchemas(sqlTool, options.databaseUrl, prefix);

  const taken: number[] = [];
  const pick = async (preferred: number) => {
    let port = await choosePort(preferred, taken);
    // Membership listens 100 above each gRPC port.
    while (taken.includes(port + 100) || !(await choosePort(port + 100, taken).then((p) => p === port + 100)))
      port = await choosePort(port + 1, taken);
    taken.push(port, port + 100);
    return port;
  };
  const frontend = await pick(previous?.ports.frontend ?? options.frontendPort ?? 7233);
  const ports: ClusterState['ports'] = {
    frontend,
    history: await pick(frontend + 1),
    matching: await pick(frontend + 2),
    worker: await pick(frontend + 6),
    frontendHttp: await choosePort(frontend + 10, taken),
  };
  taken.push(ports.frontendHttp);
  const tls = options.mtls ? await generateCertificates(join(dir, 'tls'), ip) : undefined;
  const dynamicConfigFile = join(dir, 'dynamicconfig.yaml');
  const pids: ClusterState['pids'] = {};
  const address = `${ip}:${ports.frontend}`;
  const state: ClusterState = { address, pids, ports, tls };
  const start = async (name: (typeof CLUSTER_SERVICES)[number]) => {
    const metricsPort = await choosePort(ports[name] + 2000, taken);
    taken.push(metricsPort);
    const configFile = join(dir, `${name}.yaml`);
    writeFileSync(
      configFile,
      clusterConfigYaml({
        ip,
        ports,
        metricsPort,
        postgres: postgresEndpoint(options.databaseUrl),
        databasePrefix: prefix,
        dynamicConfigFile,
        tlsDir: tls ? join(dir, 'tls') : undefined,
      }),
      { mode: 0o600 },
    );
    pids[name] = startDetached(
      server,
      ['--config-file', configFile, '--allow-no-auth', 'start', '--service', name],
      join(dir, 'logs', `temporal-${name}.log`),
    );
    // Recorded at once: a start that fails later (or a crashed caller) leaves nothing the next start cannot stop.
    writeFileSync(stateFile, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  };
  // A service that exits while starting is started once more (on a fresh schema every service inserts the cluster's
  // metadata, and all but one lose that race and exit), then it is an error naming its log.
  const up = async (name: (typeof CLUSTER_SERVICES)[number]) => {
    const logFile = join(dir, 'logs', `temporal-${name}.log`);
    for (let restarted = false; ;) {
      // Membership (ringpop) listens once the service has joined the cluster; the worker service has no gRPC server.
      if (await listening(pids[name]!, ip, ports[name] + 100, 120_000)) return;
      if (restarted)
        throw new Error(`the Temporal ${name} service exited while starting: ${lastError(logFile)}; see ${logFile}`);
      log(`The Temporal ${name} service exited while starting (${lastError(logFile)}); starting it again.`);
      restarted = true;
      await start(name);
    }
  };
  try {
    // History first, alone: it writes the cluster's metadata, which the others then only read.
    await start('history');
    await up('history');
    for (const name of ['matching', 'frontend', 'worker'] as const) await start(name);
    for (const name of ['matching', 'frontend', 'worker'] as const) await up(name);
    log(
      `Temporal cluster: frontend ${address}${tls ? ' (mTLS)' : ''}, history, matching, worker (Postgres ${prefix}).`,
    );
    await waitFor(
      'Temporal frontend',
      () => frontendHealthy(address, tls),
      120_000,
      join(dir, 'logs', 'temporal-frontend.log'),
    );
    await ensureNamespace(state, 'default');
    // A fresh history service acquires its shards a while after it listens: until then a start is refused.
    await waitFor(
      'every history shard',
      () => shardsServe(state, 'default'),
      180_000,
      join(dir, 'logs', 'temporal-history.log'),
    );
  } catch (error) {
    await stopCluster(state);
    throw error;
  }
  return state;
}

/**
 * Whether history answers on every shard: workflow ids hash onto the 16 shards, so 256 random ones (each shard missed
 * with a chance of 1e-7) must each come back NOT_FOUND; a shard not yet acquired answers UNAVAILABLE ("shard status
 * unknown"). Without the client's retries, so a refusal is seen at once.
 */
async function shardsServe(state: ClusterState, namespace: string): Promise<boolean> {
  const connection = await Connection.connect({ address: state.address, tls: clientTls(state.tls), interceptors: [] });
  try {
    const answers = await Promise.all(
      Array.from({ length: 256 }, () =>
        connection.workflowService
          .describeWorkflowExecution({ namespace, execution: { workflowId: `flywheel-shard-probe-${randomUUID()}` } })
          .then(
            () => true,
            (error: { code?: number }) => error.code === 5,
          ),
      ),
    );
    return answers.every(Boolean);
  } finally {
    await connection.close();
  }
}

/**
 * Whether the service `pid` listens on ip:port within `timeoutMs`; false as soon as it exits. A timeout is an error:
 * the service is running but never came up.
 */
async function listening(pid: number, ip: string, port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return false;
    if (!(await portIsFree(port, ip))) return true;
    await sleep(250);
  }
  throw new Error(`a Temporal service (pid ${pid}) did not listen on ${ip}:${port} within ${timeoutMs / 1000} s`);
}

/** The last error a Temporal service logged (its JSON lines' msg and error), for the message that names its log. */
function lastError(logFile: string): string {
  const lines = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').reverse() : [];
  for (const line of lines) {
    if (!line.includes('"level":"error"') && !line.includes('"level":"fatal"')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; error?: string };
      return [entry.msg, entry.error].filter(Boolean).join(': ').slice(0, 300);
    } catch {
      return line.slice(0, 300);
    }
  }
  return 'no error logged';
}

/** Flywheel's search attributes (workflows/searchAttributes.ts) on `namespace`, those missing added. */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !known.has(name));
  if (missing.length === 0) return;
  const typeCode = { Keyword: 2, Text: 1, Int: 3, Double: 4, Bool: 5, Datetime: 6, KeywordList: 7 } as const;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, typeCode[type]])),
  });
}

/** A fresh cluster has no namespace: register it (7 days' retention, like the dev stack's) with the attributes. */
export async function ensureNamespace(state: ClusterState, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address: state.address, tls: clientTls(state.tls) });
  try {
    const registered = await connection.workflowService.describeNamespace({ namespace }).then(
      () => true,
      () => false,
    );
    if (registered) return await ensureSearchAttributes(connection, namespace);
    await connection.workflowService
      .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('7 days') })
      .catch((error: { code?: number }) => {
        if (error.code !== 6) throw error; // ALREADY_EXISTS: registered concurrently
      });
    // The namespace cache refreshes every few seconds: wait until the frontend serves it.
    await waitFor(
      `namespace ${namespace}`,
      async () => {
        await connection.workflowService.describeNamespace({ namespace });
        await connection.workflowService.listWorkflowExecutions({ namespace, pageSize: 1 });
        return true;
      },
      60_000,
    );
    await ensureSearchAttributes(connection, namespace);
  } finally {
    await connection.close();
  }
}

export async function stopCluster(state: ClusterState | undefined): Promise<void> {
  if (!state) return;
  // The frontend first: clients see it go rather than a half-stopped backend.
  for (const name of ['frontend', 'worker', 'matching', 'history'] as const) await stopProcess(state.pids[name]);
}
