/** The serving process's prediction series: each prediction request counted by model, version and status, and timed. */
import { predictionLatency, predictionsServed } from '../observability/metrics';

/** `POST /predict` and OIP v2 `POST /v2/models/{name}[/versions/{v}]/infer`. */
const PREDICTION_PATH = /^\/(?:predict|v2\/models\/[^/]+(?:\/versions\/[^/]+)?\/infer)\/?$/;

export function isPredictionRequest(method: string | undefined, url: string | undefined): boolean {
  return method === 'POST' && PREDICTION_PATH.test((url ?? '/').split('?')[0]!);
}

/**
 * Labels of one answered prediction request. A request that never reached a served version (an unknown model name, a
 * malformed body) is `unresolved`: a client's typo must not become a series of its own.
 */
export function predictionLabels(
  context: { model?: string; version?: number },
  status: number,
): { model: string; version: string; status: string } {
  const resolved = context.model !== undefined && context.version !== undefined;
  return {
    model: resolved ? context.model! : 'unresolved',
    version: resolved ? String(context.version) : 'none',
    status: String(status),
  };
}

/** Counts and times one request once its response is sent; other routes are not predictions and are skipped. */
export function observePrediction(
  request: { method?: string; url?: string },
  status: number,
  context: { model?: string; version?: number },
  startedMs: number,
): void {
  if (!isPredictionRequest(request.method, request.url)) return;
  const labels = predictionLabels(context, status);
  predictionsServed.inc(labels);
  predictionLatency.observe({ model: labels.model, version: labels.version }, (performance.now() - startedMs) / 1000);
}
