/**
 * Worker hosts for the cluster test and bench:scale: network namespaces on a bridge (each its own IP, reaching the
 * cluster over the network), TCP forwarders that expose loopback-only services (Postgres, MinIO) on the bridge, and
 * Flywheel worker processes started on a host, whose JSON logs are kept for counting what each one completed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createReadStream, openSync, readFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from '../config/env';

function ip(args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr.trim() || result.error}`);
}

function ipQuiet(args: string[]): void {
  spawnSync('ip', args, { stdio: 'ignore' });
}

/** Whether this process may create network namespaces (root, or CAP_NET_ADMIN + CAP_SYS_ADMIN, and iproute2). */
export function canCreateHosts(): string | undefined {
  const probe = `fwprobe${process.pid % 10000}`;
  const result = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (result.error) return `iproute2's ip is not installed (${result.error.message})`;
  if (result.status !== 0) return `cannot create network namespaces: ${result.stderr.trim()}`;
  ipQuiet(['netns', 'del', probe]);
  return undefined;
}

export interface NetworkHost {
  name: string;
  /** The namespace's name for `ip netns exec`. */
  netns: string;
  ip: string;
  /** The veth end on the bridge side: `ip link set <it> down` cuts the host off. */
  link: string;
}

export interface HostNetwork {
  /** The bridge's address: what the hosts reach the cluster and the forwarded services at. */
  gatewayIp: string;
  hosts: NetworkHost[];
  cut(host: NetworkHost): void;
  restore(host: NetworkHost): void;
  destroy(): void;
}

/**
 * `count` hosts on a bridge `<prefix>br` with 10.<subnet>.0.1; host i gets 10.<subnet>.0.(10+i). Leftovers of an
 * earlier run with the same prefix (a crashed test) are removed first. Interface names stay within Linux's 15 bytes.
 */
export function createHostNetwork(prefix: string, count: number, subnet: number): HostNetwork {
  const bridge = `${prefix}br`;
  const names = Array.from({ length: count }, (_, i) => `${prefix}h${i + 1}`);
  const destroy = () => {
    for (const name of names) {
      ipQuiet(['link', 'del', `${name}a`]);
      ipQuiet(['netns', 'del', name]);
    }
    ipQuiet(['link', 'del', bridge]);
  };
  destroy();
  const gatewayIp = `10.${subnet}.0.1`;
  ip(['link', 'add', bridge, 'type', 'bridge']);
  ip(['addr', 'add', `${gatewayIp}/24`, 'dev', bridge]);
  ip(['link', 'set', bridge, 'up']);
  const hosts = names.map((name, i) => {
    const hostIp = `10.${subnet}.0.${10 + i + 1}`;
    ip(['netns', 'add', name]);
    ip(['link', 'add', `${name}a`, 'type', 'veth', 'peer', 'name', `${name}b`]);
    ip(['link', 'set', `${name}a`, 'master', bridge]);
    ip(['link', 'set', `${name}a`, 'up']);
    ip(['link', 'set', `${name}b`, 'netns', name]);
    ip(['-n', name, 'addr', 'add', `${hostIp}/24`, 'dev', `${name}b`]);
    ip(['-n', name, 'link', 'set', `${name}b`, 'up']);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
    ip(['-n', name, 'route', 'add', 'default', 'via', gatewayIp]);
    return { name: `host${i + 1}`, netns: name, ip: hostIp, link: `${name}a` };
  });
  return {
    gatewayIp,
    hosts,
    cut: (host) => ip(['link', 'set', host.link, 'down']),
    restore: (host) => ip(['link', 'set', host.link, 'up']),
    destroy,
  };
}

/**
 * Listens on `listenIp:port` and pipes each connection to `targetPort` on loopback: the hosts reach Postgres and MinIO
 * (which listen on 127.0.0.1 only) through the bridge. A cut host's connections hang like any network peer's.
 */
export async function forwardPort(listenIp: string, port: number, targetPort = port): Promise<{ close(): void }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, listenIp, resolve);
  });
  return {
    close() {
      server.close();
      sockets.forEach((socket) => socket.destroy());
    },
  };
}

export interface WorkerProcess {
  kind: 'main' | 'train' | 'all';
  host?: NetworkHost;
  child: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
}

const WORKER_ENTRY = { main: 'workers/main.ts', train: 'workers/train.ts', all: 'workers/all.ts' } as const;

/**
 * Starts a Flywheel worker (on `host`'s network namespace when given) and resolves once it polls. Its JSON log goes to
 * `logFile` (at debug level: the SDK's "Activity completed" lines are what `completedActivities` counts).
 */
export async function startWorker(
  kind: WorkerProcess['kind'],
  options: { env: NodeJS.ProcessEnv; logFile: string; host?: NetworkHost; timeoutMs?: number },
): Promise<WorkerProcess> {
  const node = [process.execPath, '--import', 'tsx', join(PROJECT_ROOT, WORKER_ENTRY[kind])];
  // `ip netns exec` execs the command: the pid is the worker's own, so a SIGKILL hits the worker.
  const [command, ...args] = options.host ? ['ip', 'netns', 'exec', options.host.netns, ...node] : node;
  const log = openSync(options.logFile, 'a');
  const child = spawn(command!, args, {
    cwd: PROJECT_ROOT,
    env: { ...options.env, FLYWHEEL_LOG_FORMAT: 'json', FLYWHEEL_LOG_LEVEL: 'debug' },
    stdio: ['ignore', log, log],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode)
      throw new Error(`${kind} worker exited before polling; see ${options.logFile}`);
    if (readFileSync(options.logFile, 'utf8').includes(': polling ')) break;
    if (Date.now() > deadline) throw new Error(`${kind} worker did not start polling; see ${options.logFile}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { kind, host: options.host, child, logFile: options.logFile, exited };
}

/** Each "Activity completed" a worker logged: which workflow's which activity, on which attempt. */
export interface CompletedActivity {
  workflowId: string;
  activityId: string;
  activityType: string;
  attempt: number;
  /** When the worker logged it (ms since the epoch). */
  at: number;
  logFile: string;
}

/** `message`: which SDK lines to read (default "Activity completed"; also "Activity started", "Activity failed"). */
export async function completedActivities(
  logFile: string,
  message: RegExp = /"Activity completed"/,
): Promise<CompletedActivity[]> {
  const found: CompletedActivity[] = [];
  const lines = createInterface({ input: createReadStream(logFile), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!message.test(line)) continue;
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      found.push({
        workflowId: String(record.workflowId),
        activityId: String(record.activityId),
        activityType: String(record.activityType),
        attempt: Number(record.attempt),
        at: Date.parse(String(record.time)),
        logFile,
      });
    } catch {
      // a line cut short by SIGKILL
    }
  }
  return found;
}
