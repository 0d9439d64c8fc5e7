/** Connects to Temporal as configured: a local dev server, a self-hosted cluster (mTLS) or Temporal Cloud (API key). */
import { readFileSync } from 'node:fs';
import { Client, Connection, type ClientInterceptors } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalSettings } from '../config/env';

/** A TLS file's bytes; one that cannot be read names itself and the variable that points at it. */
function readTlsFile(path: string, what: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new Error(`cannot read Temporal's ${what} ${path} (${variable}): ${reason}`);
  }
}

function tlsOptions(settings: TemporalSettings) {
  if (!settings.tls) return undefined;
  if (settings.tls === true) return true;
  const { clientCertPath, clientKeyPath, serverCaPath, serverNameOverride } = settings.tls;
  return {
    serverNameOverride,
    // A private CA (a self-hosted cluster's); unset trusts the system's roots (Temporal Cloud).
    serverRootCACertificate: serverCaPath
      ? readTlsFile(serverCaPath, 'server CA certificate', 'TEMPORAL_TLS_SERVER_CA_PATH')
      : undefined,
    clientCertPair:
      clientCertPath && clientKeyPath
        ? {
            crt: readTlsFile(clientCertPath, 'client certificate', 'TEMPORAL_TLS_CLIENT_CERT_PATH'),
            key: readTlsFile(clientKeyPath, 'client key', 'TEMPORAL_TLS_CLIENT_KEY_PATH'),
          }
        : undefined,
  };
}

/** Where and how Temporal is reached, for a failed connection's message: address, namespace, TLS, API key. */
export function describeTemporal(settings: TemporalSettings): string {
  const tls = settings.tls === true ? 'TLS' : settings.tls?.clientCertPath ? 'mTLS' : settings.tls ? 'TLS' : 'no TLS';
  return `Temporal at ${settings.address} (namespace ${settings.namespace}, ${tls}${settings.apiKey ? ', API key' : ''})`;
}

/** A failed connection names the Temporal it tried; the transport error stays as the cause (server/temporalOutage). */
async function reaching<T>(settings: TemporalSettings, connect: () => Promise<T>): Promise<T> {
  try {
    return await connect();
  } catch (error) {
    throw new Error(`cannot connect to ${describeTemporal(settings)}: ${(error as Error).message}`, { cause: error });
  }
}

export async function connectTemporal(settings: TemporalSettings): Promise<Connection> {
  const tls = tlsOptions(settings);
  return reaching(settings, () =>
    Connection.connect({ address: settings.address, tls, apiKey: settings.apiKey, connectTimeout: '10s' }),
  );
}

/** `interceptors`: e.g. tracing's (observability/tracing.ts), so a workflow start carries the caller's trace. */
export async function temporalClient(
  settings: TemporalSettings,
  options: { interceptors?: ClientInterceptors } = {},
): Promise<Client> {
  const connection = await connectTemporal(settings);
  return new Client({ connection, namespace: settings.namespace, interceptors: options.interceptors });
}

export async function connectWorker(settings: TemporalSettings): Promise<NativeConnection> {
  const tls = tlsOptions(settings);
  return reaching(settings, () =>
    NativeConnection.connect({ address: settings.address, tls, apiKey: settings.apiKey }),
  );
}
