import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ApiError, fromZod } from '../../config/errors';
import { allRoutes, createApp } from '../../server/app';
import type { ServerDeps } from '../../server/deps';
import { checkText, parseJson } from '../../server/route';
import { loadConfig } from '../../config/env';

// Routes that fail before touching a dependency (auth without a token, unknown paths, openapi) need none.
const deps = { config: loadConfig({}) } as unknown as ServerDeps;

describe('the server without a token', () => {
  const app = createApp(deps);

  it('answers 401 in MLflow’s shape on MLflow routes and Flywheel’s on its own', async () => {
    const mlflow = await app.request('/api/2.0/mlflow/runs/create', {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(mlflow.status).toBe(401);
    expect(await mlflow.json()).toMatchObject({ error_code: 'UNAUTHENTICATED' });
    const own = await app.request('/api/v1/runs');
    expect(own.status).toBe(401);
    expect(await own.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
  });

  it('answers 404 ENDPOINT_NOT_FOUND for an unknown route, under /ajax-api too', async () => {
    const missing = await app.request('/api/2.0/mlflow/nope');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error_code: 'ENDPOINT_NOT_FOUND' });
    expect((await app.request('/ajax-api/2.0/mlflow/runs/get?run_id=x')).status).toBe(401);
  });

  it('describes every declared route in /openapi.json, each with its own operation id', async () => {
    const document = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, { operationId: string }>>;
    };
    const operations = Object.values(document.paths).flatMap((methods) => Object.values(methods));
    expect(operations).toHaveLength(allRoutes().length);
    expect(new Set(operations.map((o) => o.operationId)).size).toBe(operations.length);
    expect(document.paths['/api/2.0/mlflow/runs/log-batch']?.post).toBeDefined();
  });
});

describe('request parsing', () => {
  it('refuses JSON nested deeper than 64 levels without overflowing the stack', () => {
    expect(() => parseJson('['.repeat(100_000) + ']'.repeat(100_000))).toThrow(/nested 100000 levels deep/);
  });

  it('reads NaN and Infinity as Python writes them, and leaves them alone inside strings', () => {
    expect(parseJson('{"value": NaN, "b": -Infinity, "s": "NaN Infinity"}')).toEqual({
      value: NaN,
      b: -Infinity,
      s: 'NaN Infinity',
    });
  });

  it('names the field of the first schema problem', () => {
    const schema = z.object({ metrics: z.array(z.object({ value: z.number() }).strict()) }).strict();
    const wrongType = schema.safeParse({ metrics: [{ value: 1 }, { value: 'x' }] });
    expect(fromZod(wrongType.error!, 'body').message).toMatch(
      /^body\.metrics\[1\]\.value: Expected number, received string/,
    );
    const unknown = schema.safeParse({ metrics: [], extra: 1 });
    const error = fromZod(unknown.error!, 'body');
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe('body: unknown field "extra"');
    expect(error.status).toBe(400);
  });

  it('refuses NUL and unpaired surrogates anywhere in a request, naming where', () => {
    expect(() => checkText({ tags: [{ key: 'a', value: 'x\u0000y' }] }, 'body')).toThrow(
      /^body\.tags\[0\]\.value: must not contain NUL/,
    );
    expect(() => checkText({ ['k\ud800']: 'v' }, 'body')).toThrow(/body \(a key\)/);
    expect(() => checkText({ emoji: '\ud83d\ude00', text: 'ok' }, 'body')).not.toThrow();
  });
});
