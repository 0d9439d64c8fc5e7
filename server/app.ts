/**
 * The Flywheel server's HTTP app: declared routes (Flywheel's /api/v1, MLflow's /api/2.0/mlflow and its /ajax-api
 * twin, the artifact proxy), one error handler, /openapi.json generated from the same declarations, /health, the web UI
 * (/ui/).
 */
import { Hono } from 'hono';
import type { ServerDeps } from './deps';
import { ApiError } from '../config/errors';
import { redactSecrets } from '../config/redact';
import { openApiDocument } from './openapi';
import { mount, type RouteSpec } from './route';
import { mlflowRoutes } from './mlflow/index';
import { apiRoutes } from './api/index';
import { temporalOutage } from './temporalOutage';
import { mountUi } from './ui';
import { mountMetrics } from './metrics';

const isMlflowPath = (path: string) => /^\/(ajax-)?api\/2\.0\//.test(path);

export function errorBody(path: string, error: ApiError): Record<string, unknown> {
  return isMlflowPath(path)
    ? { error_code: error.code, message: error.message }
    : { error: { code: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) } };
}

export function allRoutes(): RouteSpec[] {
  return [...apiRoutes, ...mlflowRoutes];
}

export function createApp(deps: ServerDeps, log: (line: string) => void = () => undefined): Hono {
  const app = new Hono();
  mountMetrics(app, deps);
  const routes = allRoutes();
  const document = openApiDocument(routes, deps.config.packageVersion ?? '0.1.0');
  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.get('/openapi.json', (c) => c.json(document));
  mountUi(app);
  mount(app, routes, deps);
  // MLflow's web UI and some clients call the same API under /ajax-api.
  mount(
    app,
    routes
      .filter((r) => r.path.startsWith('/api/2.0/mlflow/'))
      .map((r) => ({ ...r, path: r.path.replace(/^\/api/, '/ajax-api') })),
    deps,
  );
  app.notFound((c) => {
    const error = new ApiError('ENDPOINT_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`);
    return c.json(errorBody(c.req.path, error), 404);
  });
  app.onError((error, c) => {
    const known = error instanceof ApiError ? error : temporalOutage(error);
    // drizzle wraps the driver's error: its cause is what Postgres said.
    const cause = (error as Error).cause as Error | undefined;
    if (!known)
      log(
        redactSecrets(
          `${c.req.method} ${c.req.path}: ${(error as Error).stack ?? error}${cause ? `\n  cause: ${cause.message ?? cause}` : ''}`,
        ),
      );
    const apiError = known ?? new ApiError('INTERNAL_ERROR', 'internal error (the server log has the details)');
    return c.json(errorBody(c.req.path, apiError), apiError.status as 400);
  });
  return app;
}
