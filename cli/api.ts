/** The CLI's client of the Flywheel API: FLYWHEEL_URL / FLYWHEEL_TOKEN, else the local stack's server and CLI token. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/pipeline';
import { loadConfig } from '../config/env';

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiCallError';
  }
}

/** The server did not answer at all (down, restarting, wrong URL). */
export class ServerUnreachableError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'ServerUnreachableError';
  }
}

export function token(): string | undefined {
  const config = loadConfig();
  if (config.server.token) return config.server.token;
  const file = join(config.stateDir, 'cli-token');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

export interface CallOptions {
  /** Sent instead of FLYWHEEL_TOKEN or the local CLI token (a command's `--token`). */
  token?: string;
}

/** Calls the API; errors carry the server's message (which names the field), ready to print. */
export async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  query?: Record<string, string | number | undefined>,
  options: CallOptions = {},
): Promise<T> {
  const { server } = loadConfig();
  const url = new URL(server.url + path);
  for (const [key, value] of Object.entries(query ?? {}))
    if (value !== undefined) url.searchParams.set(key, String(value));
  const auth = options.token || token();
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        ...(auth ? { authorization: `Bearer ${auth}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    const cause = (error as Error).cause as Error | undefined;
    throw new ServerUnreachableError(
      `cannot reach the Flywheel server at ${server.url} (${cause?.message ?? (error as Error).message}); start it with "flywheel up" or set FLYWHEEL_URL`,
    );
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw new ServerUnreachableError(
      `the Flywheel server at ${server.url} closed the connection (${(error as Error).message})`,
    );
  }
  let parsed: unknown = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    // A proxy's HTML error page: the status says enough.
  }
  if (!response.ok) {
    const error = parsed as { error?: { code?: string; message?: string }; error_code?: string; message?: string };
    throw new ApiCallError(
      response.status,
      error.error?.code ?? error.error_code ?? 'ERROR',
      error.error?.message ?? error.message ?? `${response.status} ${response.statusText}`,
    );
  }
  return parsed as T;
}

/**
 * 503 (Temporal or the server briefly unavailable), a gateway's 502 / 504, or no answer at all: worth waiting through.
 */
export const isTransient = (error: unknown) =>
  error instanceof ServerUnreachableError || (error instanceof ApiCallError && [502, 503, 504].includes(error.status));

export interface PollOptions {
  /** Between two reads. @default 500 */
  intervalMs?: number;
  /** How long the server may stay unreachable or answer 503 in a row before the wait gives up. @default 30 minutes */
  outageMs?: number;
  /** Told once when an outage starts and once when it ends (stderr). */
  note?: (line: string) => void;
  token?: string;
}

/**
 * GETs `path` until `done(answer)`, handing every answer to `onAnswer`. A 503 or an unreachable server is waited
 * through (with a note) for up to `outageMs` in a row: a restarting Temporal or server is not the pipeline failing.
 */
export async function pollUntil<T>(
  path: string,
  done: (answer: T) => boolean,
  onAnswer: (answer: T) => void,
  options: PollOptions = {},
): Promise<T> {
  const intervalMs = options.intervalMs ?? 500;
  const outageMs = options.outageMs ?? 30 * 60_000;
  const note = options.note ?? ((line: string) => console.error(line));
  let outageSince: number | undefined;
  for (;;) {
    let answer: T | undefined;
    try {
      answer = await api<T>('GET', path, undefined, undefined, { token: options.token });
    } catch (error) {
      if (!isTransient(error)) throw error;
      const now = Date.now();
      if (outageSince === undefined) {
        outageSince = now;
        note(`  (${(error as Error).message}; still waiting, for up to ${Math.round(outageMs / 60_000)} min)`);
      } else if (now - outageSince > outageMs) {
        throw new ConfigError(
          `gave up after ${Math.round((now - outageSince) / 1000)} s without an answer: ${(error as Error).message}`,
        );
      }
    }
    if (answer !== undefined) {
      if (outageSince !== undefined) note('  (the server answers again)');
      outageSince = undefined;
      onAnswer(answer);
      if (done(answer)) return answer;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
