/**
 * MLflow's artifact proxy (`mlflow server --serve-artifacts`): clients read and write `mlflow-artifacts:/<path>`
 * through
 * these routes, and the server keeps the files in the object store under `mlflow-artifacts/<path>`. Also the
 * run-scoped listing (`artifacts/list?run_id=`) that `MlflowClient.list_artifacts` calls.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { ApiError, invalid, notFound } from '../../config/errors';
import { ObjectNotFoundError, type ObjectStore } from '../../storage/objectStore';
import { getRun } from '../../store/runs';
import { route, type RouteSpec } from '../route';

/** Where proxied artifacts live in the bucket. */
export const ARTIFACT_PREFIX = 'mlflow-artifacts/';

export interface ArtifactFileInfo {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

/**
 * A client's artifact path, checked before it names a key: no `..` segment, not absolute, no NUL or other control
 * character, no backslash, no empty segment. Returns it without a trailing slash.
 */
export function safeArtifactPath(path: string, field = 'path'): string {
  const trimmed = path.replace(/\/+$/, '');
  const reason = /[\u0000-\u001f]/.test(path)
    ? 'contains a control character'
    : path.includes('\\')
      ? 'contains a backslash'
      : path.startsWith('/') || /^[A-Za-z]:\//.test(path)
        ? 'is absolute'
        : trimmed.split('/').includes('..')
          ? 'climbs out with ".."'
          : trimmed.split('/').some((part) => part === '' || part === '.') && trimmed !== ''
            ? 'has an empty or "." segment'
            : Buffer.byteLength(trimmed) > 900
              ? 'is longer than 900 bytes (S3 keys hold 1,024 with the prefix)'
              : undefined;
  if (reason) throw invalid(field, `artifact path ${JSON.stringify(path)} ${reason}`);
  return trimmed;
}

/**
 * The artifact path behind a `mlflow-artifacts:` URI (`mlflow-artifacts:/1/<run>/artifacts` → `1/<run>/artifacts`), or
 * undefined for other schemes.
 */
export function proxiedPath(uri: string): string | undefined {
  const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(uri);
  return match ? safeArtifactPath(match[1]!, 'artifact_uri') : undefined;
}

const keyOf = (path: string) => `${ARTIFACT_PREFIX}${path}`;

/** One level of a directory, as MLflow lists it: files with sizes, then subdirectories, named relative to `dir`. */
export async function listArtifactDir(objects: ObjectStore, dir: string): Promise<ArtifactFileInfo[]> {
  const prefix = keyOf(dir ? `${dir}/` : '');
  const files: string[] = [];
  const dirs = new Set<string>();
  for (const key of await objects.list(prefix)) {
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash === -1) files.push(rest);
    else dirs.add(rest.slice(0, slash));
  }
  const sized: ArtifactFileInfo[] = [];
  // Sizes one request each; in slices so a large directory does not open hundreds of sockets at once.
  for (let i = 0; i < files.length; i += 16) {
    sized.push(
      ...(await Promise.all(
        files.slice(i, i + 16).map(async (name) => ({
          path: name,
          is_dir: false,
          file_size: (await objects.sizeOf(`${prefix}${name}`)) ?? 0,
        })),
      )),
    );
  }
  return [...sized, ...[...dirs].map((name) => ({ path: name, is_dir: true }))].sort((a, b) =>
    a.path.localeCompare(b.path),
  );
}

/**
 * Writes the request body to the object store; it is spooled to a temporary file, so memory stays flat whatever the
 * size.
 */
async function storeUpload(
  objects: ObjectStore,
  key: string,
  body: ReadableStream<Uint8Array> | null,
  contentType: string,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'flywheel-artifact-'));
  try {
    const file = join(dir, 'upload');
    await pipeline(
      body ? Readable.fromWeb(body as unknown as NodeReadableStream<Uint8Array>) : Readable.from([]),
      createWriteStream(file),
    );
    await objects.putFile(key, file, contentType);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Deletes a file or a directory's files; like MLflow's, deleting what is not there succeeds. */
async function removeArtifacts(objects: ObjectStore, path: string): Promise<void> {
  const keys = [
    ...(await objects.list(keyOf(`${path}/`))),
    ...((await objects.sizeOf(keyOf(path))) === undefined ? [] : [keyOf(path)]),
  ];
  for (let i = 0; i < keys.length; i += 16) await Promise.all(keys.slice(i, i + 16).map((key) => objects.remove(key)));
}

const artifactParams = z.object({ path: z.string() });
const TAGS = ['MLflow artifacts'];

export const artifactRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: '/api/2.0/mlflow-artifacts/artifacts/{path+}',
    summary: 'Download an artifact',
    tags: TAGS,
    scope: 'read',
    params: artifactParams,
    async handler({ params, deps }) {
      const path = safeArtifactPath(params.path);
      const size = await deps.objects.sizeOf(keyOf(path));
      if (size === undefined) throw notFound(`artifact ${path}`);
      try {
        const stream = await deps.objects.getStream(keyOf(path));
        return new Response(Readable.toWeb(stream) as unknown as ReadableStream, {
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        });
      } catch (error) {
        if (error instanceof ObjectNotFoundError) throw notFound(`artifact ${path}`);
        throw error;
      }
    },
  }),
  route({
    method: 'put',
    path: '/api/2.0/mlflow-artifacts/artifacts/{path+}',
    summary: 'Upload an artifact (the raw request body)',
    tags: TAGS,
    scope: 'write',
    params: artifactParams,
    rawBody: true,
    async handler({ params, c, deps }) {
      const path = safeArtifactPath(params.path);
      if (!path) throw invalid('path', 'name the artifact to upload');
      await storeUpload(
        deps.objects,
        keyOf(path),
        c.req.raw.body,
        c.req.header('content-type') || 'application/octet-stream',
      );
      return {};
    },
  }),
  route({
    method: 'delete',
    path: '/api/2.0/mlflow-artifacts/artifacts/{path+}',
    summary: 'Delete an artifact or a directory of them',
    tags: TAGS,
    scope: 'write',
    params: artifactParams,
    async handler({ params, deps }) {
      const path = safeArtifactPath(params.path);
      if (!path) throw invalid('path', 'name the artifact to delete');
      await removeArtifacts(deps.objects, path);
      return {};
    },
  }),
  route({
    method: 'get',
    path: '/api/2.0/mlflow-artifacts/artifacts',
    summary: 'List a directory of artifacts, one level deep',
    tags: TAGS,
    scope: 'read',
    query: z.object({ path: z.string().optional() }),
    async handler({ query, deps }) {
      return { files: await listArtifactDir(deps.objects, safeArtifactPath(query.path ?? '')) };
    },
  }),
  route({
    method: 'get',
    path: '/api/2.0/mlflow/artifacts/list',
    summary: "List a run's artifacts, one level deep",
    tags: TAGS,
    scope: 'read',
    query: z.object({
      run_id: z.string().optional(),
      run_uuid: z.string().optional(),
      path: z.string().optional(),
      page_token: z.string().optional(),
    }),
    async handler({ query, deps }) {
      const runId = query.run_id || query.run_uuid;
      if (!runId) throw invalid('run_id', 'is required');
      const rootUri = (await getRun(deps.db, runId)).artifactUri;
      const relative = safeArtifactPath(query.path ?? '');
      const root = proxiedPath(rootUri);
      if (root === undefined)
        throw new ApiError(
          'INVALID_STATE',
          `run ${runId} keeps its artifacts at ${rootUri}, which this server does not proxy`,
        );
      const files = await listArtifactDir(deps.objects, [root, relative].filter(Boolean).join('/'));
      return {
        root_uri: rootUri,
        files: files.map((file) => ({ ...file, path: relative ? posix.join(relative, file.path) : file.path })),
      };
    },
  }),
];
