/** /api/v1 a model version's evaluation for the UI: the holdout report as JSON and its plots (SVG). */
import { Readable } from 'node:stream';
import { z } from 'zod';
import { notFound } from '../../config/errors';
import { ObjectNotFoundError } from '../../storage/objectStore';
import { getModelVersion } from '../../store/registry';
import type { ServerDeps } from '../deps';
import { route, type RouteSpec } from '../route';

const tags = ['Models'];
const versionParams = z
  .object({
    name: z.string().min(1),
    version: z
      .string()
      .regex(/^[1-9]\d{0,9}$/, 'must be a version number')
      .transform(Number),
  })
  .strict();

async function evaluationOf(deps: ServerDeps, name: string, version: number) {
  const found = await getModelVersion(deps.db, name, version);
  if (!found.evaluation) throw notFound(`the evaluation of ${name} v${version} (registered without one)`);
  return found.evaluation;
}

export const evaluationRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: '/api/v1/models/{name}/versions/{version}/evaluation',
    summary:
      "A version's holdout evaluation report: metrics, the champion's on the same rows, gate checks, slices, fairness, confusion matrix, plot names",
    tags,
    scope: 'read',
    params: versionParams,
    handler: async ({ params, deps }) => {
      const evaluation = await evaluationOf(deps, params.name, params.version);
      let report: Record<string, unknown>;
      try {
        report = JSON.parse((await deps.objects.getBuffer(evaluation.reportKey)).toString('utf8'));
      } catch (error) {
        if (error instanceof ObjectNotFoundError) throw notFound(`evaluation report ${evaluation.reportKey}`);
        throw error;
      }
      return {
        modelName: params.name,
        version: params.version,
        ...report,
        gate: evaluation.gate,
        baseline: evaluation.baseline,
        plots: Object.keys(evaluation.plots),
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/models/{name}/versions/{version}/plots/{plot}',
    summary: 'One evaluation plot as SVG (residuals, roc, precision_recall, calibration, confusion_matrix …)',
    tags,
    scope: 'read',
    params: versionParams.extend({ plot: z.string().regex(/^[a-z0-9_]{1,64}$/, 'must be a plot name') }).strict(),
    handler: async ({ params, deps }) => {
      const evaluation = await evaluationOf(deps, params.name, params.version);
      const key = evaluation.plots[params.plot];
      if (!key) throw notFound(`plot "${params.plot}" of ${params.name} v${params.version}`);
      try {
        const stream = await deps.objects.getStream(key);
        return new Response(Readable.toWeb(stream) as unknown as ReadableStream, {
          headers: { 'content-type': 'image/svg+xml', 'cache-control': 'private, max-age=3600' },
        });
      } catch (error) {
        if (error instanceof ObjectNotFoundError) throw notFound(`plot ${key}`);
        throw error;
      }
    },
  }),
];
