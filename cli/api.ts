/** The CLI's client of the Flywheel API: FLYWHEEL_URL / FLYWHEEL_TOKEN, else the local stack's server and CLI token. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/pipeline';
import { loadConfig } from '../temporal.config';

export class ApiCallError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiCallError';
  }
}

function token(): string | undefined {
  const config = loadConfig();
  if (config.server.token) return config.server.token;
  const file = join(config.stateDir, 'cli-token');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** Calls the API; errors carry the server's message (which names the field), ready to print. */
export async function api<T>(method: string, path: string, body?: unknown, query?: Record<string, string | number | undefined>): Promise<T> {
  const { server } = loadConfig();
  const url = new URL(server.url + path);
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
  const auth = token();
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { ...(auth ? { authorization: `Bearer ${auth}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new ConfigError(`cannot reach the Flywheel server at ${server.url} (${(error as Error).message}); start it with "flywheel up" or set FLYWHEEL_URL`);
  }
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as unknown) : {};
  if (!response.ok) {
    const error = parsed as { error?: { code?: string; message?: string }; error_code?: string; message?: string };
    throw new ApiCallError(response.status, error.error?.code ?? error.error_code ?? 'ERROR', error.error?.message ?? error.message ?? `${response.status} ${response.statusText}`);
  }
  return parsed as T;
}
