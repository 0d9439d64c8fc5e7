/**
 * How Temporal is reached: TLS from TEMPORAL_TLS_* (mTLS, a private CA alone, plain TLS), refusals that name the
 * variable, the local cluster's own files, and the environment a child process (the Python worker) is given.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, temporalEnv } from '../../config/env';
import { connectTemporal, connectWorker, describeTemporal } from '../../storage/temporal';

const noStack = { FLYWHEEL_STATE_DIR: mkdtempSync(join(tmpdir(), 'flywheel-no-stack-')) };
const tlsOf = (env: NodeJS.ProcessEnv) => loadConfig({ ...noStack, ...env }).temporal.tls;

/** A state dir whose stack.json records a local cluster with mTLS (what `flywheel up --cluster --mtls` writes). */
function clusterStack(): string {
  const stateDir = mkdtempSync(join(tmpdir(), 'flywheel-cluster-state-'));
  const tls = {
    caFile: '/c/ca.pem',
    clientCertFile: '/c/client.pem',
    clientKeyFile: '/c/client.key',
    serverName: 'fw',
  };
  const cluster = { address: '10.0.0.1:7233', pids: {}, ports: {}, tls };
  writeFileSync(join(stateDir, 'stack.json'), JSON.stringify({ temporal: { address: cluster.address, cluster } }));
  return stateDir;
}

describe('TLS to Temporal', () => {
  it('is off by default, plain for an API key or TEMPORAL_TLS=true, and files when paths are given', () => {
    expect(tlsOf({})).toBeUndefined();
    expect(tlsOf({ TEMPORAL_TLS: 'false' })).toBeUndefined();
    expect(tlsOf({ TEMPORAL_TLS: 'true' })).toBe(true);
    expect(tlsOf({ TEMPORAL_API_KEY: 'key' })).toBe(true);
    expect(
      tlsOf({
        TEMPORAL_TLS_CLIENT_CERT_PATH: '/tls/client.pem',
        TEMPORAL_TLS_CLIENT_KEY_PATH: '/tls/client.key',
        TEMPORAL_TLS_SERVER_CA_PATH: '/tls/ca.pem',
        TEMPORAL_TLS_SERVER_NAME: 'frontend',
      }),
    ).toEqual({
      clientCertPath: '/tls/client.pem',
      clientKeyPath: '/tls/client.key',
      serverCaPath: '/tls/ca.pem',
      serverNameOverride: 'frontend',
    });
    // A cluster with a private CA but no client certificates: server TLS with that CA, not the system's roots.
    expect(tlsOf({ TEMPORAL_TLS_SERVER_CA_PATH: '/tls/ca.pem' })).toEqual({
      clientCertPath: undefined,
      clientKeyPath: undefined,
      serverCaPath: '/tls/ca.pem',
      serverNameOverride: undefined,
    });
  });

  it('refuses a certificate without its key, the key without its certificate, and an unknown TEMPORAL_TLS', () => {
    expect(() => tlsOf({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/tls/client.pem' })).toThrow(
      /TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH go together .* only \S+_CERT_PATH is set/,
    );
    expect(() => tlsOf({ TEMPORAL_TLS_CLIENT_KEY_PATH: '/tls/client.key' })).toThrow(
      /only TEMPORAL_TLS_CLIENT_KEY_PATH is set/,
    );
    expect(() => tlsOf({ TEMPORAL_TLS: '1' })).toThrow(
      'environment variable TEMPORAL_TLS must be true or false, got "1"',
    );
  });

  it('names the file and its variable when a TLS file cannot be read, before any connection', async () => {
    const missing = join(noStack.FLYWHEEL_STATE_DIR, 'missing-ca.pem');
    const settings = loadConfig({ ...noStack, TEMPORAL_TLS_SERVER_CA_PATH: missing }).temporal;
    await expect(connectTemporal(settings)).rejects.toThrow(
      `cannot read Temporal's server CA certificate ${missing} (TEMPORAL_TLS_SERVER_CA_PATH): ENOENT`,
    );
  });

  it("uses the local cluster's mTLS files unless TEMPORAL_ADDRESS points elsewhere", () => {
    const stateDir = clusterStack();
    expect(loadConfig({ FLYWHEEL_STATE_DIR: stateDir }).temporal.tls).toEqual({
      clientCertPath: '/c/client.pem',
      clientKeyPath: '/c/client.key',
      serverCaPath: '/c/ca.pem',
      serverNameOverride: 'fw',
    });
    expect(
      loadConfig({ FLYWHEEL_STATE_DIR: stateDir, TEMPORAL_ADDRESS: 'elsewhere:7233' }).temporal.tls,
    ).toBeUndefined();
  });

  it('hands a child process the same Temporal, the local cluster files included', () => {
    const stateDir = clusterStack();
    const cases: NodeJS.ProcessEnv[] = [
      { FLYWHEEL_STATE_DIR: stateDir, TEMPORAL_NAMESPACE: 'team-a' },
      { ...noStack, TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'secret-key' },
      { ...noStack, TEMPORAL_ADDRESS: 'tls.example:7233', TEMPORAL_TLS: 'true' },
      { ...noStack },
    ];
    for (const env of cases) {
      const parent = loadConfig(env).temporal;
      const child = loadConfig({ ...noStack, ...temporalEnv(parent) }).temporal;
      expect({ ...child, uiUrl: parent.uiUrl }).toEqual(parent);
    }
    expect(temporalEnv(loadConfig(cases[0]).temporal)).toEqual({
      TEMPORAL_ADDRESS: '10.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'team-a',
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/c/client.pem',
      TEMPORAL_TLS_CLIENT_KEY_PATH: '/c/client.key',
      TEMPORAL_TLS_SERVER_CA_PATH: '/c/ca.pem',
      TEMPORAL_TLS_SERVER_NAME: 'fw',
    });
  });
});

describe('ports and counts from the environment', () => {
  it('takes digits only, and a port up to 65535', () => {
    expect(loadConfig({ ...noStack, FLYWHEEL_SERVER_PORT: '9000' }).server.port).toBe(9000);
    expect(() => loadConfig({ ...noStack, FLYWHEEL_SERVER_PORT: '99999' })).toThrow(
      'environment variable FLYWHEEL_SERVER_PORT must be a port from 1 to 65535, got "99999"',
    );
    expect(() => loadConfig({ ...noStack, FLYWHEEL_WORKER_METRICS_PORT: '70000' })).toThrow(
      /FLYWHEEL_WORKER_METRICS_PORT/,
    );
    expect(loadConfig({ ...noStack, FLYWHEEL_WORKER_METRICS_PORT: '0' }).observability.workerMetricsPort).toBe(0);
    for (const value of ['1e3', '0x10', '12.0', '12abc'])
      expect(() => loadConfig({ ...noStack, FLYWHEEL_CHECKPOINT_RETENTION_DAYS: value })).toThrow(
        `FLYWHEEL_CHECKPOINT_RETENTION_DAYS must be a positive integer, got "${value}"`,
      );
  });
});

describe('a Temporal that cannot be reached', () => {
  it('is named with its address, namespace and security, the transport error kept as the cause', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const settings = loadConfig({
      ...noStack,
      TEMPORAL_ADDRESS: `127.0.0.1:${closed}`,
      TEMPORAL_NAMESPACE: 'ops',
    }).temporal;
    const failed = await connectWorker(settings).catch((error: Error) => error);
    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).message).toMatch(
      new RegExp(`^cannot connect to Temporal at 127\\.0\\.0\\.1:${closed} \\(namespace ops, no TLS\\): .+`),
    );
    expect((failed as Error).cause).toBeInstanceOf(Error);
    expect(describeTemporal({ ...settings, tls: { clientCertPath: 'c', clientKeyPath: 'k' } })).toContain('mTLS');
    expect(describeTemporal({ ...settings, tls: true, apiKey: 'k' })).toContain('(namespace ops, TLS, API key)');
  });
});
