/** Connects to Temporal as configured: a local dev server, a self-hosted cluster (mTLS) or Temporal Cloud (API key). */
import { readFileSync } from 'node:fs';
import { Client, Connection, type ClientInterceptors } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalSettings } from '../config/env';

function tlsOptions(settings: TemporalSettings) {
  if (!settings.tls) return undefined;
  if (settings.tls === true) return true;
  return {
    serverNameOverride: settings.tls.serverNameOverride,
    // A private CA (a self-hosted cluster's); unset trusts the system's roots (Temporal Cloud).
    serverRootCACertificate: settings.tls.serverCaPath ? readFileSync(settings.tls.serverCaPath) : undefined,
    clientCertPair:
      settings.tls.clientCertPath && settings.tls.clientKeyPath
        ? { crt: readFileSync(settings.tls.clientCertPath), key: readFileSync(settings.tls.clientKeyPath) }
        : undefined,
  };
}

export function connectTemporal(settings: TemporalSettings): Promise<Connection> {
  return Connection.connect({
    address: settings.address,
    tls: tlsOptions(settings),
    apiKey: settings.apiKey,
    connectTimeout: '10s',
  });
}

/** `interceptors`: e.g. tracing's (observability/tracing.ts), so a workflow start carries the caller's trace. */
export async function temporalClient(
  settings: TemporalSettings,
  options: { interceptors?: ClientInterceptors } = {},
): Promise<Client> {
  const connection = await connectTemporal(settings);
  return new Client({ connection, namespace: settings.namespace, interceptors: options.interceptors });
}

export function connectWorker(settings: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect({ address: settings.address, tls: tlsOptions(settings), apiKey: settings.apiKey });
}
