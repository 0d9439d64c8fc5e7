/**
 * bench:pipeline — the cost of Flywheel's orchestration. The real pipeline workflow with no-op stage activities
 * against a bare workflow calling the same number of no-op activities, on the same dev server, in the same run,
 * interleaved so both see the same machine. Last line: one JSON object with `overhead_ratio` (goal ≤ 1.2).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { parsePipelineConfig } from '../config/pipeline';
import { loadConfig, PROJECT_ROOT } from '../config/env';
import { connectServices } from '../workers/wiring';
import type { PipelineInput } from '../workflows/pipeline';

Runtime.install({ logger: new DefaultLogger('WARN') });
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
// authorizeRelease, record, ingest, validate, train, resolveAlias, evaluate, register, deploy, ensureMonitor
const STAGE_ACTIVITIES = 10;
const require = createRequire(import.meta.url);

const noopStages = {
  async authorizeRelease() {
    return { actor: null, scope: null, newModel: true };
  },
  async recordPipeline() {},
  async ingestDataset() {
    return { datasetVersionId: 'bench@0', contentHash: '0', objectKey: 'k', rowCount: 1, reused: true };
  },
  async validateDataset() {
    return { reportKey: 'r', passed: true, errorCount: 0, warnings: [] };
  },
  async trainModel() {
    return { runId: 'run-bench', artifactKey: 'a', backend: 'none', taskQueue: 'bench', epochs: 1, finalLoss: 0 };
  },
  async resolveAlias() {
    return null;
  },
  async evaluateModel() {
    return {
      metrics: { r2: 1 },
      gate: { passed: true, failures: [], checks: [] },
      baseline: null,
      predictionReferenceKey: 'p',
      reportKey: 'r',
      plots: {},
    };
  },
  async registerModelVersion() {
    return { modelName: 'bench', version: 1 };
  },
  async deployModelVersion() {
    return { deploymentId: 'bench/champion', previousVersion: null, endpoint: 'http://bench', serving: 'confirmed' };
  },
  async ensureMonitor() {
    return 'monitor-bench';
  },
  async noop(step: number) {
    return step;
  },
};

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const percentile = (values: number[], q: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))]!;

const settings = loadConfig();
const services = await connectServices(settings);
const taskQueue = `bench-pipeline-${Date.now().toString(36)}`;
const worker = await Worker.create({
  connection: services.connection,
  namespace: settings.temporal.namespace,
  taskQueue,
  workflowsPath: require.resolve(join(PROJECT_ROOT, 'bench', 'workflows.ts')),
  activities: noopStages,
});
const running = worker.run();

const config = parsePipelineConfig({
  name: 'bench',
  model: 'bench',
  data: { dataset: 'bench', source: '/dev/null' },
  schema: { columns: { x: { type: 'number' }, y: { type: 'number' } } },
  training: { task: 'regression', target: 'y', features: { numeric: ['x'] } },
});
const input: PipelineInput = {
  config,
  servingUrl: 'http://bench',
  queues: { trainCpu: taskQueue },
  trigger: { kind: 'test' },
};

async function timed(workflowType: 'pipelineWorkflow' | 'bareWorkflow', id: string): Promise<number> {
  const started = performance.now();
  await services.client.workflow.execute(workflowType, {
    taskQueue,
    workflowId: id,
    args: workflowType === 'bareWorkflow' ? [STAGE_ACTIVITIES] : [input],
  });
  return performance.now() - started;
}

const pipelineMs: number[] = [];
const bareMs: number[] = [];
// Warm-up: the first executions pay for bundle load and connection set-up.
for (let i = 0; i < 3; i++) {
  await timed('pipelineWorkflow', `${taskQueue}-warm-p${i}`);
  await timed('bareWorkflow', `${taskQueue}-warm-b${i}`);
}
for (let round = 0; round < ROUNDS; round++) {
  const order =
    round % 2 === 0 ? (['pipelineWorkflow', 'bareWorkflow'] as const) : (['bareWorkflow', 'pipelineWorkflow'] as const);
  for (const type of order)
    (type === 'pipelineWorkflow' ? pipelineMs : bareMs).push(await timed(type, `${taskQueue}-${type}-${round}`));
  if ((round + 1) % 10 === 0)
    console.error(
      `  ${round + 1}/${ROUNDS} rounds: pipeline median ${median(pipelineMs).toFixed(1)} ms, bare median ${median(bareMs).toFixed(1)} ms`,
    );
}
worker.shutdown();
await running;
await services.close();

const figures = {
  bench: 'pipeline',
  rounds: ROUNDS,
  activities_per_workflow: STAGE_ACTIVITIES,
  pipeline_median_ms: Number(median(pipelineMs).toFixed(2)),
  pipeline_p90_ms: Number(percentile(pipelineMs, 0.9).toFixed(2)),
  bare_median_ms: Number(median(bareMs).toFixed(2)),
  bare_p90_ms: Number(percentile(bareMs, 0.9).toFixed(2)),
  overhead_ratio: Number((median(pipelineMs) / median(bareMs)).toFixed(3)),
  peer: 'bare Temporal workflow, same no-op activity count, same server and worker',
};
console.log(JSON.stringify(figures));
