/**
 * /api/v1/uploads: a client's local data file, streamed into the object store under its content hash
 * (`uploads/<sha256>/<name>`), so a pipeline submitted from another machine reads it as an s3:// source.
 * The body goes to a temporary key while its SHA-256 is checked and is copied into place only when it matches:
 * a wrong hash, a short body or a client that hangs up leaves nothing behind.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { ApiError, invalid, notFound } from '../../config/errors';
import { route, type RouteSpec } from '../route';

/** Where uploaded files live in the bucket: `uploads/<sha256>/<name>`. */
export const UPLOAD_PREFIX = 'uploads/';
/** Bodies being received and checked; each upload writes its own key here and removes it whatever happens. */
export const INCOMING_PREFIX = `${UPLOAD_PREFIX}.incoming/`;

export const uploadKey = (sha256: string, name: string) => `${UPLOAD_PREFIX}${sha256}/${name}`;

const tags = ['Uploads'];
const params = z.object({
  contentHash: z.string().regex(/^[0-9a-f]{64}$/, "must be the file's SHA-256 as 64 lowercase hex digits"),
});
const query = z
  .object({
    name: z
      .string()
      .min(1)
      .max(255)
      .refine(
        (name) => !/[\u0000-\u001f\u007f/\\]/.test(name),
        'must be a plain file name: no slash, backslash or control character',
      )
      .refine((name) => name !== '.' && name !== '..', 'must be a file name, not "." or ".."')
      .describe('the file name the object keeps (its extension tells ingest the format)'),
  })
  .strict();
const uploadAnswer = z.object({
  source: z.string().describe('s3://<bucket>/uploads/<sha256>/<name>: use it as data.source'),
  bytes: z.number().int(),
  sha256: z.string(),
  uploaded: z.boolean().describe('false when the same file was already there (nothing was sent to the store)'),
});

/** The body's own fault (hung up, shorter or longer than its Content-Length): a 400, not a server error. */
class UploadBodyError extends Error {}

export const uploadRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: '/api/v1/uploads/{contentHash}',
    summary: 'An uploaded file by content hash and name (404 when it was never uploaded)',
    tags,
    scope: 'read',
    params,
    query,
    response: uploadAnswer,
    async handler({ params, query, deps }) {
      const key = uploadKey(params.contentHash, query.name);
      const bytes = await deps.objects.sizeOf(key);
      if (bytes === undefined) throw notFound(`upload ${params.contentHash}/${query.name}`);
      return { source: deps.objects.uri(key), bytes, sha256: params.contentHash, uploaded: false };
    },
  }),
  route({
    method: 'put',
    path: '/api/v1/uploads/{contentHash}',
    summary:
      'Upload a data file (the raw body, with Content-Length) under its SHA-256; answers its s3:// source. Idempotent: a file already there is not sent again',
    tags,
    scope: 'write',
    params,
    query,
    response: uploadAnswer,
    rawBody: true,
    async handler({ params, query, c, deps }) {
      const key = uploadKey(params.contentHash, query.name);
      const existing = await deps.objects.sizeOf(key);
      // Content-addressed: the same hash and name is the same file; the unread body is drained by the server.
      if (existing !== undefined)
        return { source: deps.objects.uri(key), bytes: existing, sha256: params.contentHash, uploaded: false };
      const declared = c.req.header('content-length');
      if (declared === undefined || !/^\d{1,16}$/.test(declared))
        throw invalid('content-length', "send the file's size in Content-Length (a chunked upload is not taken)");
      const size = Number(declared);
      const limit = deps.config.server.maxUploadBytes;
      if (size > limit)
        throw new ApiError(
          'REQUEST_LIMIT_EXCEEDED',
          `${query.name}: ${size} bytes exceeds the upload limit of ${limit} bytes (FLYWHEEL_SERVER_MAX_UPLOAD_BYTES on the server)`,
        );

      const hash = createHash('sha256');
      let received = 0;
      let bodyFault: Error | undefined;
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          received += chunk.length;
          if (received > size)
            return done(new UploadBodyError(`body is longer than its Content-Length of ${size} bytes`));
          hash.update(chunk);
          done(null, chunk);
        },
        flush(done) {
          done(received === size ? null : new UploadBodyError(`body ended after ${received} of ${size} bytes`));
        },
      });
      // Registered first: when the store's PUT fails because the body did, the body's fault is already known.
      counted.on('error', (error) => (bodyFault ??= error));
      const raw = c.req.raw.body;
      const body = raw ? Readable.fromWeb(raw as unknown as NodeReadableStream<Uint8Array>) : Readable.from([]);
      const temporary = `${INCOMING_PREFIX}${params.contentHash}-${randomUUID()}`;
      try {
        try {
          await Promise.all([pipeline(body, counted), deps.objects.putStream(temporary, counted, size)]);
        } catch (error) {
          counted.destroy();
          if (bodyFault)
            throw invalid('body', `${query.name}: upload incomplete (${bodyFault.message}); nothing was stored`);
          throw error;
        }
        const actual = hash.digest('hex');
        if (actual !== params.contentHash) {
          throw invalid(
            'contentHash',
            `${query.name}: the body's SHA-256 is ${actual}, not ${params.contentHash} (the file changed or was corrupted on the way); nothing was stored`,
          );
        }
        await deps.objects.copy(temporary, key);
      } finally {
        // S3 deletes are idempotent: a key the aborted PUT never created is fine.
        await deps.objects.remove(temporary).catch(() => undefined);
      }
      return { source: deps.objects.uri(key), bytes: size, sha256: params.contentHash, uploaded: true };
    },
  }),
];
