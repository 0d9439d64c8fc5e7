/**
 * Flywheel's one source of configuration: the only module that reads `process.env`.
 * Options resolve as: environment → local stack state (`.flywheel/stack.json`, written by `flywheel up`) → defaults.
 * The result is frozen; everything else receives it as a parameter.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ACTIVITY_PROFILES, TASK_QUEUES } from './constants';

export * from './constants';

/** The checkout's root folder (this file lives in `config/`). */
export const PROJECT_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

export interface TemporalSettings {
  /** host:port of the frontend. @default from the local stack, else 127.0.0.1:7233 */
  address: string;
  /** @default 'default' */
  namespace: string;
  /** mTLS client certificate + key paths, or plain TLS (Temporal Cloud with an API key). */
  tls?: { clientCertPath?: string; clientKeyPath?: string; serverNameOverride?: string; serverCaPath?: string } | true;
  /** Temporal Cloud API key; implies TLS. */
  apiKey?: string;
  /** Base URL of the Web UI, for links. @default http://127.0.0.1:8233 */
  uiUrl: string;
  /**
   * Worker Deployment (workers/versioning.ts): FLYWHEEL_WORKER_DEPLOYMENT names it (@default 'flywheel');
   * FLYWHEEL_WORKER_BUILD_ID versions the workers, unset leaves them unversioned.
   */
  deployment: { name: string; buildId?: string };
}

export interface S3Settings {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
  /** Path-style addressing (MinIO, Ceph); virtual-host style for AWS S3. @default true */
  pathStyle: boolean;
}

export interface FlywheelConfig {
  projectRoot: string;
  /** Git-ignored folder for local stack state (Temporal SQLite, MinIO data, credentials, logs). */
  stateDir: string;
  /** Where cached tool builds live, outside the checkout. @default ~/.cache/flywheel */
  cacheDir: string;
  /**
   * Folders local dataset sources may be read from (besides a pipeline config's own folder): FLYWHEEL_DATA_ROOTS
   * (colon-separated), then `data/` under the working directory. The state folder is never one.
   * @default [<cwd>/data]
   */
  dataRoots: string[];
  temporal: TemporalSettings;
  databaseUrl: string;
  s3: S3Settings;
  /**
   * `alias` (FLYWHEEL_SERVING_ALIAS, default champion): what it answers with; `requireApiKey`
   * (FLYWHEEL_REQUIRE_API_KEY=1): inference needs an `infer` or `admin` token.
   */
  serving: {
    host: string;
    port: number;
    url: string;
    alias: string;
    requireApiKey: boolean;
    /**
     * FLYWHEEL_PREDICTIONS_RETENTION_DAYS: logged predictions older than this are deleted by serving; 0 keeps them.
     * @default 30
     */
    predictionsRetentionDays: number;
    /**
     * FLYWHEEL_CHECKPOINT_RETENTION_DAYS: a finished, failed or killed run's training checkpoints are deleted this
     * many days after it ended, in the same sweep; 0 keeps them. @default 7
     */
    checkpointRetentionDays: number;
    /**
     * FLYWHEEL_SERVING_PREPARED_LOOKUPS=0: online feature lookups go as unnamed queries on sessions left as they are,
     * for a connection pooler in transaction mode (PgBouncer before 1.21), which neither keeps prepared statements
     * nor passes the `options` startup parameter. @default true
     */
    preparedLookups: boolean;
    /**
     * FLYWHEEL_SERVING_SLICE_US: the scheduler time slice serving asks for its threads, in microseconds (100–100,000;
     * config/priority.ts `shortenSlices`, Linux 6.12 and later): a request that wakes it then preempts a busy process
     * of the same niceness at once instead of waiting out that process's slice. The feature lookups' Postgres
     * backends ask for it too when Postgres runs on this machine. 0 leaves the kernel's default.
     * @default 200
     */
    sliceUs: number;
  };
  /** Logs and metrics (observability/): see `ObservabilitySettings`. */
  observability: ObservabilitySettings;
  /**
   * The Flywheel API server (`flywheel server`): FLYWHEEL_SERVER_PORT (default 8470, or the local stack's),
   * FLYWHEEL_URL for clients (the CLI), FLYWHEEL_SERVER_MAX_BODY_BYTES for JSON bodies (default 16 MiB; artifacts
   * stream and are not bound by it), FLYWHEEL_TOKEN for the CLI's requests, FLYWHEEL_SERVER_MAX_UPLOAD_BYTES for an
   * uploaded data source (`PUT /api/v1/uploads`; default 2 GiB, at most 5 GiB: one S3 PUT and one copy).
   */
  server: { host: string; port: number; url: string; maxBodyBytes: number; maxUploadBytes: number; token?: string };
  /**
   * FLYWHEEL_GRANT_KEY: the key that signs release grants (store/grants.ts), shared by the server, the CLI and the
   * workers; set it where they run on different machines. @default a random key in `<stateDir>/grant-key`
   */
  grantKey?: string;
  /** `main` may be overridden with FLYWHEEL_TASK_QUEUE (a worker fleet of its own, or a test's queue). */
  /** The Python queues: FLYWHEEL_TRAIN_PYTHON_CPU_QUEUE, FLYWHEEL_TRAIN_PYTHON_GPU_QUEUE. */
  taskQueues: { main: string; trainGpu: string; trainCpu: string; trainPythonCpu: string; trainPythonGpu: string };
  /** FLYWHEEL_GPU_DEVICES (`0,1`): a GPU training worker's devices, one slot each. @default all nvidia-smi lists */
  gpuDevices?: string;
  /**
   * The registry webhook dispatcher (workers/webhookDispatcher.ts, where the defaults are):
   * FLYWHEEL_WEBHOOK_MAX_ATTEMPTS,
   * FLYWHEEL_WEBHOOK_BACKOFF_MS (the wait after the first failure, doubled after each), FLYWHEEL_WEBHOOK_TIMEOUT_MS.
   */
  webhooks: { maxAttempts?: number; initialBackoffMs?: number; timeoutMs?: number };
  activityProfiles: typeof ACTIVITY_PROFILES;
  /** USER: who runs this process, named in the notes the CLI writes (`cli:<user>`). @default 'unknown' */
  user: string;
  /**
   * npm_package_version (set when started through npm): the OpenAPI document's version and, outside git, the code's
   * fingerprint.
   */
  packageVersion?: string;
  /**
   * How `flywheel up` provides Postgres: DATABASE_URL (an external server, used as is), FLYWHEEL_DATABASE (the local
   * database's name; default derived from the state folder), FLYWHEEL_EMBEDDED_POSTGRES=1 (the embedded server even
   * where a system one exists).
   */
  localPostgres: { envUrl?: string; database?: string; forceEmbedded: boolean };
  /**
   * FLYWHEEL_WORKER_NICE: the niceness `flywheel up` gives the workers it starts, so batch work (training, ingest,
   * monitor scans) yields the CPU to the serving and API processes on the same machine; 0 leaves them as is. Their
   * sessions' autogroups get it too (config/priority.ts): under autogroup scheduling niceness alone ranks nothing
   * across sessions.
   * @default 10
   */
  workerNice: number;
}

/** The Temporal cluster `flywheel up --cluster` started (scripts/cluster.ts). */
export interface TemporalClusterState {
  address: string;
  pids: Partial<Record<'frontend' | 'history' | 'matching' | 'worker', number>>;
  ports: Record<'frontend' | 'history' | 'matching' | 'worker' | 'frontendHttp', number>;
  /** With mTLS: the CA that signed the frontend's certificate, and a client certificate it accepts. */
  tls?: { caFile: string; clientCertFile: string; clientKeyFile: string; serverName: string };
}

/** What `flywheel up` records about the local stack it started. */
export interface StackState {
  /** `cluster`: `flywheel up --cluster` runs the server's services on Postgres instead of the dev server (`pid`). */
  temporal?: { address: string; uiUrl: string; pid?: number; cluster?: TemporalClusterState };
  minio?: { endPoint: string; port: number; accessKey: string; secretKey: string; bucket: string; pid?: number };
  databaseUrl?: string;
  embeddedPostgres?: { port: number; dataDir: string; pid?: number };
  /** `code`: the fingerprint of the source the process runs; a changed checkout restarts it. */
  serving?: { port: number; pid?: number; code?: string };
  server?: { port: number; pid?: number; code?: string };
  worker?: { pid?: number; code?: string };
  /** The Python training worker (`flywheel up --python <roots>`): its code roots too, so other roots restart it. */
  pythonWorker?: { pid?: number; code?: string; paths?: string[] };
}

export function stateDirOf(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.FLYWHEEL_STATE_DIR ?? join(PROJECT_ROOT, '.flywheel'));
}

export function readStackState(stateDir: string): StackState {
  const file = join(stateDir, 'stack.json');
  if (!existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8')) as StackState;
}

function intOf(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  // Digits only: Number() would also take "1e3", "0x10" and "12.0".
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new Error(`environment variable ${name} must be a positive integer, got "${value}"`);
  return n;
}

function portOf(value: string | undefined, name: string): number | undefined {
  const n = intOf(value, name);
  if (n !== undefined && n > 65_535)
    throw new Error(`environment variable ${name} must be a port from 1 to 65535, got "${value}"`);
  return n;
}

function servingSlice(env: NodeJS.ProcessEnv): number {
  const value = env.FLYWHEEL_SERVING_SLICE_US;
  if (value === undefined || value === '') return 200;
  const n = Number(value);
  if (!Number.isInteger(n) || (n !== 0 && (n < 100 || n > 100_000)))
    throw new Error(
      `environment variable FLYWHEEL_SERVING_SLICE_US must be 0 or an integer from 100 to 100000, got "${value}"`,
    );
  return n;
}

function niceOf(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 19)
    throw new Error(`environment variable FLYWHEEL_WORKER_NICE must be an integer from 0 to 19, got "${value}"`);
  return n;
}

/**
 * TLS to Temporal from TEMPORAL_TLS_* (a client certificate and its key for mTLS, a private CA, the name the server's
 * certificate carries), else plain TLS for an API key or TEMPORAL_TLS=true, else the local cluster's own mTLS files.
 * A certificate without its key (or the other way round) is refused rather than quietly connecting without either.
 */
function temporalTls(
  env: NodeJS.ProcessEnv,
  apiKey: string | undefined,
  cluster: TemporalClusterState['tls'],
): TemporalSettings['tls'] {
  const certPath = env.TEMPORAL_TLS_CLIENT_CERT_PATH || undefined;
  const keyPath = env.TEMPORAL_TLS_CLIENT_KEY_PATH || undefined;
  if (Boolean(certPath) !== Boolean(keyPath)) {
    const given = certPath ? 'TEMPORAL_TLS_CLIENT_CERT_PATH' : 'TEMPORAL_TLS_CLIENT_KEY_PATH';
    throw new Error(
      'environment variables TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH go together ' +
        `(mTLS needs the certificate and its key), but only ${given} is set`,
    );
  }
  const flag = env.TEMPORAL_TLS || undefined;
  if (flag !== undefined && flag !== 'true' && flag !== 'false')
    throw new Error(`environment variable TEMPORAL_TLS must be true or false, got "${flag}"`);
  const caPath = env.TEMPORAL_TLS_SERVER_CA_PATH || undefined;
  const serverName = env.TEMPORAL_TLS_SERVER_NAME || undefined;
  if (certPath || caPath || serverName)
    return { clientCertPath: certPath, clientKeyPath: keyPath, serverCaPath: caPath, serverNameOverride: serverName };
  if (apiKey || flag === 'true') return true;
  if (!cluster) return undefined;
  return {
    clientCertPath: cluster.clientCertFile,
    clientKeyPath: cluster.clientKeyFile,
    serverNameOverride: cluster.serverName,
    serverCaPath: cluster.caFile,
  };
}

/** Resolves the whole configuration once; pass `env` to resolve for another environment (tests). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<FlywheelConfig> {
  const stateDir = stateDirOf(env);
  const stack = readStackState(stateDir);
  const home = env.HOME ?? '/tmp';

  const apiKey = env.TEMPORAL_API_KEY || undefined;
  const tls = temporalTls(env, apiKey, env.TEMPORAL_ADDRESS ? undefined : stack.temporal?.cluster?.tls);

  const s3Url = env.FLYWHEEL_S3_ENDPOINT ? new URL(env.FLYWHEEL_S3_ENDPOINT) : undefined;
  const servingPort = portOf(env.FLYWHEEL_SERVING_PORT, 'FLYWHEEL_SERVING_PORT') ?? stack.serving?.port ?? 8480;
  const servingHost = env.FLYWHEEL_SERVING_HOST ?? '127.0.0.1';
  const serverPort = portOf(env.FLYWHEEL_SERVER_PORT, 'FLYWHEEL_SERVER_PORT') ?? stack.server?.port ?? 8470;
  const serverHost = env.FLYWHEEL_SERVER_HOST ?? '127.0.0.1';

  const config: FlywheelConfig = {
    projectRoot: PROJECT_ROOT,
    stateDir,
    cacheDir: resolve(env.FLYWHEEL_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(home, '.cache'), 'flywheel')),
    dataRoots: [
      ...(env.FLYWHEEL_DATA_ROOTS ?? '')
        .split(':')
        .filter((root) => root.trim() !== '')
        .map((root) => resolve(root)),
      resolve('data'),
    ],
    temporal: {
      address: env.TEMPORAL_ADDRESS ?? stack.temporal?.address ?? '127.0.0.1:7233',
      namespace: env.TEMPORAL_NAMESPACE ?? 'default',
      tls,
      apiKey,
      uiUrl: env.TEMPORAL_UI_URL ?? stack.temporal?.uiUrl ?? 'http://127.0.0.1:8233',
      deployment: {
        name: env.FLYWHEEL_WORKER_DEPLOYMENT || 'flywheel',
        buildId: env.FLYWHEEL_WORKER_BUILD_ID || undefined,
      },
    },
    databaseUrl: env.DATABASE_URL ?? stack.databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/flywheel',
    s3: s3Url
      ? {
          endPoint: s3Url.hostname,
          port: Number(s3Url.port || (s3Url.protocol === 'https:' ? 443 : 80)),
          useSSL: s3Url.protocol === 'https:',
          accessKey: env.FLYWHEEL_S3_ACCESS_KEY ?? env.AWS_ACCESS_KEY_ID ?? '',
          secretKey: env.FLYWHEEL_S3_SECRET_KEY ?? env.AWS_SECRET_ACCESS_KEY ?? '',
          region: env.FLYWHEEL_S3_REGION ?? env.AWS_REGION ?? 'us-east-1',
          bucket: env.FLYWHEEL_S3_BUCKET ?? 'flywheel',
          pathStyle: env.FLYWHEEL_S3_PATH_STYLE !== 'false',
        }
      : {
          endPoint: stack.minio?.endPoint ?? '127.0.0.1',
          port: stack.minio?.port ?? 9000,
          useSSL: false,
          accessKey: stack.minio?.accessKey ?? '',
          secretKey: stack.minio?.secretKey ?? '',
          region: 'us-east-1',
          bucket: env.FLYWHEEL_S3_BUCKET ?? stack.minio?.bucket ?? 'flywheel',
          pathStyle: true,
        },
    serving: {
      host: servingHost,
      port: servingPort,
      url: env.FLYWHEEL_SERVING_URL ?? `http://${servingHost}:${servingPort}`,
      alias: env.FLYWHEEL_SERVING_ALIAS || 'champion',
      requireApiKey: ['1', 'true'].includes(env.FLYWHEEL_REQUIRE_API_KEY ?? ''),
      predictionsRetentionDays:
        env.FLYWHEEL_PREDICTIONS_RETENTION_DAYS === '0'
          ? 0
          : (intOf(env.FLYWHEEL_PREDICTIONS_RETENTION_DAYS, 'FLYWHEEL_PREDICTIONS_RETENTION_DAYS') ?? 30),
      checkpointRetentionDays:
        env.FLYWHEEL_CHECKPOINT_RETENTION_DAYS === '0'
          ? 0
          : (intOf(env.FLYWHEEL_CHECKPOINT_RETENTION_DAYS, 'FLYWHEEL_CHECKPOINT_RETENTION_DAYS') ?? 7),
      preparedLookups: !['0', 'false'].includes(env.FLYWHEEL_SERVING_PREPARED_LOOKUPS ?? ''),
      sliceUs: servingSlice(env),
    },
    observability: observabilitySettings(env),
    server: {
      host: serverHost,
      port: serverPort,
      url: (env.FLYWHEEL_URL ?? `http://${serverHost}:${serverPort}`).replace(/\/+$/, ''),
      maxBodyBytes: intOf(env.FLYWHEEL_SERVER_MAX_BODY_BYTES, 'FLYWHEEL_SERVER_MAX_BODY_BYTES') ?? 16 << 20,
      maxUploadBytes: Math.min(
        intOf(env.FLYWHEEL_SERVER_MAX_UPLOAD_BYTES, 'FLYWHEEL_SERVER_MAX_UPLOAD_BYTES') ?? 2 * 1024 ** 3,
        5 * 1024 ** 3,
      ),
      token: env.FLYWHEEL_TOKEN || undefined,
    },
    grantKey: env.FLYWHEEL_GRANT_KEY || undefined,
    taskQueues: {
      main: env.FLYWHEEL_TASK_QUEUE || TASK_QUEUES.main,
      trainCpu: env.FLYWHEEL_TRAIN_CPU_QUEUE || TASK_QUEUES.trainCpu,
      trainGpu: env.FLYWHEEL_TRAIN_GPU_QUEUE || TASK_QUEUES.trainGpu,
      trainPythonCpu: env.FLYWHEEL_TRAIN_PYTHON_CPU_QUEUE || TASK_QUEUES.trainPythonCpu,
      trainPythonGpu: env.FLYWHEEL_TRAIN_PYTHON_GPU_QUEUE || TASK_QUEUES.trainPythonGpu,
    },
    gpuDevices: env.FLYWHEEL_GPU_DEVICES || undefined,
    webhooks: {
      maxAttempts: intOf(env.FLYWHEEL_WEBHOOK_MAX_ATTEMPTS, 'FLYWHEEL_WEBHOOK_MAX_ATTEMPTS'),
      initialBackoffMs: intOf(env.FLYWHEEL_WEBHOOK_BACKOFF_MS, 'FLYWHEEL_WEBHOOK_BACKOFF_MS'),
      timeoutMs: intOf(env.FLYWHEEL_WEBHOOK_TIMEOUT_MS, 'FLYWHEEL_WEBHOOK_TIMEOUT_MS'),
    },
    activityProfiles: ACTIVITY_PROFILES,
    user: env.USER ?? 'unknown',
    packageVersion: env.npm_package_version,
    workerNice:
      env.FLYWHEEL_WORKER_NICE === undefined || env.FLYWHEEL_WORKER_NICE === '' ? 10 : niceOf(env.FLYWHEEL_WORKER_NICE),
    localPostgres: {
      envUrl: env.DATABASE_URL,
      database: env.FLYWHEEL_DATABASE,
      forceEmbedded: env.FLYWHEEL_EMBEDDED_POSTGRES === '1',
    },
  };
  return deepFreeze(config);
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export interface ObservabilitySettings {
  /** FLYWHEEL_LOG_LEVEL. @default 'info' */
  logLevel: LogLevelName;
  /** FLYWHEEL_LOG_FORMAT: `json` lines, or `pretty` one-line text. @default json unless stdout is a terminal */
  logFormat: 'json' | 'pretty';
  /** FLYWHEEL_WORKER_METRICS_PORT: where a worker process serves /metrics. @default a free port (logged) */
  workerMetricsPort: number;
  /** FLYWHEEL_WORKER_METRICS_HOST: the interface a worker's /metrics listens on. @default 127.0.0.1 */
  workerMetricsHost: string;
  /** FLYWHEEL_METRICS_PUBLIC=1: the API server's /metrics answers without a token. @default false */
  metricsPublic: boolean;
  /**
   * OpenTelemetry traces (observability/tracing.ts), on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
   * OTEL_EXPORTER_OTLP_ENDPOINT (+ `/v1/traces`) is set; OTEL_SERVICE_NAME overrides `flywheel-<component>`.
   * @default undefined (off)
   */
  tracing?: { endpoint: string; serviceName?: string };
}

/** Log and metrics settings alone: the logger needs them when a module loads, before any `loadConfig()`. */
export function observabilitySettings(
  env: NodeJS.ProcessEnv = process.env,
  isTerminal = Boolean(process.stdout.isTTY),
): ObservabilitySettings {
  const level = (env.FLYWHEEL_LOG_LEVEL || 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new Error(`environment variable FLYWHEEL_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  const format = env.FLYWHEEL_LOG_FORMAT || (isTerminal ? 'pretty' : 'json');
  if (format !== 'json' && format !== 'pretty')
    throw new Error(`environment variable FLYWHEEL_LOG_FORMAT must be json or pretty, got "${format}"`);
  const otlpBase = env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, '');
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || (otlpBase ? `${otlpBase}/v1/traces` : undefined);
  return {
    logLevel: level as LogLevelName,
    logFormat: format,
    workerMetricsPort:
      env.FLYWHEEL_WORKER_METRICS_PORT === '0'
        ? 0
        : (portOf(env.FLYWHEEL_WORKER_METRICS_PORT, 'FLYWHEEL_WORKER_METRICS_PORT') ?? 0),
    workerMetricsHost: env.FLYWHEEL_WORKER_METRICS_HOST || '127.0.0.1',
    metricsPublic: ['1', 'true'].includes(env.FLYWHEEL_METRICS_PUBLIC ?? ''),
    tracing: tracesEndpoint ? { endpoint: tracesEndpoint, serviceName: env.OTEL_SERVICE_NAME || undefined } : undefined,
  };
}

/** True when the operator pointed Flywheel at external services instead of the local stack. */
export function externalServices(env: NodeJS.ProcessEnv = process.env): {
  temporal: boolean;
  s3: boolean;
  database: boolean;
} {
  return {
    temporal: Boolean(env.TEMPORAL_ADDRESS),
    s3: Boolean(env.FLYWHEEL_S3_ENDPOINT),
    database: Boolean(env.DATABASE_URL),
  };
}

/**
 * FLYWHEEL_<TOOL>_BIN: a prebuilt binary for a stack tool (`temporal`, `minio`) instead of one on PATH or built with
 * Go.
 */
export function toolBinOverride(tool: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env[`FLYWHEEL_${tool.toUpperCase()}_BIN`];
}

/** One variable by a name known only at run time (a data source's `${VAR}` secret reference). */
export function envVar(name: string): string | undefined {
  return process.env[name];
}

/**
 * The environment that points a child process (the Python worker) at the Temporal this process uses: address,
 * namespace, API key and TLS files, including the local cluster's own mTLS files, which no variable names.
 */
export function temporalEnv(settings: TemporalSettings): Record<string, string> {
  const env: Record<string, string> = { TEMPORAL_ADDRESS: settings.address, TEMPORAL_NAMESPACE: settings.namespace };
  if (settings.apiKey) env.TEMPORAL_API_KEY = settings.apiKey;
  if (settings.tls === true) env.TEMPORAL_TLS = 'true';
  else if (settings.tls) {
    const files = {
      TEMPORAL_TLS_CLIENT_CERT_PATH: settings.tls.clientCertPath,
      TEMPORAL_TLS_CLIENT_KEY_PATH: settings.tls.clientKeyPath,
      TEMPORAL_TLS_SERVER_CA_PATH: settings.tls.serverCaPath,
      TEMPORAL_TLS_SERVER_NAME: settings.tls.serverNameOverride,
    };
    for (const [name, value] of Object.entries(files)) if (value) env[name] = value;
  }
  return env;
}

/** The environment a child process starts with: this process's own, with `extra` set over it. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
