/**
 * The web UI (web/, built by scripts/ui.ts) under /ui/: static files need no token (the app asks for one and sends it
 * to /api/v1), hashed assets are cached for a year, index.html never, and any other /ui/ path gets index.html (the
 * app routes it). `/` redirects there. The first request builds the UI when web/dist is missing or stale.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { Hono } from 'hono';
import { ApiError } from '../config/errors';
import { ensureUiBuilt, UI_DIST } from '../scripts/ui';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export function mountUi(app: Hono, options: { dist?: string; build?: boolean } = {}): void {
  const dist = options.dist ?? UI_DIST;
  let ready: Promise<unknown> | undefined;
  const prepare = () =>
    (ready ??= (options.build === false ? Promise.resolve() : ensureUiBuilt()).catch((error: unknown) => {
      ready = undefined;
      throw error;
    }));

  app.get('/', (c) => c.redirect('/ui/', 302));
  app.get('/ui', (c) => c.redirect('/ui/', 301));
  app.get('/ui/*', async (c) => {
    try {
      await prepare();
    } catch (error) {
      throw new ApiError('TEMPORARILY_UNAVAILABLE', (error as Error).message);
    }
    let relative: string;
    try {
      relative = decodeURIComponent(c.req.path.slice('/ui/'.length));
    } catch {
      throw new ApiError('ENDPOINT_NOT_FOUND', `no file ${c.req.path} in the web UI`);
    }
    const file = normalize(join(dist, relative));
    const inside = file === dist || file.startsWith(dist + sep);
    const isFile = inside && relative !== '' && existsSync(file) && statSync(file).isFile();
    if (!isFile && extname(relative) !== '' && !relative.endsWith('.html'))
      throw new ApiError('ENDPOINT_NOT_FOUND', `no file ${c.req.path} in the web UI`);
    const path = isFile ? file : join(dist, 'index.html');
    const immutable = isFile && relative.startsWith('assets/');
    return c.body(await readFile(path), 200, {
      'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
    });
  });
}
