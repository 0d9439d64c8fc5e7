/**
 * bench:api's load generator, in a process of its own (never the event loop of a server under test): bench/api.ts
 * starts it as `node --import tsx bench/apiLoad.ts <spec.json>` once per phase, for Flywheel and for MLflow alike, so
 * both servers face the same client. node:http with a keep-alive agent, one request in flight per client.
 *
 * Modes:
 * - log-batch: `clients` closed loops, client i logging to `runIds[i]` (a training process logs to its own run):
 *   `POST <base>/api/2.0/mlflow/runs/log-batch` with `metricsPerBatch` points, `keys` metric keys × the steps that
 *   fill the batch, the steps moving on with every batch (no point is ever re-logged: both servers take the insert
 * path,
 *   never an upsert or a duplicate). `warmupS` s unrecorded, then `durationS` s measured.
 * - search: one client, `POST <base>/api/2.0/mlflow/runs/search` with `body`, `warmup` requests unrecorded, then
 *   `requests` measured one after another (latency of a single user's query).
 * Prints one JSON line: batches / requests answered 200 (warm-up included, so the bench can count what was stored),
 * measured figures, latency percentiles (ms), statuses, the first error, the generator's CPU seconds.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

export interface ApiLoadSpec {
  mode: 'log-batch' | 'search';
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  token: string;
  /** log-batch: one run per client. */
  runIds?: string[];
  /** log-batch. @default 1000 */
  metricsPerBatch?: number;
  /** log-batch: distinct metric keys per batch (must divide metricsPerBatch). @default 10 */
  keys?: number;
  warmupS?: number;
  durationS?: number;
  /** search: the request body (JSON text). */
  body?: string;
  /** search: unrecorded requests first. @default 3 */
  warmup?: number;
  /** search: measured requests. */
  requests?: number;
}

export interface ApiLoadResult {
  mode: ApiLoadSpec['mode'];
  /** Answered 200, warm-up included (log-batch: × metricsPerBatch points were stored). */
  ok_total: number;
  /** Measured window (log-batch) or measured requests (search). */
  measured: number;
  ok: number;
  statuses: Record<string, number>;
  errors: number;
  seconds: number;
  /** log-batch: metric points per second answered 200 in the measured window. */
  points_per_s?: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number; mean: number };
  generator_cpu_s: number;
  first_error?: string;
  /** search: the run names of the last measured answer, in order (the bench checks them). */
  run_names?: string[];
  /** search: every measured latency (ms), so rounds can be pooled. */
  samples_ms?: number[];
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(url: URL, token: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${token}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function summary(latencies: number[]) {
  const sorted = Float64Array.from(latencies).sort();
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
  return {
    p50: round3(percentile(sorted, 0.5)),
    p90: round3(percentile(sorted, 0.9)),
    p99: round3(percentile(sorted, 0.99)),
    max: round3(sorted.length ? sorted[sorted.length - 1]! : NaN),
    mean: round3(mean),
  };
}

/** The body of batch `index` of a run: keys m0..m{keys-1} at `perKey` consecutive steps from index * perKey. */
function logBatchBody(runId: string, index: number, metricsPerBatch: number, keys: number): string {
  const perKey = metricsPerBatch / keys;
  const timestamp = Date.now();
  const metrics: { key: string; value: number; timestamp: number; step: number }[] = [];
  for (let s = 0; s < perKey; s++) {
    const step = index * perKey + s;
    for (let k = 0; k < keys; k++)
      metrics.push({ key: `m${k}`, value: Math.sin(step * 0.001 + k) * 10 + k, timestamp, step });
  }
  return JSON.stringify({ run_id: runId, metrics });
}

export async function runApiLoad(spec: ApiLoadSpec): Promise<ApiLoadResult> {
  const cpu0 = process.cpuUsage();
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  let okTotal = 0,
    measured = 0,
    ok = 0,
    errors = 0;
  let firstError: string | undefined;
  const record = (status: number, text: string, ms: number, isMeasured: boolean) => {
    if (status === 200) okTotal++;
    else firstError ??= `${status} ${text.slice(0, 300)}`;
    if (!isMeasured) return;
    measured++;
    statuses[status] = (statuses[status] ?? 0) + 1;
    latencies.push(ms);
    if (status === 200) ok++;
  };

  if (spec.mode === 'log-batch') {
    const url = new URL('/api/2.0/mlflow/runs/log-batch', spec.baseUrl);
    const metricsPerBatch = spec.metricsPerBatch ?? 1000;
    const keys = spec.keys ?? 10;
    if (metricsPerBatch % keys !== 0)
      throw new Error(`keys (${keys}) must divide metricsPerBatch (${metricsPerBatch})`);
    const start = performance.now();
    const measureFrom = start + (spec.warmupS ?? 2) * 1000;
    const measureTo = measureFrom + (spec.durationS ?? 10) * 1000;
    await Promise.all(
      (spec.runIds ?? []).map(async (runId) => {
        for (let index = 0; performance.now() < measureTo; index++) {
          const body = logBatchBody(runId, index, metricsPerBatch, keys);
          const sent = performance.now();
          try {
            const answer = await post(url, spec.token, body);
            // A batch counts in the window it was sent in; one still in flight at the end counts when it is answered.
            record(answer.status, answer.text, performance.now() - sent, sent >= measureFrom);
          } catch (error) {
            errors++;
            firstError ??= (error as Error).message;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      }),
    );
    const seconds = (performance.now() - measureFrom) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      mode: spec.mode,
      ok_total: okTotal,
      measured,
      ok,
      statuses,
      errors,
      seconds,
      points_per_s: (ok * metricsPerBatch) / seconds,
      latency_ms: summary(latencies),
      generator_cpu_s: (cpu.user + cpu.system) / 1e6,
      ...(firstError ? { first_error: firstError } : {}),
    };
  }

  const url = new URL('/api/2.0/mlflow/runs/search', spec.baseUrl);
  const warmup = spec.warmup ?? 3;
  const started = performance.now();
  let runNames: string[] | undefined;
  for (let i = 0; i < warmup + (spec.requests ?? 20); i++) {
    const sent = performance.now();
    const answer = await post(url, spec.token, spec.body ?? '{}').catch((error: Error) => ({
      status: 0,
      text: error.message,
    }));
    if (answer.status === 0) errors++;
    record(answer.status, answer.text, performance.now() - sent, i >= warmup);
    if (answer.status === 200)
      runNames = ((JSON.parse(answer.text) as { runs?: { info: { run_name: string } }[] }).runs ?? []).map(
        (r) => r.info.run_name,
      );
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    mode: spec.mode,
    ok_total: okTotal,
    measured,
    ok,
    statuses,
    errors,
    seconds: (performance.now() - started) / 1000,
    latency_ms: summary(latencies),
    generator_cpu_s: (cpu.user + cpu.system) / 1e6,
    ...(firstError ? { first_error: firstError } : {}),
    ...(runNames ? { run_names: runNames } : {}),
    samples_ms: latencies.map(round3),
  };
}

if (process.argv[1] && /apiLoad\.[tj]s$/.test(process.argv[1])) {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ApiLoadSpec;
  console.log(JSON.stringify(await runApiLoad(spec)));
  process.exit(0);
}
