/**
 * The API server's `/metrics` and its HTTP request series. `/metrics` needs a `read` token unless
 * FLYWHEEL_METRICS_PUBLIC=1: unlike serving and workers, the server is the door clients reach, and its series name
 * models and routes; a scraper on a private network may be let in without a token.
 */
import type { Context, Hono } from 'hono';
import { routePath } from 'hono/route';
import { enableProcessMetrics, httpDuration, httpRequests, metricsText } from '../observability/metrics';
import { authenticate } from './auth';
import type { ServerDeps } from './deps';

/** The matched route's pattern, or `unmatched` (a 404 names no route: raw paths would be unbounded labels). */
export function routeLabel(pattern: string | undefined): string {
  return !pattern || pattern === '*' || pattern === '/*' ? 'unmatched' : pattern;
}

function matchedPattern(c: Context): string | undefined {
  try {
    return routePath(c, -1);
  } catch {
    return undefined;
  }
}

/** Registers the request metrics middleware (first, so it sees every request) and `GET /metrics`. */
export function mountMetrics(app: Hono, deps: ServerDeps): void {
  enableProcessMetrics();
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const labels = { method: c.req.method, route: routeLabel(matchedPattern(c)) };
    httpRequests.inc({ ...labels, status: String(c.res.status) });
    httpDuration.observe(labels, (performance.now() - started) / 1000);
  });
  app.get('/metrics', async (c) => {
    if (!deps.config.observability.metricsPublic) await authenticate(c, 'read', deps);
    const { contentType, body } = await metricsText();
    return c.body(body, 200, { 'content-type': contentType });
  });
}
