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
import type { StageActivities, TrainInput } from '../activities/index';
import type { ReleaseAuthority } from '../activities/release';
import type { PipelineConfig, ReleaseStrategy } from '../config/pipeline';
import { ACTIVITY_PROFILES } from '../config/constants';
import { durationMs } from '../config/duration';
import { rootCause } from '../config/errors';
import type { Grant } from '../store/grants';
import { GRANTS_PATCH, replayRetiredWebhooks, rolloutWorkflow, type RolloutResult } from './release';
import { DATASET_VERSION_KEY, MODEL_KEY, PIPELINE_KEY, STAGE_KEY } from './searchAttributes';
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

export async function pipelineWorkflow(input: PipelineInput): Promise<PipelineResult> {
  const config: ReceivedConfig = input.config;
  const gates = config.evaluation?.gates ?? [];
  const workflowId = workflowInfo().workflowId;
  const stages: StageStatus[] = STAGES.map((name) => ({ name, status: 'pending' }));
  setHandler(progressQuery, () => stages);
  let awaiting: { version: number } | undefined;
  let decision: { approved: boolean; actor: string; comment?: string; grant?: Grant } | undefined;
  setHandler(
    approveUpdate,
    async (d) => {
      const actor = await quick.authorize({
        request: `approving ${config.model} v${d.version}`,
        grant: d.grant,
        modelName: config.model,
        action: 'approve',
        version: d.version,
      });
      decision ??= { approved: d.approved, actor, comment: d.comment, grant: d.grant };
      return { actor };
    },
    {
      validator: (d) => {
        if (!awaiting) throw new Error('this release is not waiting for an approval');
        if (d.version !== awaiting.version)
          throw new Error(`this release waits for v${awaiting.version}, not v${d.version}`);
      },
    },
  );
  upsertSearchAttributes([
    { key: MODEL_KEY, value: config.model },
    { key: PIPELINE_KEY, value: config.name },
  ]);

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
    const entry = stages.find((s) => s.name === name)!;
    entry.status = 'skipped';
    entry.summary = why;
  };

  // Null: a run recorded before grants existed, released as it was then.
  let authority = null as ReleaseAuthority | null;
  await stage(
    'record',
    async () => {
      if (patched(GRANTS_PATCH))
        authority = await quick.authorizeRelease({ grant: input.grant, modelName: config.model });
      await quick.recordPipeline({ name: config.name, config: config as unknown as Record<string, unknown> });
    },
    () => `pipeline ${config.name} stored${authority ? `; ${describeAuthority(authority)}` : ''}`,
  );

  const { dataset: datasetName, features: featureSpec, ...table } = config.data;
  const dataset = await stage(
    'ingest',
    () => io.ingestDataset({ workflowId, dataset: datasetName, table, features: featureSpec }),
    (r) =>
      `${r.datasetVersionId}: ${r.rowCount} rows from ${r.format}${r.featureViews ? ` with features of ${r.featureViews.map((v) => v.ref).join(', ')} joined point in time` : ''}${r.reused ? ' (already stored; reused)' : ''}`,
  );
  upsertSearchAttributes([{ key: DATASET_VERSION_KEY, value: dataset.datasetVersionId }]);

  const { drift } = config.validation;
  const features = [...config.training.features.numeric, ...config.training.features.categorical];
  const validation = await stage(
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
    (r) =>
      `${r.contract} schema holds${r.reference ? `; distributions checked against ${r.reference}` : ''}` +
      `${r.warnings.length ? ` (${r.warnings.length} warnings)` : ''}`,
  );

  const trainInput: TrainInput = {
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
  const route: TrainingRoute = {
    gpu: config.training.resources.gpu,
    gpuWait: config.training.resources.gpuWait,
    queues: input.queues,
  };
  let sweep: SweepResult | undefined;
  const training = await stage(
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
    (r) =>
      sweep
        ? `sweep of ${sweep.trials.length} trials (${sweep.trials.filter((t) => t.stoppedEarly).length} stopped early, ${sweep.trials.filter((t) => t.status === 'failed').length} failed); best trial ${sweep.best.trial + 1} ${JSON.stringify(sweep.best.params)}: val_loss ${round(sweep.best.objective)}, ${r.runId} on ${r.backend}`
        : `${r.runId}: ${r.epochs} epochs on ${r.backend} (${r.taskQueue})${r.resumedFromEpoch !== undefined ? `, resumed after epoch ${r.resumedFromEpoch + 1}` : ''}`,
  );

  const alias = config.deploy.alias;
  const evaluation = await stage(
    'evaluate',
    async () => {
      const champion = await quick.resolveAlias({ modelName: config.model, alias });
      return io.evaluateModel({
        runId: training.runId,
        artifactKey: training.artifactKey,
        datasetVersionId: dataset.datasetVersionId,
        params: trainInput.params,
        gates,
        slices: config.evaluation?.slices,
        fairness: config.evaluation?.fairness,
        baseline: champion
          ? { version: champion.version, artifactKey: champion.artifactKey, metrics: champion.metrics }
          : null,
      });
    },
    (r) =>
      Object.entries(r.metrics)
        .filter(([k]) => k !== 'count')
        .map(([k, v]) => `${k}=${round(v)}`)
        .join(' ') +
      (r.baseline
        ? ` (champion v${r.baseline.version} on ${r.baseline.scoredOn}: ${Object.entries(r.baseline.metrics)
            .filter(([k]) => k !== 'count')
            .slice(0, 4)
            .map(([k, v]) => `${k}=${round(v)}`)
            .join(' ')})`
        : ''),
  );

  const gateTag = evaluation.gate.passed ? 'passed' : 'failed';
  const model = await stage(
    'register',
    async () => {
      const registered = await quick.registerModelVersion({
        workflowId,
        modelName: config.model,
        task: config.training.task,
        runId: training.runId,
        datasetVersionId: dataset.datasetVersionId,
        params: { ...trainInput.params, ...(dataset.featureViews ? { featureViews: dataset.featureViews } : {}) },
        metrics: evaluation.metrics,
        codeVersion: input.codeVersion,
        artifactKey: training.artifactKey,
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
    (r) => `${r.modelName} v${r.version} (gate ${gateTag})`,
  );

  await stage(
    'gate',
    async () => {
      if (!evaluation.gate.passed) {
        throw ApplicationFailure.nonRetryable(
          `evaluation gate failed: ${evaluation.gate.failures.join('; ')}. ${model.modelName} v${model.version} is registered but not promoted`,
          'GateFailedError',
          { metrics: evaluation.metrics, gate: evaluation.gate, version: model.version },
        );
      }
    },
    () => (evaluation.gate.checks.length ? `${evaluation.gate.checks.length} checks passed` : 'no gates configured'),
  );

  const approval = config.deploy.approval;
  let approvedBy: { actor: string; grant?: Grant } | undefined;
  if (config.deploy.enabled && approval?.required) {
    await stage(
      'approve',
      async () => {
        await quick.openApproval({ workflowId, modelName: model.modelName, version: model.version });
        awaiting = { version: model.version };
        const entry = stages.find((s) => s.name === 'approve')!;
        entry.summary = `waiting for \`flywheel approve ${model.modelName}@${model.version}\` (timeout ${approval.timeout}, then ${approval.onTimeout})`;
        const decided = await condition(() => decision !== undefined, durationMs(approval.timeout));
        awaiting = undefined;
        const outcome = decided
          ? decision!
          : {
              approved: approval.onTimeout === 'approve',
              actor: 'timeout',
              comment: `no decision within ${approval.timeout}`,
            };
        if (decided && outcome.approved) approvedBy = { actor: outcome.actor, grant: decision!.grant };
        await quick.closeApproval({
          workflowId,
          status: decided ? (outcome.approved ? 'approved' : 'rejected') : 'expired',
          actor: outcome.actor,
          comment: outcome.comment,
        });
        if (!outcome.approved) {
          throw ApplicationFailure.nonRetryable(
            `release of ${model.modelName} v${model.version} ${decided ? `rejected by ${outcome.actor}` : `expired after ${approval.timeout}`}${outcome.comment ? `: ${outcome.comment}` : ''}; it stays registered, not promoted`,
            'ReleaseRejectedError',
          );
        }
        return outcome;
      },
      (o) => `approved by ${o.actor}${o.comment ? `: ${o.comment}` : ''}`,
    );
  } else skip('approve', approval?.required ? 'nothing to deploy' : 'no approval required');

  let deployment: PipelineResult['deployment'] = null;
  let rollout: RolloutResult | null = null;
  let monitorWorkflowId: string | null = null;
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
    skip('deploy', refused);
    skip('monitor', 'nothing deployed');
  } else if (config.deploy.enabled && input.servingUrl) {
    const authorisedBy = approvedBy
      ? `approval by ${approvedBy.actor}`
      : authority
        ? (authority.actor ?? 'first release of a new model')
        : undefined;
    const reason = `${input.trigger?.reason ?? `pipeline ${config.name} (${input.trigger?.kind ?? 'cli'})`}${authorisedBy ? `; authorised by ${authorisedBy}` : ''}`;
    const actor = `workflow:${workflowId}`;
    // The rollout child checks the grant that authorised this release, bound to this workflow.
    const grant = approvedBy?.grant ?? input.grant;
    const firstRelease = authority !== null && !approvedBy && authority.actor === null;
    const champion = strategy ? await quick.resolveAlias({ modelName: model.modelName, alias }) : null;
    if (strategy && champion && champion.version !== model.version) {
      rollout = await stage(
        'deploy',
        async () => {
          const result = await executeChild(rolloutWorkflow, {
            workflowId: `${workflowId}-rollout`,
            args: [{ modelName: model.modelName, alias, candidateVersion: model.version, strategy, reason, grant }],
          });
          if (result.outcome === 'rolled_back') {
            throw ApplicationFailure.nonRetryable(
              `canary of ${model.modelName} v${model.version} rolled back: ${result.reason}; @${alias} stays at v${champion.version}`,
              'RolledBackError',
              result,
            );
          }
          return result;
        },
        (r) =>
          strategy.kind === 'shadow'
            ? `shadowed against v${champion.version}: ${r.shadow?.requests ?? 0} requests, ${r.shadow?.meanAbsDifference !== null && r.shadow?.meanAbsDifference !== undefined ? `mean |difference| ${round(r.shadow.meanAbsDifference)}` : `agreement ${round(r.shadow?.agreement ?? NaN)}`}; @${alias} unchanged`
            : strategy.kind === 'ab'
              ? `A/B test against v${champion.version}: ${(r.variants ?? []).map((v) => `v${v.version} ${v.requests} requests${v.metric ? `, ${v.metric.name} ${round(v.metric.value)}` : ''}`).join('; ')}; @${alias} unchanged`
              : `canary ${r.steps.map((s) => `${s.percent} %`).join(' → ')} healthy; ${config.model}@${alias} → v${model.version} (was v${champion.version})`,
      );
      if (rollout.outcome === 'promoted') {
        deployment = {
          alias,
          endpoint: `${input.servingUrl}/v2/models/${encodeURIComponent(model.modelName)}/infer`,
          previousVersion: champion.version,
          serving: 'confirmed',
        };
      }
    } else {
      const deployed = await stage(
        'deploy',
        async () => {
          const result = await io.deployModelVersion({
            workflowId,
            pipelineName: config.name,
            modelName: model.modelName,
            version: model.version,
            alias,
            servingUrl: input.servingUrl!,
            actor,
            reason,
            firstRelease,
          });
          await replayRetiredWebhooks('model_version_alias.moved', model.modelName);
          return result;
        },
        (r) =>
          `${config.model}@${alias} → v${model.version} (was ${r.previousVersion ?? 'none'}); serving ${r.serving}`,
      );
      deployment = {
        alias,
        endpoint: deployed.endpoint,
        previousVersion: deployed.previousVersion,
        serving: deployed.serving,
      };
    }
    if (deployment && config.monitor.enabled) {
      monitorWorkflowId = await stage(
        'monitor',
        () =>
          quick.ensureMonitor({
            modelName: model.modelName,
            alias,
            pipelineName: config.name,
            version: model.version,
            settings: config.monitor,
          }),
        (id) => `monitor ${id} every ${config.monitor.interval}`,
      );
    } else skip('monitor', deployment ? 'monitor.enabled is false' : 'nothing promoted');
  } else {
    skip('deploy', config.deploy.enabled ? 'no serving endpoint configured' : 'deploy.enabled is false');
    skip('monitor', 'nothing deployed');
  }
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
    sweep: sweep ? { workflowId: `${workflowId}-sweep`, trials: sweep.trials, best: sweep.best.trial } : null,
    runId: training.runId,
    backend: training.backend,
    trainingQueue: training.taskQueue,
    metrics: evaluation.metrics,
    model: { name: model.modelName, version: model.version },
    deployment,
    rollout,
    monitorWorkflowId,
    stages,
  };
}

function describeAuthority(authority: ReleaseAuthority): string {
  if (authority.actor)
    return `release authorised by ${authority.actor}${authority.scope === 'system' ? ' (through its gates only)' : ''}`;
  return authority.newModel
    ? 'a new model: its first release needs no grant'
    : 'no release grant: a new version is registered, deployed only if an admin approves it';
}

/** Why this version may not replace what its model serves; undefined when it may. */
function releaseRefusal(
  authority: ReleaseAuthority,
  approvedBy: string | undefined,
  gates: number,
  model: { modelName: string; version: number },
): string | undefined {
  if (approvedBy || authority.scope === 'admin') return undefined;
  const kept = `${model.modelName} v${model.version} is registered, tagged release=unauthorised, not deployed`;
  if (authority.scope === 'system') {
    return gates > 0
      ? undefined
      : `${kept}: a retraining started by ${authority.actor} may replace the champion only through evaluation gates, and this pipeline configures none`;
  }
  if (authority.newModel) return undefined;
  return `${kept}: ${model.modelName} already existed, and releasing a new version of it needs a release grant (flywheel run --token <admin token>, an admin token over the API) or an admin's approval (deploy.approval)`;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
