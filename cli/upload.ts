/**
 * A local data file sent to the Flywheel server (`PUT /api/v1/uploads/{contentHash}`), so workers on any machine read
 * it as
 * an s3:// source: hashed while streamed from disk, never sent twice, progress shown for big files.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, isAbsolute, relative, sep } from 'node:path';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { ConfigError, type PipelineConfig } from '../config/pipeline';
import { loadConfig } from '../config/env';
import { api, ApiCallError, ServerUnreachableError, token, type CallOptions } from './api';
import type { Say } from './output';

/** Files at least this big get progress lines while hashed and sent. */
const PROGRESS_FROM_BYTES = 64 * 1024 * 1024;

/**
 * The server cannot take the file (it has no upload route, or the file is over its limit): the caller decides what
 * then.
 */
export class UploadUnavailableError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'UploadUnavailableError';
  }
}

interface UploadAnswer {
  source: string;
  bytes: number;
  sha256: string;
  uploaded: boolean;
}

/** 12345678 → "12.3 MB". */
export function formatSize(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes,
    unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The path as the user would type it: relative to the working folder when it lies under it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? `.${sep}${rel}` : path;
}

/** Passes bytes through, saying every tenth of `total` (for big files only). */
function progress(what: string, total: number, say: Say): Transform {
  let seen = 0,
    told = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      const tenth = Math.floor((seen / total) * 10);
      if (total >= PROGRESS_FROM_BYTES && tenth > told && tenth < 10) {
        told = tenth;
        say(`  ${what} ${tenth * 10}% (${formatSize(seen)} of ${formatSize(total)})`);
      }
      done(null, chunk);
    },
  });
}

async function sha256Of(path: string, size: number, say: Say): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(
    createReadStream(path, { highWaterMark: 1 << 20 }),
    progress(`hashing ${basename(path)}`, size, say),
    async (chunks: AsyncIterable<Buffer>) => {
      for await (const chunk of chunks) hash.update(chunk);
    },
  );
  return hash.digest('hex');
}

/**
 * PUTs a file's bytes with node:http, not fetch: Node 20's fetch reads a streamed request body ahead of the socket
 * (the whole file in memory); `pipe` waits for the socket to drain.
 */
function putStream(
  url: URL,
  headers: Record<string, string>,
  body: Readable,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method: 'PUT', headers },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    body.on('error', (error) => request.destroy(error));
    body.pipe(request);
  });
}

/** A failed upload's answer as an `ApiCallError` carrying the server's message. */
function answerError(status: number, text: string): ApiCallError {
  let answer: { error?: { code?: string; message?: string } } = {};
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    // a proxy's HTML page: the status says enough
  }
  return new ApiCallError(status, answer.error?.code ?? 'ERROR', answer.error?.message ?? `HTTP ${status}`);
}

/**
 * Uploads a local file to the Flywheel server and returns its s3:// URI (`s3://<bucket>/uploads/<sha256>/<name>`),
 * saying so in one line. A file already uploaded (same content and name) is not sent again. Throws
 * `UploadUnavailableError` when the server cannot take it, a `ConfigError` when the file cannot be read.
 */
export async function uploadLocalSource(
  path: string,
  say: Say,
  options: CallOptions = {},
  field = 'data.source',
): Promise<string> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(
      `${field} ${shown(path)}: ${error.code === 'ENOENT' ? 'no such file' : error.code === 'EACCES' ? 'permission denied' : error.message}`,
    );
  });
  if (!info.isFile()) throw new ConfigError(`${field} ${shown(path)}: not a regular file`);
  const name = basename(path);
  const sha256 = await sha256Of(path, info.size, say);
  const at = `/api/v1/uploads/${sha256}`;
  const described = `${shown(path)} (${formatSize(info.size)})`;
  try {
    const existing = await api<UploadAnswer>('GET', at, undefined, { name }, options);
    say(`${described} is already uploaded → ${existing.source}`);
    return existing.source;
  } catch (error) {
    if (!(error instanceof ApiCallError && error.status === 404)) throw error;
    if (error.code === 'ENDPOINT_NOT_FOUND')
      throw new UploadUnavailableError(`the Flywheel server takes no uploads (${error.message})`);
  }

  const { server } = loadConfig();
  const url = new URL(server.url + at);
  url.searchParams.set('name', name);
  const auth = options.token || token();
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const body = file.pipe(progress(`uploading ${name}`, info.size, say));
  file.on('error', (error) => body.destroy(error));
  let response: { status: number; text: string };
  try {
    response = await putStream(
      url,
      {
        ...(auth ? { authorization: `Bearer ${auth}` } : {}),
        'content-type': 'application/octet-stream',
        'content-length': String(info.size),
      },
      body,
    );
  } catch (error) {
    // The file failed to read (it is the error the body was destroyed with), not the server.
    if (error === body.errored) throw new ConfigError(`${field} ${shown(path)}: ${(error as Error).message}`);
    throw new ServerUnreachableError(
      `uploading ${shown(path)} to the Flywheel server at ${server.url} failed (${(error as Error).message})`,
    );
  } finally {
    file.destroy();
  }
  if (response.status !== 200) {
    const error = answerError(response.status, response.text);
    if (error.status === 413) throw new UploadUnavailableError(`${shown(path)} is too big to upload: ${error.message}`);
    throw error;
  }
  const uploaded = JSON.parse(response.text) as UploadAnswer;
  say(
    uploaded.uploaded
      ? `uploaded ${described} → ${uploaded.source}`
      : `${described} is already uploaded → ${uploaded.source}`,
  );
  return uploaded.source;
}

/** The local path of a source (a path or file:// URL); undefined for a URL the workers fetch themselves. */
function localFile(source: string): string | undefined {
  if (source.startsWith('file://')) return fileURLToPath(source);
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source) ? undefined : source;
}

/** The workers read local files only under their data folders; say so when a local path is sent as it is. */
function noteDataRoots(path: string, why: string, note: Say): void {
  const roots = loadConfig().dataRoots;
  const within = (root: string) => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
  if (roots.some(within)) return;
  note(
    `note: ${why}; data.source ${path} is a file on this machine and the workers read local files only under their data folders (here: ${roots.join(', ')}; set FLYWHEEL_DATA_ROOTS where they run), else use an s3:// or http(s):// source`,
  );
}

/**
 * The config to send: a local `data.source` (already resolved against the config's folder by the loader) is uploaded
 * and replaced by its s3:// URI. When the server cannot take it, the path is sent as it is, with a note. `note` gets
 * the upload's lines (stderr in the CLI, so stdout stays the command's answer).
 */
export async function withUploadedSource(
  config: PipelineConfig,
  note: Say,
  options: CallOptions = {},
): Promise<PipelineConfig> {
  // An imported model's file (`runner: import`) travels the same way; it has no data-folder fallback.
  const modelPath = config.training.source === undefined ? undefined : localFile(config.training.source);
  if (modelPath !== undefined)
    config = {
      ...config,
      training: { ...config.training, source: await uploadLocalSource(modelPath, note, options, 'training.source') },
    };
  const path = localFile(config.data.source);
  if (path === undefined) return config;
  try {
    const source = await uploadLocalSource(path, note, options);
    const { configDir: _localFolder, ...data } = config.data;
    return { ...config, data: { ...data, source } };
  } catch (error) {
    if (!(error instanceof UploadUnavailableError)) throw error;
    noteDataRoots(path, error.message, note);
    return config;
  }
}
