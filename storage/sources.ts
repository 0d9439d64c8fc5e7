/**
 * Opens a dataset source — a local path, an http(s) URL or s3://bucket/key — as a byte stream. A local path is read
 * only from under an allowed folder (symlinks resolved first), and never from Flywheel's state folder.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { envVar, loadConfig } from '../config/env';
import { ObjectNotFoundError, type ObjectStore } from './objectStore';

/** The source itself is wrong (missing, forbidden, not a file): retrying won't help. */
export class SourceError extends Error {
  constructor(
    message: string,
    readonly source: string,
  ) {
    super(message);
    this.name = 'SourceError';
  }
}

/** Never show or store a password that came inside a source URL. */
export function redact(source: string): string {
  return source.replace(/\/\/([^:/@]+):[^@/]+@/, '//$1:***@');
}

const SECRET_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * The source with each `${VAR}` replaced from the worker's environment (or `env`), at the moment it is opened; never
 * stored.
 */
export function resolveSecretReferences(source: string, env?: NodeJS.ProcessEnv): string {
  return source.replace(SECRET_REFERENCE, (_, name: string) => {
    const value = env ? env[name] : envVar(name);
    if (value === undefined)
      throw new SourceError(`${redact(source)}: \${${name}} is not set where this worker runs`, source);
    return encodeURIComponent(value);
  });
}

export function isSqlSource(source: string): boolean {
  return /^postgres(ql)?:\/\//.test(source);
}

/** The local path of a path or file:// source; undefined for remote ones. */
export function localPath(source: string): string | undefined {
  if (/^(https?|s3):\/\//.test(source) || isSqlSource(source)) return undefined;
  return source.startsWith('file://') ? fileURLToPath(source) : source;
}

/** Where local sources may be read from: the configured data roots, plus the folder of the pipeline config. */
export interface LocalAccess {
  roots: readonly string[];
  /** Flywheel's state folder (credentials, logs, stack state): never read, whatever the roots say. */
  stateDir: string;
}

/** The configured access, widened by `configDir` (the folder of the pipeline config a source was declared in). */
export function localAccess(configDir?: string): LocalAccess {
  const config = loadConfig();
  return { roots: configDir ? [resolve(configDir), ...config.dataRoots] : config.dataRoots, stateDir: config.stateDir };
}

const within = (path: string, root: string) => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
const real = (path: string) => realpath(path).catch(() => resolve(path));

/** The real path of a local source once it is known to lie under an allowed root; a `SourceError` otherwise. */
export async function checkLocalPath(path: string, access: LocalAccess): Promise<string> {
  let target: string;
  try {
    target = await realpath(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SourceError(
      `${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message}`,
      path,
    );
  }
  const shown = target === resolve(path) ? path : `${path} (→ ${target})`;
  const stateDir = await real(access.stateDir);
  if (within(target, stateDir) || target.split(sep).includes('.flywheel')) {
    throw new SourceError(`${shown}: lies in Flywheel's state folder, which is never read as a dataset`, path);
  }
  const roots = await Promise.all(access.roots.map(real));
  if (!roots.some((root) => within(target, root))) {
    throw new SourceError(
      `${shown}: not under an allowed data folder (${[...new Set(roots)].join(', ')}); move the file there, or add its folder to FLYWHEEL_DATA_ROOTS (colon-separated)`,
      path,
    );
  }
  return target;
}

export async function openSource(source: string, store: ObjectStore, access?: LocalAccess): Promise<Readable> {
  if (source.startsWith('s3://')) {
    const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(source);
    if (!match) throw new SourceError(`${source}: an S3 source must look like s3://bucket/key`, source);
    try {
      return await store.getStream(match[2]!, match[1]!);
    } catch (error) {
      if (error instanceof ObjectNotFoundError)
        throw new SourceError(`${source}: no such S3 object (bucket "${match[1]}", key "${match[2]}")`, source);
      throw error;
    }
  }
  if (/^https?:\/\//.test(source)) {
    let response: Response;
    try {
      response = await fetch(resolveSecretReferences(source), {
        redirect: 'follow',
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code;
      // A name that does not resolve is a wrong URL; refused or reset connections may be transient.
      if (code === 'ENOTFOUND') throw new SourceError(`${source}: host not found`, source);
      throw new Error(`${source}: ${(error as Error).message}${code ? ` (${code})` : ''}`);
    }
    if (response.status >= 400 && response.status < 500)
      throw new SourceError(`${source}: HTTP ${response.status} ${response.statusText}`, source);
    if (!response.ok || !response.body) throw new Error(`${source}: HTTP ${response.status} ${response.statusText}`);
    return Readable.fromWeb(response.body as never);
  }
  if (isSqlSource(source))
    throw new SourceError(`${redact(source)}: a SQL source is read with a query, not as a file`, source);
  const path = await checkLocalPath(localPath(source)!, access ?? localAccess());
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new SourceError(`${path}: not a regular file`, path);
  } catch (error) {
    if (error instanceof SourceError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new SourceError(
      `${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message}`,
      path,
    );
  }
  return createReadStream(path, { highWaterMark: 1 << 20 });
}
