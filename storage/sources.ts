/** Opens a dataset source — a local path, an http(s) URL or s3://bucket/key — as a byte stream. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ObjectNotFoundError, type ObjectStore } from './objectStore';

/** The source itself is wrong (missing, forbidden, not a file): retrying won't help. */
export class SourceError extends Error {
  constructor(message: string, readonly source: string) {
    super(message);
    this.name = 'SourceError';
  }
}

/** Never show or store a password that came inside a source URL. */
export function redact(source: string): string {
  return source.replace(/\/\/([^:/@]+):[^@/]+@/, '//$1:***@');
}

export function isSqlSource(source: string): boolean {
  return /^postgres(ql)?:\/\//.test(source);
}

/** The local path of a path or file:// source; undefined for remote ones. */
export function localPath(source: string): string | undefined {
  if (/^(https?|s3):\/\//.test(source) || isSqlSource(source)) return undefined;
  return source.startsWith('file://') ? new URL(source).pathname : source;
}

export async function openSource(source: string, store: ObjectStore): Promise<Readable> {
  if (source.startsWith('s3://')) {
    const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(source);
    if (!match) throw new SourceError(`${source}: an S3 source must look like s3://bucket/key`, source);
    try {
      return await store.getStream(match[2]!, match[1]!);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) throw new SourceError(`${source}: no such S3 object (bucket "${match[1]}", key "${match[2]}")`, source);
      throw error;
    }
  }
  if (/^https?:\/\//.test(source)) {
    let response: Response;
    try {
      response = await fetch(source, { redirect: 'follow', signal: AbortSignal.timeout(30_000) });
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code;
      // A name that does not resolve is a wrong URL; refused or reset connections may be transient.
      if (code === 'ENOTFOUND') throw new SourceError(`${source}: host not found`, source);
      throw new Error(`${source}: ${(error as Error).message}${code ? ` (${code})` : ''}`);
    }
    if (response.status >= 400 && response.status < 500) throw new SourceError(`${source}: HTTP ${response.status} ${response.statusText}`, source);
    if (!response.ok || !response.body) throw new Error(`${source}: HTTP ${response.status} ${response.statusText}`);
    return Readable.fromWeb(response.body as never);
  }
  if (isSqlSource(source)) throw new SourceError(`${redact(source)}: a SQL source is read with a query, not as a file`, source);
  const path = localPath(source)!;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new SourceError(`${path}: not a regular file`, path);
  } catch (error) {
    if (error instanceof SourceError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new SourceError(`${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message}`, path);
  }
  return createReadStream(path, { highWaterMark: 1 << 20 });
}
