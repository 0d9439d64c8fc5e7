/**
 * The pipeline: one activity per lifecycle stage, passing ids and object keys, never data.
 *   1. record    — check the release grant (who may replace what an existing model serves); store the config
 *   2. ingest    — source → content-addressed dataset version
 *   3. validate  — the declared schema; an error stops here, before any training
 *   4. train     — on the GPU queue when asked (CPU fallback after `gpuWait`), else the CPU queue
 *   5. evaluate  — holdout report (metrics, slices, fairness, plots); the champion scored on the same rows
 *   6. register  — model version with lineage and its evaluation, whatever the gate said (the registry queues its
 * webhook)
 *   7. gate      — MLflow-style thresholds vs the champion; a failure stops here: registered, not promoted
 *   8. approve   — optional: waits, durably, for `flywheel approve <model@version>` (an update) or its timeout
 *   9. deploy    — direct alias move, or a canary / A/B / shadow rollout child workflow, if authorised:
 *                  a new model's first release, a release grant (an admin's; the monitor's only with gates), or an
 *                  admin's approval; otherwise the version stays registered, tagged release=unauthorised
 *  10. monitor   — starts (or re-targets) the deployment's long-running monitor
 * Each step is a function below, named for its stage; the words each writes for humans are built in summaries.ts.
 * Running pipelines replay through this code: tests/integration/pipelineReplay.test.ts replays recorded histories.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  defineQuery,
  defineUpdate,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { IngestResult, StageActivities, TrainInput, TrainResult, ValidateResult } from '../activities/index';
import type { EvaluateResult } from '../activities/evaluate';
import type { RegisterResult } from '../activities/registry';
import type { ReleaseAuthority } from '../activities/release';
import type { PipelineConfig, ReleaseStrategy } from '../config/pipeline';
import { ACTIVITY_PROFILES } from '../config/constants';
import { durationMs } from '../config/duration';
import { rootCause } from '../config/errors';
import type { Grant } from '../store/grants';
import { GRANTS_PATCH, replayRetiredWebhooks, rolloutWorkflow, type RolloutResult } from './release';
import { DATASET_VERSION_KEY, MODEL_KEY, PIPELINE_KEY, STAGE_KEY } from './searchAttributes';
import {
  approvedSummary,
  awaitingApproval,
  deploySummary,
  evaluateSummary,
  gateFailedMessage,
  gateSummary,
  ingestSummary,
  monitorSummary,
  recordSummary,
  registerSummary,
  releaseReason,
  releaseRefusal,
  releaseRejectedMessage,
  rolledBackMessage,
  rolloutSummary,
  trainSummary,
  validateSummary,
} from './summaries';
import { applyPoint, sweepWorkflow, type SweepResult, type TrialResult } from './sweep';
import { trainRouted, type TrainingRoute } from './training';

export type StageName =
  'record' | 'ingest' | 'validate' | 'train' | 'evaluate' | 'register' | 'gate' | 'approve' | 'deploy' | 'monitor';
export const STAGES: StageName[] = [
  'record',
  'ingest',
  'validate',
  'train',
  'evaluate',
  'register',
  'gate',
  'approve',
  'deploy',
  'monitor',
];

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
  trigger?: { kind: 'cli' | 'api' | 'schedule' | 'drift' | 'test'; reason?: string; alertId?: number };
  /** git sha (+ "-dirty") of the code that started the run. */
  codeVersion?: string;
  /** Base URL of the serving process the deploy stage confirms against. */
  servingUrl?: string;
  /** Training queues; tests give their own. @default TASK_QUEUES */
  queues?: { trainCpu?: string; trainGpu?: string; trainPythonCpu?: string; trainPythonGpu?: string };
  /**
   * Action `release` for this workflow (store/grants.ts), signed by whoever checked an admin token, or by the monitor
   * for
   * its retraining. Without one, a new version of an existing model is registered (tag release=unauthorised), not
   * deployed.
   */
  grant?: Grant;
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
  /** Set when the deploy was a canary, A/B or shadow rollout. */
  rollout: RolloutResult | null;
  monitorWorkflowId: string | null;
  stages: StageStatus[];
}

export const progressQuery = defineQuery<StageStatus[]>('progress');

export interface ApprovalDecision {
  version: number;
  approved: boolean;
  /** Action `approve` for this workflow and version; the update is refused without one. */
  grant?: Grant;
  comment?: string;
}
/** `flywheel approve <model@version>`: checked (the version must be the one waiting), authorised, then recorded. */
export const approveUpdate = defineUpdate<{ actor: string }, [ApprovalDecision]>('approve');

const quick = proxyActivities<StageActivities>(ACTIVITY_PROFILES.quick);
const io = proxyActivities<StageActivities>(ACTIVITY_PROFILES.io);

/** Only Temporal's own wrappers are unwrapped: a stage's failure keeps its own message and type. */
const stageWrapper = (link: unknown) => link instanceof ActivityFailure || link instanceof ChildWorkflowFailure;

function rootMessage(error: unknown): string {
  return (rootCause(error, stageWrapper) as { message?: string } | undefined)?.message ?? String(error);
}

function rootType(error: unknown): string {
  const root = rootCause(error, stageWrapper);
  return root instanceof ApplicationFailure && root.type ? root.type : 'StageFailedError';
}

/**
 * The config as the workflow reads it. The schema's defaults are applied where a config is parsed, but a schedule keeps
 * the input it was created with: one created before the release fields existed has no `evaluation` (read: no gates, no
 * slices) and no `deploy.strategy` (read: a direct deploy), and releases as it did then.
 */
type ReceivedConfig = Omit<PipelineConfig, 'evaluation' | 'deploy'> & {
  evaluation?: Partial<PipelineConfig['evaluation']>;
  deploy: Omit<PipelineConfig['deploy'], 'strategy'> & { strategy?: ReleaseStrategy };
};

/** What every step reads: the run's input and config, its workflow id, its gates and the stage tracker. */
interface PipelineRun {
  input: PipelineInput;
  config: ReceivedConfig;
  workflowId: string;
  gates: PipelineConfig['evaluation']['gates'];
  stages: StageTracker;
}

export async function pipelineWorkflow(input: PipelineInput): Promise<PipelineResult> {
  const config: ReceivedConfig = input.config;
  const gates = config.evaluation?.gates ?? [];
  const workflowId = workflowInfo().workflowId;
  const stages = trackStages();
  const approvals = acceptApprovals(config.model);
  upsertSearchAttributes([
    { key: MODEL_KEY, value: config.model },
    { key: PIPELINE_KEY, value: config.name },
  ]);
  const run: PipelineRun = { input, config, workflowId, gates, stages };

  const authority = await record(run);
  const dataset = await ingest(run);
  const validation = await validate(run, dataset);
  const trained = await train(run, dataset);
  const evaluation = await evaluate(run, dataset, trained);
  const model = await register(run, dataset, trained, evaluation);
  await gate(run, evaluation, model);
  const approvedBy = await approve(run, approvals, model);
  const release = await deploy(run, authority, approvedBy, model);
  const monitorWorkflowId = await monitor(run, release, model);
  upsertSearchAttributes([{ key: STAGE_KEY, value: 'completed' }]);

  return {
    datasetVersionId: dataset.datasetVersionId,
    datasetReused: dataset.reused,
    validation: {
      reportKey: validation.reportKey,
      contract: validation.contract,
      reference: validation.reference,
      warnings: validation.warnings,
    },
    sweep: trained.sweep
      ? { workflowId: `${workflowId}-sweep`, trials: trained.sweep.trials, best: trained.sweep.best.trial }
      : null,
    runId: trained.run.runId,
    backend: trained.run.backend,
    trainingQueue: trained.run.taskQueue,
    metrics: evaluation.metrics,
    model: { name: model.modelName, version: model.version },
    deployment: release?.deployment ?? null,
    rollout: release?.rollout ?? null,
    monitorWorkflowId,
    stages: stages.list,
  };
}

/** The stages' statuses (answered to `progressQuery`), and the wrapper that runs one stage and records its outcome. */
interface StageTracker {
  list: StageStatus[];
  stage<T>(name: StageName, work: () => Promise<T>, summarize: (result: T) => string): Promise<T>;
  skip(name: StageName, why: string): void;
  /** A running stage's interim summary (what it waits for). */
  note(name: StageName, summary: string): void;
}

function trackStages(): StageTracker {
  const stages: StageStatus[] = STAGES.map((name) => ({ name, status: 'pending' }));
  setHandler(progressQuery, () => stages);
  const entryOf = (name: StageName) => stages.find((s) => s.name === name)!;

  async function stage<T>(name: StageName, work: () => Promise<T>, summarize: (result: T) => string): Promise<T> {
    const entry = entryOf(name);
    entry.status = 'running';
    entry.startedAt = Date.now();
    upsertSearchAttributes([{ key: STAGE_KEY, value: name }]);
    try {
      const result = await work();
      entry.status = 'done';
      entry.summary = summarize(result);
      return result;
    } catch (error) {
      // A cancelled pipeline ends CANCELLED, not failed: let Temporal's cancellation through unwrapped.
      if (isCancellation(error)) {
        entry.status = 'skipped';
        entry.summary = 'cancelled';
        for (const later of stages) if (later.status === 'pending') later.status = 'skipped';
        throw error;
      }
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
    const entry = entryOf(name);
    entry.status = 'skipped';
    entry.summary = why;
  };
  const note = (name: StageName, summary: string) => {
    entryOf(name).summary = summary;
  };
  return { list: stages, stage, skip, note };
}

/** The approve update's state: the version it waits for (set only while waiting) and the first decision taken. */
interface Approvals {
  awaiting?: { version: number };
  decision?: { approved: boolean; actor: string; comment?: string; grant?: Grant };
}

/** Registers `approveUpdate`; the approve step opens it by setting `awaiting`. */
function acceptApprovals(modelName: string): Approvals {
  const approvals: Approvals = {};
  setHandler(
    approveUpdate,
    async (d) => {
      const actor = await quick.authorize({
        request: `approving ${modelName} v${d.version}`,
        grant: d.grant,
        modelName,
        action: 'approve',
        version: d.version,
      });
      approvals.decision ??= { approved: d.approved, actor, comment: d.comment, grant: d.grant };
      return { actor };
    },
    {
      validator: (d) => {
        const { awaiting } = approvals;
        if (!awaiting) throw new Error('this release is not waiting for an approval');
        if (d.version !== awaiting.version)
          throw new Error(`this release waits for v${awaiting.version}, not v${d.version}`);
      },
    },
  );
  return approvals;
}

/** 1. record: the release authority (null: a run recorded before grants existed), then the config. */
async function record({ input, config, stages }: PipelineRun): Promise<ReleaseAuthority | null> {
  return stages.stage(
    'record',
    async () => {
      let authority = null as ReleaseAuthority | null;
      if (patched(GRANTS_PATCH))
        authority = await quick.authorizeRelease({ grant: input.grant, modelName: config.model });
      await quick.recordPipeline({ name: config.name, config: config as unknown as Record<string, unknown> });
      return authority;
    },
    (authority) => recordSummary(config.name, authority),
  );
}

/** 2. ingest: the source as a content-addressed dataset version. */
async function ingest({ config, workflowId, stages }: PipelineRun): Promise<IngestResult> {
  const { dataset: datasetName, features: featureSpec, ...table } = config.data;
  const dataset = await stages.stage(
    'ingest',
    () => io.ingestDataset({ workflowId, dataset: datasetName, table, features: featureSpec }),
    ingestSummary,
  );
  upsertSearchAttributes([{ key: DATASET_VERSION_KEY, value: dataset.datasetVersionId }]);
  return dataset;
}

/** 3. validate: the declared schema, and drift against the reference when asked. */
async function validate({ config, workflowId, stages }: PipelineRun, dataset: IngestResult): Promise<ValidateResult> {
  const { drift } = config.validation;
  const features = [...config.training.features.numeric, ...config.training.features.categorical];
  return stages.stage(
    'validate',
    () =>
      io.validateDataset({
        workflowId,
        datasetVersionId: dataset.datasetVersionId,
        contract: config.schema,
        reference: config.validation.reference,
        drift: drift.enabled
          ? { columns: drift.columns ?? features, psiThreshold: drift.psiThreshold, severity: drift.severity }
          : null,
      }),
    validateSummary,
  );
}

/** What training hands on: the run (a sweep's best trial), the sweep if any, and the parameters it trained with. */
interface Trained {
  run: TrainResult;
  sweep: SweepResult | undefined;
  params: TrainInput['params'];
}

/** 4. train: one routed run, or a sweep child whose best point becomes the parameters. */
async function train({ input, config, workflowId, stages }: PipelineRun, dataset: IngestResult): Promise<Trained> {
  const trainInput = trainingInput(input, config, workflowId, dataset);
  const route: TrainingRoute = {
    gpu: config.training.resources.gpu,
    gpuWait: config.training.resources.gpuWait,
    queues: input.queues,
  };
  let sweep: SweepResult | undefined;
  const run = await stages.stage(
    'train',
    async () => {
      if (!config.training.sweep) return trainRouted(trainInput, route);
      const { workflowId: _own, ...base } = trainInput;
      sweep = await executeChild(sweepWorkflow, {
        workflowId: `${workflowId}-sweep`,
        args: [{ base, sweep: config.training.sweep, route }],
      });
      trainInput.params = applyPoint(trainInput.params, sweep.best.params);
      return sweep.best;
    },
    (r) => trainSummary(r, sweep),
  );
  return { run, sweep, params: trainInput.params };
}

function trainingInput(
  input: PipelineInput,
  config: ReceivedConfig,
  workflowId: string,
  dataset: IngestResult,
): TrainInput {
  return {
    workflowId,
    pipelineName: config.name,
    modelName: config.model,
    datasetVersionId: dataset.datasetVersionId,
    codeVersion: input.codeVersion,
    experiment: config.training.experiment ?? config.name,
    // What started the run is part of its lineage: `flywheel lineage` follows `alert` back to the monitor's finding.
    tags: {
      ...config.training.tags,
      trigger: input.trigger?.kind ?? 'cli',
      ...(input.trigger?.alertId !== undefined ? { alert: String(input.trigger.alertId) } : {}),
    },
    params: {
      task: config.training.task,
      target: config.training.target,
      features: config.training.features,
      model: config.training.model,
      epochs: config.training.epochs,
      batchSize: config.training.batchSize,
      learningRate: config.training.learningRate,
      optimizer: config.training.optimizer,
      seed: config.training.seed,
      holdoutFraction: config.training.holdoutFraction,
      earlyStopping: config.training.earlyStopping,
      runner: config.training.runner,
      ...(config.training.runner === 'python'
        ? { python: { entrypoint: config.training.entrypoint!, params: config.training.params } }
        : {}),
      ...(config.training.runner === 'import'
        ? { imported: { source: config.training.source!, signature: config.training.signature! } }
        : {}),
    },
  };
}

/** 5. evaluate: the holdout report, with the alias's current champion scored on the same rows. */
async function evaluate(
  { config, gates, stages }: PipelineRun,
  dataset: IngestResult,
  trained: Trained,
): Promise<EvaluateResult> {
  return stages.stage(
    'evaluate',
    async () => {
      const champion = await quick.resolveAlias({ modelName: config.model, alias: config.deploy.alias });
      return io.evaluateModel({
        runId: trained.run.runId,
        artifactKey: trained.run.artifactKey,
        datasetVersionId: dataset.datasetVersionId,
        params: trained.params,
        gates,
        slices: config.evaluation?.slices,
        fairness: config.evaluation?.fairness,
        baseline: champion
          ? { version: champion.version, artifactKey: champion.artifactKey, metrics: champion.metrics }
          : null,
      });
    },
    evaluateSummary,
  );
}

/** 6. register: the model version with its lineage and evaluation, whatever the gate said. */
async function register(
  { input, config, workflowId, stages }: PipelineRun,
  dataset: IngestResult,
  trained: Trained,
  evaluation: EvaluateResult,
): Promise<RegisterResult> {
  const gateTag = evaluation.gate.passed ? 'passed' : 'failed';
  return stages.stage(
    'register',
    async () => {
      const registered = await quick.registerModelVersion({
        workflowId,
        modelName: config.model,
        task: config.training.task,
        runId: trained.run.runId,
        datasetVersionId: dataset.datasetVersionId,
        params: { ...trained.params, ...(dataset.featureViews ? { featureViews: dataset.featureViews } : {}) },
        metrics: evaluation.metrics,
        codeVersion: input.codeVersion,
        artifactKey: trained.run.artifactKey,
        predictionReferenceKey: evaluation.predictionReferenceKey,
        tags: { gate: gateTag },
        evaluation: {
          reportKey: evaluation.reportKey,
          plots: evaluation.plots,
          gate: evaluation.gate,
          baseline: evaluation.baseline,
        },
      });
      await replayRetiredWebhooks('model_version.created', registered.modelName);
      return registered;
    },
    (r) => registerSummary(r, gateTag),
  );
}

/** 7. gate: a failed evaluation gate stops the pipeline here, the version registered but not promoted. */
async function gate({ stages }: PipelineRun, evaluation: EvaluateResult, model: RegisterResult): Promise<void> {
  await stages.stage(
    'gate',
    async () => {
      if (!evaluation.gate.passed) {
        throw ApplicationFailure.nonRetryable(gateFailedMessage(evaluation.gate.failures, model), 'GateFailedError', {
          metrics: evaluation.metrics,
          gate: evaluation.gate,
          version: model.version,
        });
      }
    },
    () => gateSummary(evaluation.gate.checks.length),
  );
}

/** Who approved the release, with the grant their approval carried. */
interface ApprovedBy {
  actor: string;
  grant?: Grant;
}

/** 8. approve: when required, waits durably for `approveUpdate` or the timeout; undefined unless someone approved. */
async function approve(
  { config, workflowId, stages }: PipelineRun,
  approvals: Approvals,
  model: RegisterResult,
): Promise<ApprovedBy | undefined> {
  const approval = config.deploy.approval;
  if (!(config.deploy.enabled && approval?.required)) {
    stages.skip('approve', approval?.required ? 'nothing to deploy' : 'no approval required');
    return undefined;
  }
  let approvedBy: ApprovedBy | undefined;
  await stages.stage(
    'approve',
    async () => {
      await quick.openApproval({ workflowId, modelName: model.modelName, version: model.version });
      approvals.awaiting = { version: model.version };
      stages.note('approve', awaitingApproval(model, approval));
      const decided = await condition(() => approvals.decision !== undefined, durationMs(approval.timeout));
      approvals.awaiting = undefined;
      const outcome = decided
        ? approvals.decision!
        : {
            approved: approval.onTimeout === 'approve',
            actor: 'timeout',
            comment: `no decision within ${approval.timeout}`,
          };
      if (decided && outcome.approved) approvedBy = { actor: outcome.actor, grant: approvals.decision!.grant };
      await quick.closeApproval({
        workflowId,
        status: decided ? (outcome.approved ? 'approved' : 'rejected') : 'expired',
        actor: outcome.actor,
        comment: outcome.comment,
      });
      if (!outcome.approved) {
        throw ApplicationFailure.nonRetryable(
          releaseRejectedMessage(model, decided, outcome, approval.timeout),
          'ReleaseRejectedError',
        );
      }
      return outcome;
    },
    approvedSummary,
  );
  return approvedBy;
}

/** What the deploy step did; null when it deployed nothing (refused, disabled, or no serving endpoint). */
interface Release {
  /** Null when a rollout ended without promoting (an A/B or shadow test, a stopped canary). */
  deployment: PipelineResult['deployment'];
  rollout: RolloutResult | null;
}

/**
 * 9. deploy: a refused release is tagged release=unauthorised; an authorised one moves the alias directly, or through a
 * rollout child when a strategy is set and the alias already serves another version.
 */
async function deploy(
  run: PipelineRun,
  authority: ReleaseAuthority | null,
  approvedBy: ApprovedBy | undefined,
  model: RegisterResult,
): Promise<Release | null> {
  const { input, config, workflowId, gates, stages } = run;
  const alias = config.deploy.alias;
  const strategy = config.deploy.strategy?.kind === 'direct' ? undefined : config.deploy.strategy;
  const refused =
    config.deploy.enabled && input.servingUrl && authority
      ? releaseRefusal(authority, approvedBy?.actor, gates.length, model)
      : undefined;
  if (refused) {
    await quick.tagModelVersion({
      modelName: model.modelName,
      version: model.version,
      tags: { release: 'unauthorised' },
    });
    stages.skip('deploy', refused);
    return null;
  }
  if (!(config.deploy.enabled && input.servingUrl)) {
    stages.skip('deploy', config.deploy.enabled ? 'no serving endpoint configured' : 'deploy.enabled is false');
    return null;
  }
  const reason = releaseReason(config.name, input.trigger, approvedBy, authority);
  // The rollout child checks the grant that authorised this release, bound to this workflow.
  const grant = approvedBy?.grant ?? input.grant;
  const firstRelease = authority !== null && !approvedBy && authority.actor === null;
  const champion = strategy ? await quick.resolveAlias({ modelName: model.modelName, alias }) : null;
  if (strategy && champion && champion.version !== model.version) {
    const rollout = await stages.stage(
      'deploy',
      async () => {
        const result = await executeChild(rolloutWorkflow, {
          workflowId: `${workflowId}-rollout`,
          args: [{ modelName: model.modelName, alias, candidateVersion: model.version, strategy, reason, grant }],
        });
        if (result.outcome === 'rolled_back') {
          throw ApplicationFailure.nonRetryable(
            rolledBackMessage(model, result.reason, alias, champion.version),
            'RolledBackError',
            result,
          );
        }
        return result;
      },
      (r) =>
        rolloutSummary(strategy.kind, r, {
          modelName: config.model,
          alias,
          candidate: model.version,
          champion: champion.version,
        }),
    );
    const deployment =
      rollout.outcome === 'promoted'
        ? {
            alias,
            endpoint: `${input.servingUrl}/v2/models/${encodeURIComponent(model.modelName)}/infer`,
            previousVersion: champion.version,
            serving: 'confirmed',
          }
        : null;
    return { deployment, rollout };
  }
  const deployed = await stages.stage(
    'deploy',
    async () => {
      const result = await io.deployModelVersion({
        workflowId,
        pipelineName: config.name,
        modelName: model.modelName,
        version: model.version,
        alias,
        servingUrl: input.servingUrl!,
        actor: `workflow:${workflowId}`,
        reason,
        firstRelease,
      });
      await replayRetiredWebhooks('model_version_alias.moved', model.modelName);
      return result;
    },
    (r) => deploySummary(r, config.model, alias, model.version),
  );
  const deployment = {
    alias,
    endpoint: deployed.endpoint,
    previousVersion: deployed.previousVersion,
    serving: deployed.serving,
  };
  return { deployment, rollout: null };
}

/** 10. monitor: starts (or re-targets) the monitor of what was promoted; the monitor workflow's id, or null. */
async function monitor(
  { config, stages }: PipelineRun,
  release: Release | null,
  model: RegisterResult,
): Promise<string | null> {
  if (!release) {
    stages.skip('monitor', 'nothing deployed');
    return null;
  }
  if (!release.deployment || !config.monitor.enabled) {
    stages.skip('monitor', release.deployment ? 'monitor.enabled is false' : 'nothing promoted');
    return null;
  }
  return stages.stage(
    'monitor',
    () =>
      quick.ensureMonitor({
        modelName: model.modelName,
        alias: config.deploy.alias,
        pipelineName: config.name,
        version: model.version,
        settings: config.monitor,
      }),
    (id) => monitorSummary(id, config.monitor.interval),
  );
}
