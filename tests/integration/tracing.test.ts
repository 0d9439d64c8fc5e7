/**
 * OpenTelemetry traces through Temporal's interceptors: with OTEL_EXPORTER_OTLP_ENDPOINT set, a workflow started by
 * the traced client, the workflow itself and its activities export spans of one trace over OTLP/HTTP. The collector
 * is a small HTTP receiver in this test; the exporter, worker, Temporal, Postgres and MinIO are real.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/env';
import { connectServices, createMainWorker, type Services } from '../../workers/wiring';
import { datasetWorkflow } from '../../workflows/dataset';
import { eventually, unique } from './harness';

const require = createRequire(import.meta.url);

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
}

/** OTLP/HTTP JSON (what @opentelemetry/exporter-trace-otlp-http sends) flattened to one row per span. */
function spansOf(body: {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: { spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string }[] }[];
  }[];
}): ReceivedSpan[] {
  return (body.resourceSpans ?? []).flatMap((resource) => {
    const service = resource.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
    return (resource.scopeSpans ?? []).flatMap((scope) =>
      (scope.spans ?? []).map(({ traceId, spanId, parentSpanId, name }) => ({
        service,
        traceId,
        spanId,
        parentSpanId: parentSpanId || undefined,
        name,
      })),
    );
  });
}

const received: ReceivedSpan[] = [];
const requests: { path: string; contentType: string }[] = [];
let collector: Server;
let services: Services;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;
let workDir: string;

beforeAll(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '' });
      received.push(...spansOf(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;

  workDir = await mkdtemp(join(tmpdir(), 'flywheel-tracing-'));
  process.env.FLYWHEEL_DATA_ROOTS = [process.env.FLYWHEEL_DATA_ROOTS, workDir].filter(Boolean).join(':');
  const config = loadConfig({ ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: '' });
  expect(config.observability.tracing).toEqual({ endpoint: `${endpoint}/v1/traces`, serviceName: undefined });
  services = await connectServices(config, 'tracing-test');
  taskQueue = unique('tracing');
  worker = await createMainWorker(services, taskQueue);
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await services?.close();
  await new Promise((resolve) => collector?.close(resolve));
});

describe('OpenTelemetry tracing through the Temporal interceptors', () => {
  it('is off without an OTLP endpoint', () => {
    const env = { ...process.env };
    delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    expect(loadConfig(env).observability.tracing).toBeUndefined();
    expect(
      loadConfig({ ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/traces' }).observability.tracing,
    ).toEqual({ endpoint: 'http://collector:4318/traces', serviceName: undefined });
  });

  it('exports the client start, the workflow and its activities as spans of one trace', async () => {
    const source = join(workDir, 'prices.csv');
    await writeFile(source, ['sku,price', ...Array.from({ length: 50 }, (_, i) => `s${i},${i + 0.5}`)].join('\n'));
    const workflowId = unique('traced-dataset');
    const result = await services.client.workflow.execute(datasetWorkflow, {
      workflowId,
      taskQueue,
      args: [{ dataset: unique('traced'), table: { source }, drift: null }],
    });
    expect(result.version.rowCount).toBe(50);
    await services.tracing!.flush();

    const start = await eventually(
      async () => received.find((s) => s.name === 'StartWorkflow:datasetWorkflow'),
      30_000,
      'the client span of the workflow start',
    );
    const trace = await eventually(
      async () => {
        const spans = received.filter((s) => s.traceId === start.traceId);
        const names = spans.map((s) => s.name);
        return names.includes('RunWorkflow:datasetWorkflow') &&
          names.includes('RunActivity:ingestDataset') &&
          names.includes('RunActivity:validateDataset')
          ? spans
          : undefined;
      },
      30_000,
      'workflow and activity spans in the trace of the start',
    );
    const byName = (name: string) => trace.find((s) => s.name === name)!;
    // The chain: client start → workflow run → activity scheduled by the workflow → activity run.
    expect(byName('RunWorkflow:datasetWorkflow').parentSpanId).toBe(start.spanId);
    const scheduled = byName('StartActivity:ingestDataset');
    expect(byName('RunActivity:ingestDataset').parentSpanId).toBe(scheduled.spanId);
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(['flywheel-tracing-test']));
    expect(requests.every((r) => r.path === '/v1/traces' && r.contentType.startsWith('application/json'))).toBe(true);
  });

  it('keeps replay deterministic: recorded pipelines replay with the tracing interceptors in the bundle', async () => {
    const histories = join(import.meta.dirname, '../fixtures/histories');
    const fixture = readdirSync(histories).find((name) => name.startsWith('pipeline-') && name.endsWith('.json'))!;
    const history = JSON.parse(readFileSync(join(histories, fixture), 'utf8'));
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows/index.ts'),
      workflowInterceptorModules: services.tracing!.worker.workflowModules,
      logger: new DefaultLogger('WARN'),
    });
    await expect(
      Worker.runReplayHistory(
        { workflowBundle, replayName: 'traced-replay', sinks: services.tracing!.worker.sinks },
        history,
        history.events[0].workflowExecutionStartedEventAttributes.workflowId,
      ),
    ).resolves.toBeUndefined();
  });
});
