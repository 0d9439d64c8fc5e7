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
  const path = source.startsWith('file://') ? new URL(source).pathname : source;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new SourceError(`${path}: not a regular file`, path);
  } catch (error) {
    if (error instanceof SourceError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new SourceError(`${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message}`, path);
  }
  return createReadStream(path);
}
