/**
 * Monitor stages: start a deployment's monitor, compare a window of predictions with the reference, raise alerts,
 * retrain.
 */
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { mean, psi, type BinnedReference } from '../ml/quality/drift';
import { labelledQuality } from '../ml/evaluation/metrics';
import { MONITOR_DEFAULTS, parsePipelineConfig, type MonitorConfig, type PipelineConfig } from '../config/pipeline';
import { columnDrift, dataQuality, type ColumnDrift, type QualityIssue } from '../ml/quality/monitoring';
import { findDatasetVersionRow } from '../store/datasets';
import { findDeployment, findPipelineDeployment, setDeploymentMonitor } from '../store/deployments';
import { issueGrant } from '../store/grants';
import {
  AlertOwnerError,
  findPipeline,
  linkRetraining,
  raiseAlert,
  recentRetrainings,
  recordAlertAction,
  recordMonitorCheck,
  recordPipeline,
} from '../store/monitors';
import {
  countRequestErrors,
  countWindowPredictions,
  labelledPredictions,
  windowPredictions,
  type PredictionWindow,
} from '../store/predictions';
import { findModelVersion, findRegisteredModel, type ModelAlias, type ModelVersion } from '../store/registry';
// Started and signalled by their definitions (only their names and types are used here; nothing runs outside Temporal).
import { deploymentChangedSignal, monitorWorkflow } from '../workflows/monitor';
import { pipelineWorkflow } from '../workflows/pipeline';
import { modelClasses } from '../inference/load';
import { badInput, type ActivityDeps } from './deps';

/**
 * Checks added after the first monitors ran: settings recorded before them lack them, and get the schema's defaults.
 */
type LaterChecks = 'featureDrift' | 'service' | 'modelQuality';

/**
 * A monitor's settings: the pipeline config's `monitor` section as the schema resolves it (`enabled` is the pipeline's
 * concern).
 */
export type MonitorSettings = Omit<MonitorConfig, 'enabled' | LaterChecks> & Partial<Pick<MonitorConfig, LaterChecks>>;

export interface MonitorInput {
  modelName: string;
  alias: string;
  pipelineName: string;
  settings: MonitorSettings;
  /** Carried across continue-as-new. */
  state?: { windowStart: number; lastRetrainAt?: number; checks: number; alertsRaised: number; version?: number };
}

export interface DriftCheckResult {
  /** `no-deployment`: the model, its alias, the version it points at or the deployment is gone; the monitor ends. */
  verdict: 'ok' | 'drift' | 'insufficient-data' | 'no-deployment';
  version?: number;
  rows: number;
  psi?: number;
  meanShift?: number;
  referenceMean?: number;
  currentMean?: number;
  message: string;
  /** Feature drift of the window against the training data's profile; the dataset drifts when enough columns do. */
  features?: { columns: ColumnDrift[]; share: number; datasetDrift: boolean; message: string };
  quality?: QualityIssue[];
  /** Labels that arrived in the window for this version's predictions. */
  performance?: {
    metric: 'rmse' | 'accuracy';
    value: number;
    baseline: number;
    labels: number;
    degraded: boolean;
    message: string;
  };
  /** Latency of the window's predictions. */
  latency?: { p50: number; p99: number };
  /**
   * Requests refused (4xx) or failed (5xx) in the window against those answered; `breach` names what is over its limit.
   */
  service?: { errors: number; requests: number; errorRate: number; breach?: string };
}

/** At most this many logged requests of a window are read; more are sampled evenly by id. */
const MAX_WINDOW_ROWS = 50_000;

function storedConfig(raw: unknown, name: string): PipelineConfig {
  try {
    // The stored config was loaded from a file by a trusted caller: keep its folder, a data root for its source.
    return parsePipelineConfig(raw, `the stored config of pipeline ${name}`, { keepConfigDir: true });
  } catch (error) {
    throw badInput('ConfigError', (error as Error).message);
  }
}

export const monitorWorkflowId = (modelName: string, alias: string) => `monitor-${modelName}-${alias}`;

export function createMonitorActivities({ db, store, temporal, workflowTaskQueue, trainingQueues }: ActivityDeps) {
  /** What `model@alias` serves now, or what of it is gone: the model, the alias, its deployment or the version. */
  async function servedVersion(
    modelName: string,
    aliasName: string,
  ): Promise<{ gone: string } | { alias: ModelAlias; version: ModelVersion }> {
    const model = await findRegisteredModel(db, modelName);
    if (!model) return { gone: `model ${modelName} no longer exists` };
    const alias = model.aliases.find((a) => a.alias === aliasName);
    const deployment = await findDeployment(db, modelName, aliasName);
    if (!alias || !deployment) return { gone: `${modelName}@${aliasName} is no longer deployed` };
    const version = await findModelVersion(db, modelName, alias.version);
    if (!version) return { gone: `${modelName} v${alias.version} (@${aliasName}) no longer exists` };
    return { alias, version };
  }

  /** Labels received in the window for this version's predictions, scored like the evaluation scored the holdout. */
  async function checkPerformance(
    window: PredictionWindow,
    version: { metrics: Record<string, number>; artifactKey: string },
    settings: MonitorSettings,
  ): Promise<DriftCheckResult['performance']> {
    const options = { ...MONITOR_DEFAULTS.modelQuality, ...settings.modelQuality };
    const labeled = await labelledPredictions(db, window);
    if (labeled.length < options.minLabels) return undefined;
    const classes =
      version.metrics.rmse !== undefined
        ? undefined
        : version.metrics.accuracy === undefined
          ? null
          : await modelClasses(store, version.artifactKey);
    if (classes === null) return undefined;
    const quality = labelledQuality(labeled, classes);
    if (!quality || quality.labels < options.minLabels) return undefined;
    const { value } = quality;
    if (quality.name === 'rmse') {
      const baseline = version.metrics.rmse!;
      const degraded = value > baseline * (1 + options.rmseIncrease);
      return {
        metric: 'rmse',
        value,
        baseline,
        labels: quality.labels,
        degraded,
        message: `rmse ${value.toFixed(3)} on ${quality.labels} labelled predictions vs ${baseline.toFixed(3)} at evaluation (${((value / baseline - 1) * 100).toFixed(0)} %, limit +${options.rmseIncrease * 100} %)`,
      };
    }
    const baseline = version.metrics.accuracy!;
    const degraded = value < baseline - options.accuracyDrop;
    return {
      metric: 'accuracy',
      value,
      baseline,
      labels: labeled.length,
      degraded,
      message: `accuracy ${value.toFixed(3)} on ${labeled.length} labelled predictions vs ${baseline.toFixed(3)} at evaluation (limit −${options.accuracyDrop})`,
    };
  }

  /** The window's features against the training data's profile: drift per column and data quality. */
  async function checkFeatures(
    datasetVersionId: string,
    params: { features?: { numeric: string[]; categorical: string[] } },
    inputs: Record<string, unknown>[],
    settings: MonitorSettings,
  ): Promise<Pick<DriftCheckResult, 'features' | 'quality'>> {
    const options = { ...MONITOR_DEFAULTS.featureDrift, ...settings.featureDrift };
    if (!options.enabled) return {};
    const version = await findDatasetVersionRow(db, datasetVersionId);
    const names = [...(params.features?.numeric ?? []), ...(params.features?.categorical ?? [])];
    const columns: ColumnDrift[] = [];
    const quality: QualityIssue[] = [];
    for (const name of names) {
      const reference = version?.profile.find((p) => p.name === name);
      if (!reference) continue;
      const values = inputs.map((i) => i[name]);
      const drift = columnDrift(reference, values, options);
      if (drift) columns.push(drift);
      quality.push(...dataQuality(reference, values));
    }
    const drifted = columns.filter((c) => c.drifted);
    const share = columns.length ? drifted.length / columns.length : 0;
    const datasetDrift = columns.length > 0 && share >= options.datasetDriftShare;
    const detail = drifted
      .map(
        (c) =>
          `${c.column} (${c.test} ${c.statistic.toPrecision(3)}${c.pValue !== undefined ? `, p=${c.pValue.toExponential(2)}` : ''})`,
      )
      .join(', ');
    const message = `${drifted.length} of ${columns.length} features drifted (${(share * 100).toFixed(0)} %${datasetDrift ? `, ≥ ${options.datasetDriftShare * 100} %: dataset drift` : ''})${detail ? `: ${detail}` : ''}`;
    return { features: { columns, share, datasetDrift, message }, quality };
  }

  return {
    /** Stores the pipeline config so monitors and schedules can start it again. */
    async recordPipeline(input: { name: string; config: Record<string, unknown> }): Promise<void> {
      await recordPipeline(db, input.name, input.config);
    },

    /** Starts the monitor for a deployment, or tells the running one that the served version changed. */
    async ensureMonitor(input: {
      modelName: string;
      alias: string;
      pipelineName: string;
      version: number;
      settings: MonitorSettings;
    }): Promise<string> {
      const workflowId = monitorWorkflowId(input.modelName, input.alias);
      const monitorInput: MonitorInput = {
        modelName: input.modelName,
        alias: input.alias,
        pipelineName: input.pipelineName,
        settings: input.settings,
      };
      await temporal.workflow.signalWithStart(monitorWorkflow, {
        workflowId,
        taskQueue: workflowTaskQueue,
        args: [monitorInput],
        signal: deploymentChangedSignal,
        signalArgs: [{ version: input.version, settings: input.settings }],
        staticSummary: `Monitors ${input.modelName}@${input.alias}`,
      });
      await setDeploymentMonitor(db, input.modelName, input.alias, workflowId);
      return workflowId;
    },

    async checkPredictionDrift(input: {
      monitorWorkflowId: string;
      modelName: string;
      alias: string;
      windowStart: number;
      windowEnd: number;
      settings: MonitorSettings;
    }): Promise<DriftCheckResult> {
      const served = await servedVersion(input.modelName, input.alias);
      // What it watched is gone: the monitor ends with this verdict, and raises nothing.
      if ('gone' in served) return { verdict: 'no-deployment', rows: 0, message: served.gone };
      const { alias, version } = served;
      if (!version.predictionReferenceKey || !version.artifactKey)
        throw badInput(
          'NotFoundError',
          `model ${input.modelName} v${alias.version} has no prediction reference or no Flywheel model artifact`,
        );
      const reference = await store.getJson<BinnedReference>(version.predictionReferenceKey);
      const window: PredictionWindow = {
        modelName: input.modelName,
        version: alias.version,
        from: new Date(input.windowStart),
        to: new Date(input.windowEnd),
      };
      // A busy window (an hour at 1,000 rps is 3.6M rows) is judged on an even sample of ids: memory stays bounded.
      const total = await countWindowPredictions(db, window);
      const rows = await windowPredictions(db, window, Math.max(1, Math.ceil(total / MAX_WINDOW_ROWS)));
      const values = Float64Array.from(rows, (r) => r.prediction);
      const performance = await checkPerformance(
        window,
        { ...version, artifactKey: version.artifactKey },
        input.settings,
      );
      const latencies = rows.map((r) => r.latencyMs).sort((a, b) => a - b);
      const latency = latencies.length
        ? {
            p50: latencies[Math.floor(latencies.length * 0.5)]!,
            p99: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]!,
          }
        : undefined;
      const errors = await countRequestErrors(db, input.modelName, window.from, window.to);
      const limits = { ...MONITOR_DEFAULTS.service, ...input.settings.service };
      const requests = errors + total;
      const errorRate = requests ? errors / requests : 0;
      const breaches = [
        requests >= input.settings.minWindowRows && errorRate > limits.maxErrorRate
          ? `${(errorRate * 100).toFixed(1)} % of ${requests} requests failed or were refused (limit ${limits.maxErrorRate * 100} %)`
          : '',
        latency &&
        limits.maxLatencyP99Ms !== undefined &&
        rows.length >= input.settings.minWindowRows &&
        latency.p99 > limits.maxLatencyP99Ms
          ? `p99 latency ${latency.p99.toFixed(1)} ms (limit ${limits.maxLatencyP99Ms} ms)`
          : '',
      ].filter(Boolean);
      const service = { errors, requests, errorRate, ...(breaches.length ? { breach: breaches.join('; ') } : {}) };
      const featureReport =
        values.length >= input.settings.minWindowRows && version.datasetVersionId
          ? await checkFeatures(
              version.datasetVersionId,
              version.params as { features?: { numeric: string[]; categorical: string[] } },
              rows.map((r) => r.inputs),
              input.settings,
            )
          : undefined;
      let result: DriftCheckResult;
      if (values.length < input.settings.minWindowRows) {
        result = {
          verdict: 'insufficient-data',
          version: alias.version,
          rows: values.length,
          message: `${values.length} predictions in the window; at least ${input.settings.minWindowRows} are needed for a verdict`,
          performance,
          latency,
          service,
        };
      } else {
        const currentMean = mean(values);
        const score = psi(reference, values);
        const meanShift =
          reference.mean !== 0
            ? (currentMean - reference.mean) / Math.abs(reference.mean)
            : currentMean - reference.mean;
        const drifted =
          score >= input.settings.predictionPsiThreshold || Math.abs(meanShift) >= input.settings.meanShiftThreshold;
        result = {
          verdict: drifted ? 'drift' : 'ok',
          version: alias.version,
          rows: values.length,
          psi: score,
          meanShift,
          referenceMean: reference.mean,
          currentMean,
          message: `prediction PSI ${score.toFixed(3)} (threshold ${input.settings.predictionPsiThreshold}), mean ${currentMean.toFixed(3)} vs reference ${reference.mean.toFixed(3)} (${(meanShift * 100).toFixed(1)} %, threshold ${(input.settings.meanShiftThreshold * 100).toFixed(1)} %) over ${values.length} predictions`,
          ...featureReport,
          performance,
          latency,
          service,
        };
      }
      await recordMonitorCheck(db, {
        monitorWorkflowId: input.monitorWorkflowId,
        modelName: input.modelName,
        windowStart: window.from,
        windowEnd: window.to,
        report: { ...result },
      });
      return result;
    },

    /** One open alert per monitor and check: a repeat updates its numbers; returns whether it is new. */
    async raiseAlert(input: {
      monitorWorkflowId: string;
      modelName: string;
      check: string;
      message: string;
      details: Record<string, unknown>;
      webhookUrl?: string;
      severity?: 'warning' | 'critical';
    }): Promise<{ alertId: number; isNew: boolean }> {
      const { webhookUrl, severity, ...alert } = input;
      const raised = await raiseAlert(db, { ...alert, severity: severity ?? 'critical' });
      if (raised.isNew && webhookUrl)
        await deliverWebhook(webhookUrl, `:rotating_light: Flywheel: ${input.modelName} — ${input.message}`);
      return raised;
    },

    /** Acknowledges (still deduplicates, no more pages) or resolves (a recurrence opens a new alert) an alert. */
    async updateAlert(input: {
      monitorWorkflowId: string;
      alertId: number;
      action: 'acknowledge' | 'resolve';
      by: string;
    }): Promise<void> {
      try {
        await recordAlertAction(db, input);
      } catch (error) {
        if (error instanceof AlertOwnerError) throw badInput('NotFoundError', error.message);
        throw error;
      }
    },

    /**
     * Starts the pipeline again from its stored config, keyed by the alert (a retried activity starts nothing twice).
     * At most one retraining per pipeline is in flight: an alert raised while one runs is linked to it instead.
     */
    async startRetraining(input: {
      pipelineName: string;
      modelName: string;
      alertId: number;
      reason: string;
    }): Promise<string> {
      const pipeline = await findPipeline(db, input.pipelineName);
      if (!pipeline)
        throw badInput(
          'NotFoundError',
          `pipeline ${input.pipelineName} has no stored config; run it once with "flywheel run"`,
        );
      // One retraining in flight per pipeline: a newer alert joins a retraining that is still running.
      for (const id of await recentRetrainings(db, input.modelName)) {
        const status = await temporal.workflow
          .getHandle(id)
          .describe()
          .then(
            (d) => d.status.name,
            () => undefined,
          );
        if (status === 'RUNNING' && id.startsWith(`${input.pipelineName}-retrain-`)) {
          await linkRetraining(db, input.alertId, id);
          return id;
        }
      }
      const workflowId = `${input.pipelineName}-retrain-alert-${input.alertId}`;
      const deployment = await findPipelineDeployment(db, input.pipelineName);
      // Parsed again: a config stored by an older version gets the defaults of fields added since.
      const config = storedConfig(pipeline.config, input.pipelineName);
      // The monitor's own release grant: its retraining may replace the champion, through the pipeline's gates only.
      const grant = issueGrant({
        actor: `alert:${input.alertId}`,
        scope: 'system',
        model: config.model,
        action: 'release',
        workflowId,
      });
      await temporal.workflow.start(pipelineWorkflow, {
        workflowId,
        taskQueue: workflowTaskQueue,
        args: [
          {
            config,
            trigger: { kind: 'drift', reason: input.reason, alertId: input.alertId },
            servingUrl: deployment ? new URL(deployment.endpoint).origin : undefined,
            queues: trainingQueues,
            grant,
          },
        ],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      });
      await linkRetraining(db, input.alertId, workflowId);
      return workflowId;
    },
  };
}

async function deliverWebhook(url: string, text: string): Promise<void> {
  // Slack-compatible body; delivery is best effort so a dead webhook never blocks retraining.
  await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
    signal: AbortSignal.timeout(5_000),
  }).catch(() => undefined);
}
