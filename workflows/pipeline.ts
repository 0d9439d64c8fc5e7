/**
 * The pipeline: one activity per lifecycle stage, passing ids and object keys, never data.
 *   1. record    — store the config (so monitors and schedules can start it again)
 *   2. ingest    — source → content-addressed dataset version
 *   3. validate  — the declared schema; an error stops here, before any training
 *   4. train     — on the GPU queue when asked (CPU fallback after `gpuWait`), else the CPU queue
 *   5. evaluate  — holdout metrics and the threshold gate; a failed gate stops here
 *   6. register  — model version with lineage
 *   7. deploy    — moves the serving alias; the serving process answers with it
 *   8. monitor   — starts (or re-targets) the deployment's long-running monitor
 */
import {
  ActivityFailure, ApplicationFailure, ChildWorkflowFailure, defineQuery, executeChild, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { StageActivities, TrainInput } from '../activities/index';
import type { PipelineConfig } from '../config/pipeline';
import { ACTIVITY_PROFILES } from '../config/constants';
import { DATASET_VERSION_KEY, MODEL_KEY, PIPELINE_KEY, STAGE_KEY } from './searchAttributes';
import { applyPoint, sweepWorkflow, type SweepResult, type TrialResult } from './sweep';
import { trainRouted, type TrainingRoute } from './training';

export type StageName = 'record' | 'ingest' | 'validate' | 'train' | 'evaluate' | 'register' | 'deploy' | 'monitor';
export const STAGES: StageName[] = ['record', 'ingest', 'validate', 'train', 'evaluate', 'register', 'deploy', 'monitor'];

export interface StageStatus {
  name: StageName;
  status: 'pending' | 'running' | 'done' | 'failed' | 'skipped';
  startedAt?: number;
  endedAt?: number;
  /** One line for humans: what the stage produced or why it failed. */
  summary?: string;
}

export interface PipelineInput {
  config: PipelineConfig;
  trigger?: { kind: 'cli' | 'schedule' | 'drift' | 'test'; reason?: string; alertId?: number };
  /** git sha (+ "-dirty") of the code that started the run. */
  codeVersion?: string;
  /** Base URL of the serving process the deploy stage confirms against. */
  servingUrl?: string;
  /** Training queues; tests give their own. @default TASK_QUEUES */
  queues?: { trainCpu?: string; trainGpu?: string };
}

export interface PipelineResult {
  datasetVersionId: string;
  datasetReused: boolean;
  validation: { reportKey: string; contract: 'pinned' | 'inferred'; reference: string | null; warnings: string[] };
  /** Set when training was a sweep: its trials and the winner. */
  sweep: { workflowId: string; trials: TrialResult[]; best: number } | null;
  runId: string;
  backend: string;
  trainingQueue: string;
  metrics: Record<string, number>;
  model: { name: string; version: number } | null;
  deployment: { alias: string; endpoint: string; previousVersion: number | null; serving: string } | null;
  monitorWorkflowId: string | null;
  stages: StageStatus[];
}

export const progressQuery = defineQuery<StageStatus[]>('progress');

const quick = proxyActivities<StageActivities>(ACTIVITY_PROFILES.quick);
const io = proxyActivities<StageActivities>(ACTIVITY_PROFILES.io);

function rootMessage(error: unknown): string {
  let current = error as { message?: string; cause?: unknown } | undefined;
  while (current && (current instanceof ActivityFailure || current instanceof ChildWorkflowFailure) && current.cause) current = current.cause as typeof current;
  return current?.message ?? String(error);
}

function rootType(error: unknown): string {
  let current = error as { cause?: unknown } | undefined;
  while ((current instanceof ActivityFailure || current instanceof ChildWorkflowFailure) && current.cause) current = current.cause as typeof current;
  return current instanceof ApplicationFailure && current.type ? current.type : 'StageFailedError';
}

export async function pipelineWorkflow(input: PipelineInput): Promise<PipelineResult> {
  const { config } = input;
  const workflowId = workflowInfo().workflowId;
  const stages: StageStatus[] = STAGES.map((name) => ({ name, status: 'pending' }));
  setHandler(progressQuery, () => stages);
  upsertSearchAttributes([{ key: MODEL_KEY, value: config.model }, { key: PIPELINE_KEY, value: config.name }]);

  async function stage<T>(name: StageName, work: () => Promise<T>, summarize: (result: T) => string): Promise<T> {
    const entry = stages.find((s) => s.name === name)!;
    entry.status = 'running';
    entry.startedAt = Date.now();
    upsertSearchAttributes([{ key: STAGE_KEY, value: name }]);
    try {
      const result = await work();
      entry.status = 'done';
      entry.summary = summarize(result);
      return result;
    } catch (error) {
      entry.status = 'failed';
      entry.summary = rootMessage(error);
      for (const later of stages) if (later.status === 'pending') later.status = 'skipped';
      upsertSearchAttributes([{ key: STAGE_KEY, value: `${name}-failed` }]);
      if (error instanceof ApplicationFailure) throw error;
      throw ApplicationFailure.nonRetryable(`${name} failed: ${entry.summary}`, rootType(error), { stage: name });
    } finally {
      entry.endedAt = Date.now();
    }
  }
  const skip = (name: StageName, why: string) => {
    const entry = stages.find((s) => s.name === name)!;
    entry.status = 'skipped';
    entry.summary = why;
  };

  await stage('record', () => quick.recordPipeline({ name: config.name, config: config as unknown as Record<string, unknown> }), () => `pipeline ${config.name} stored`);

  const { dataset: datasetName, ...table } = config.data;
  const dataset = await stage('ingest', () => io.ingestDataset({ workflowId, dataset: datasetName, table }),
    (r) => `${r.datasetVersionId}: ${r.rowCount} rows from ${r.format}${r.reused ? ' (already stored; reused)' : ''}`);
  upsertSearchAttributes([{ key: DATASET_VERSION_KEY, value: dataset.datasetVersionId }]);

  const { drift } = config.validation;
  const features = [...config.training.features.numeric, ...config.training.features.categorical];
  const validation = await stage('validate', () => io.validateDataset({
    workflowId, datasetVersionId: dataset.datasetVersionId, contract: config.schema, reference: config.validation.reference,
    drift: drift.enabled ? { columns: drift.columns ?? features, psiThreshold: drift.psiThreshold, severity: drift.severity } : null,
  }), (r) => `${r.contract} schema holds${r.reference ? `; distributions checked against ${r.reference}` : ''}`
    + `${r.warnings.length ? ` (${r.warnings.length} warnings)` : ''}`);

  const trainInput: TrainInput = {
    workflowId, pipelineName: config.name, modelName: config.model, datasetVersionId: dataset.datasetVersionId,
    codeVersion: input.codeVersion, experiment: config.training.experiment ?? config.name,
    // What started the run is part of its lineage: `flywheel lineage` follows `alert` back to the monitor's finding.
    tags: {
      ...config.training.tags, trigger: input.trigger?.kind ?? 'cli',
      ...(input.trigger?.alertId !== undefined ? { alert: String(input.trigger.alertId) } : {}),
    },
    params: {
      task: config.training.task, target: config.training.target, features: config.training.features, model: config.training.model,
      epochs: config.training.epochs, batchSize: config.training.batchSize, learningRate: config.training.learningRate,
      optimizer: config.training.optimizer, seed: config.training.seed, holdoutFraction: config.training.holdoutFraction,
      earlyStopping: config.training.earlyStopping,
    },
  };
  const route: TrainingRoute = { gpu: config.training.resources.gpu, gpuWait: config.training.resources.gpuWait, queues: input.queues };
  let sweep: SweepResult | undefined;
  const training = await stage('train', async () => {
    if (!config.training.sweep) return trainRouted(trainInput, route);
    const { workflowId: _own, ...base } = trainInput;
    sweep = await executeChild(sweepWorkflow, { workflowId: `${workflowId}-sweep`, args: [{ base, sweep: config.training.sweep, route }] });
    trainInput.params = applyPoint(trainInput.params, sweep.best.params);
    return sweep.best;
  }, (r) => (sweep
    ? `sweep of ${sweep.trials.length} trials (${sweep.trials.filter((t) => t.stoppedEarly).length} stopped early, ${sweep.trials.filter((t) => t.status === 'failed').length} failed); best trial ${sweep.best.trial + 1} ${JSON.stringify(sweep.best.params)}: val_loss ${round(sweep.best.objective)}, ${r.runId} on ${r.backend}`
    : `${r.runId}: ${r.epochs} epochs on ${r.backend} (${r.taskQueue})${r.resumedFromEpoch !== undefined ? `, resumed after epoch ${r.resumedFromEpoch + 1}` : ''}`));

  const evaluation = await stage('evaluate', async () => {
    const result = await io.evaluateModel({
      runId: training.runId, artifactKey: training.artifactKey, datasetVersionId: dataset.datasetVersionId,
      params: trainInput.params, gates: config.evaluation.gates,
    });
    if (!result.gate.passed) throw ApplicationFailure.nonRetryable(`evaluation gate failed: ${result.gate.failures.join('; ')}`, 'GateFailedError', result.metrics);
    return result;
  }, (r) => Object.entries(r.metrics).filter(([k]) => k !== 'count').map(([k, v]) => `${k}=${round(v)}`).join(' '));

  const model = await stage('register', () => quick.registerModelVersion({
    workflowId, modelName: config.model, task: config.training.task, runId: training.runId, datasetVersionId: dataset.datasetVersionId,
    params: { ...trainInput.params }, metrics: evaluation.metrics, codeVersion: input.codeVersion,
    artifactKey: training.artifactKey, predictionReferenceKey: evaluation.predictionReferenceKey,
  }), (r) => `${r.modelName} v${r.version}`);

  let deployment: PipelineResult['deployment'] = null;
  let monitorWorkflowId: string | null = null;
  if (config.deploy.enabled && input.servingUrl) {
    const deployed = await stage('deploy', () => io.deployModelVersion({
      workflowId, pipelineName: config.name, modelName: model.modelName, version: model.version, alias: config.deploy.alias,
      servingUrl: input.servingUrl!, actor: `workflow:${workflowId}`, reason: input.trigger?.reason ?? `pipeline ${config.name} (${input.trigger?.kind ?? 'cli'})`,
    }), (r) => `${config.model}@${config.deploy.alias} → v${model.version} (was ${r.previousVersion ?? 'none'}); serving ${r.serving}`);
    deployment = { alias: config.deploy.alias, endpoint: deployed.endpoint, previousVersion: deployed.previousVersion, serving: deployed.serving };
    if (config.monitor.enabled) {
      monitorWorkflowId = await stage('monitor', () => quick.ensureMonitor({
        modelName: model.modelName, alias: config.deploy.alias, pipelineName: config.name, version: model.version, settings: config.monitor,
      }), (id) => `monitor ${id} every ${config.monitor.interval}`);
    } else skip('monitor', 'monitor.enabled is false');
  } else {
    skip('deploy', config.deploy.enabled ? 'no serving endpoint configured' : 'deploy.enabled is false');
    skip('monitor', 'nothing deployed');
  }
  upsertSearchAttributes([{ key: STAGE_KEY, value: 'completed' }]);

  return {
    datasetVersionId: dataset.datasetVersionId, datasetReused: dataset.reused,
    validation: { reportKey: validation.reportKey, contract: validation.contract, reference: validation.reference, warnings: validation.warnings },
    sweep: sweep ? { workflowId: `${workflowId}-sweep`, trials: sweep.trials, best: sweep.best.trial } : null, runId: training.runId, backend: training.backend,
    trainingQueue: training.taskQueue, metrics: evaluation.metrics, model: { name: model.modelName, version: model.version },
    deployment, monitorWorkflowId, stages,
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
