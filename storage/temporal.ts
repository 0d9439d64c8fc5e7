/** Connects to Temporal as configured: a local dev server, a self-hosted cluster (mTLS) or Temporal Cloud (API key). */
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalSettings } from '../config/env';

function tlsOptions(settings: TemporalSettings) {
  if (!settings.tls) return undefined;
  if (settings.tls === true) return true;
  return {
    serverNameOverride: settings.tls.serverNameOverride,
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

export async function temporalClient(settings: TemporalSettings): Promise<Client> {
  const connection = await connectTemporal(settings);
  return new Client({ connection, namespace: settings.namespace });
}

export function connectWorker(settings: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect({ address: settings.address, tls: tlsOptions(settings), apiKey: settings.apiKey });
}
