/**
 * Declared routes: method, path, scope and zod schemas for path, query and body. `mount()` registers them on a Hono
 * app with validation and auth; `openApiDocument()` describes the same declarations, so the two cannot drift.
 */
import type { Context, Hono } from 'hono';
import { z, type ZodTypeAny } from 'zod';
import type { TokenScope } from '../store/tokens';
import { authenticate, type Principal } from './auth';
import { ApiError, fromZod } from '../config/errors';
import type { ServerDeps } from './deps';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteSpec<
  P extends ZodTypeAny = ZodTypeAny,
  Q extends ZodTypeAny = ZodTypeAny,
  B extends ZodTypeAny = ZodTypeAny,
> {
  method: Method;
  /** OpenAPI style: `/api/v1/runs/{runId}`. */
  path: string;
  summary: string;
  tags: string[];
  /** The token scope the route needs; `public` needs none. */
  scope: TokenScope | 'public';
  params?: P;
  query?: Q;
  /** A JSON body. Routes that stream (artifacts) leave it out and read `c.req.raw.body` themselves. */
  body?: B;
  /** Documented only: what a 200 carries. */
  response?: ZodTypeAny;
  /** A raw (non-JSON) request body, described in the OpenAPI document. */
  rawBody?: boolean;
  handler(input: {
    params: z.infer<P>;
    query: z.infer<Q>;
    body: z.infer<B>;
    principal: Principal;
    c: Context;
    deps: ServerDeps;
  }): Promise<unknown> | unknown;
}

/** Keeps each route's handler typed against its own schemas. */
export const route = <P extends ZodTypeAny, Q extends ZodTypeAny, B extends ZodTypeAny>(
  spec: RouteSpec<P, Q, B>,
): RouteSpec => spec as unknown as RouteSpec;

/** OpenAPI `{name}` → Hono `:name`; `{name+}` (the rest of the path, slashes included) → `:name{.+}`. */
const honoPath = (path: string) => path.replace(/\{([A-Za-z_]+)\+\}/g, ':$1{.+}').replace(/\{([A-Za-z_]+)\}/g, ':$1');

/** Query strings arrive as strings, and repeated keys as arrays only when repeated. */
function queryObject(c: Context): Record<string, string | string[]> {
  const all = c.req.queries();
  return Object.fromEntries(
    Object.entries(all).map(([key, values]) => [key, values.length === 1 ? values[0]! : values]),
  );
}

export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  const raw = c.req.raw.body;
  if (!raw) return {};
  if (type && !/^application\/(json|[\w.+-]+\+json)\b/i.test(type)) {
    throw new ApiError(
      'UNSUPPORTED_MEDIA_TYPE',
      `content-type ${type.split(';')[0]} is not supported: send application/json`,
    );
  }
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (declared > maxBytes)
    throw new ApiError(
      'REQUEST_LIMIT_EXCEEDED',
      `request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`,
    );
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of raw as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > maxBytes)
      throw new ApiError('REQUEST_LIMIT_EXCEEDED', `request body exceeds the limit of ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  return parseJson(text);
}

/**
 * JSON.parse with a depth bound (a 100k-deep array must be a 400, not a stack overflow) and NaN / Infinity literals,
 * which Python's json module writes.
 */
export function parseJson(text: string): unknown {
  let depth = 0,
    max = 0,
    inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92) i++;
      else if (ch === 34) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 91 || ch === 123) {
      if (++depth > max) max = depth;
    } else if (ch === 93 || ch === 125) depth--;
  }
  if (max > 64) throw new ApiError('MALFORMED_REQUEST', `malformed JSON: nested ${max} levels deep (at most 64)`);
  try {
    return JSON.parse(text);
  } catch (error) {
    if (/\bNaN\b|\bInfinity\b/.test(text)) {
      try {
        return JSON.parse(
          text.replace(
            /("(?:[^"\\]|\\.)*")|-?\bInfinity\b|\bNaN\b/g,
            (match, quoted: string | undefined) =>
              quoted ??
              (match === 'NaN' ? '"__fw_NaN__"' : match.startsWith('-') ? '"__fw_-Infinity__"' : '"__fw_Infinity__"'),
          ),
          (_key, value: unknown) =>
            value === '__fw_NaN__'
              ? NaN
              : value === '__fw_Infinity__'
                ? Infinity
                : value === '__fw_-Infinity__'
                  ? -Infinity
                  : value,
        );
      } catch {
        // fall through to the original message
      }
    }
    throw new ApiError('MALFORMED_REQUEST', `malformed JSON: ${(error as Error).message}`);
  }
}

const BAD_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Postgres stores neither NUL nor unpaired surrogates in text or jsonb: refuse them up front, naming the field. */
export function checkText(value: unknown, field: string): void {
  if (typeof value === 'string') {
    if (BAD_TEXT.test(value))
      throw new ApiError('INVALID_PARAMETER_VALUE', 'must not contain NUL characters or unpaired surrogates', field);
  } else if (Array.isArray(value)) value.forEach((item, i) => checkText(item, `${field}[${i}]`));
  else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      checkText(key, `${field} (a key)`);
      checkText(inner, `${field}.${key}`);
    }
  }
}

export function mount(app: Hono, routes: RouteSpec[], deps: ServerDeps): void {
  for (const spec of routes) {
    app.on(spec.method.toUpperCase(), honoPath(spec.path), async (c) => {
      const principal = await authenticate(c, spec.scope, deps);
      const rawParams = c.req.param();
      checkText(rawParams, 'path');
      const params = spec.params ? parse(spec.params, rawParams, 'path') : {};
      const rawQuery = queryObject(c);
      checkText(rawQuery, 'query');
      const query = spec.query ? parse(spec.query, rawQuery, 'query') : {};
      let body;
      if (spec.body) {
        const raw = await readJsonBody(c, deps.config.server.maxBodyBytes);
        checkText(raw, 'body');
        body = parse(spec.body, raw, 'body');
      }
      const result = await spec.handler({ params, query, body, principal, c, deps });
      if (result instanceof Response) return result;
      return c.json(result ?? {});
    });
  }
}

function parse<T extends ZodTypeAny>(schema: T, value: unknown, where: 'body' | 'query' | 'path'): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw fromZod(parsed.error, where);
  return parsed.data;
}
