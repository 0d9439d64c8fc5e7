/** Monitor stages: start a deployment's monitor, compare a window of predictions with the reference, raise alerts, retrain. */
import { and, count, desc, eq, gte, inArray, isNotNull, lt, sql } from 'drizzle-orm';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { mean, psi, type BinnedReference } from '../ml/drift';
import { labelledQuality } from '../ml/metrics';
import { parsePipelineConfig, type PipelineConfig } from '../config/pipeline';
import { columnDrift, dataQuality, FEATURE_DRIFT_DEFAULTS, type ColumnDrift, type FeatureDriftOptions, type QualityIssue } from '../ml/monitoring';
import { datasetVersions } from '../schema/datasets';
import { deployments, labels, predictions, requestErrors } from '../schema/deployments';
import { modelAliases, modelVersions } from '../schema/models';
import { alerts, monitorChecks, pipelines } from '../schema/monitors';
import { issueGrant } from '../store/grants';
import { badInput, type ActivityDeps } from './deps';

export interface MonitorSettings {
  interval: string;
  minWindowRows: number;
  predictionPsiThreshold: number;
  meanShiftThreshold: number;
  retrainOnDrift: boolean;
  retrainCooldown: string;
  webhookUrl?: string;
  /** Per-feature drift against the training profile (absent in monitors started before it existed). */
  featureDrift?: FeatureDriftOptions & { enabled: boolean };
  /** Service health: the share of refused / failed requests, and optionally a p99 latency limit. */
  service?: { maxErrorRate: number; maxLatencyP99Ms?: number };
  /** Model quality from labels sent to the serving `/feedback` endpoint, against the evaluation's holdout metric. */
  modelQuality?: { minLabels: number; rmseIncrease: number; accuracyDrop: number };
}

export interface MonitorInput {
  modelName: string;
  alias: string;
  pipelineName: string;
  settings: MonitorSettings;
  /** Carried across continue-as-new. */
  state?: { windowStart: number; lastRetrainAt?: number; checks: number; alertsRaised: number; version?: number };
}

export interface DriftCheckResult {
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
  performance?: { metric: 'rmse' | 'accuracy'; value: number; baseline: number; labels: number; degraded: boolean; message: string };
  /** Latency of the window's predictions. */
  latency?: { p50: number; p99: number };
  /** Requests refused (4xx) or failed (5xx) in the window against those answered; `breach` names what is over its limit. */
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
  /** Labels received in the window for this version's predictions, scored like the evaluation scored the holdout. */
  async function checkPerformance(
    window: { modelName: string; windowStart: number; windowEnd: number }, versionNumber: number,
    version: { metrics: Record<string, number>; artifactKey: string; task?: string }, settings: MonitorSettings,
  ): Promise<DriftCheckResult['performance']> {
    const options = { minLabels: 30, rmseIncrease: 0.2, accuracyDrop: 0.05, ...settings.modelQuality };
    const labeled = await db.select({ prediction: predictions.prediction, label: labels.label }).from(labels)
      .innerJoin(predictions, eq(predictions.requestId, labels.requestId))
      .where(and(eq(predictions.modelName, window.modelName), eq(predictions.modelVersion, versionNumber),
        gte(labels.receivedAt, new Date(window.windowStart)), lt(labels.receivedAt, new Date(window.windowEnd))));
    if (labeled.length < options.minLabels) return undefined;
    const classes = version.metrics.rmse !== undefined ? undefined
      : version.metrics.accuracy === undefined ? null
        : (await store.getJson<{ preprocessor: { target: { classes?: string[] } } }>(version.artifactKey)).preprocessor.target.classes ?? [];
    if (classes === null) return undefined;
    const quality = labelledQuality(labeled, classes);
    if (!quality || quality.labels < options.minLabels) return undefined;
    const { value } = quality;
    if (quality.name === 'rmse') {
      const baseline = version.metrics.rmse!;
      const degraded = value > baseline * (1 + options.rmseIncrease);
      return { metric: 'rmse', value, baseline, labels: quality.labels, degraded, message: `rmse ${value.toFixed(3)} on ${quality.labels} labelled predictions vs ${baseline.toFixed(3)} at evaluation (${((value / baseline - 1) * 100).toFixed(0)} %, limit +${options.rmseIncrease * 100} %)` };
    }
    const baseline = version.metrics.accuracy!;
    const degraded = value < baseline - options.accuracyDrop;
    return { metric: 'accuracy', value, baseline, labels: labeled.length, degraded, message: `accuracy ${value.toFixed(3)} on ${labeled.length} labelled predictions vs ${baseline.toFixed(3)} at evaluation (limit −${options.accuracyDrop})` };
  }

  /** The window's features against the training data's profile: drift per column and data quality. */
  async function checkFeatures(
    datasetVersionId: string, params: { features?: { numeric: string[]; categorical: string[] } }, inputs: Record<string, unknown>[], settings: MonitorSettings,
  ): Promise<Pick<DriftCheckResult, 'features' | 'quality'>> {
    if (settings.featureDrift && !settings.featureDrift.enabled) return {};
    const options = { ...FEATURE_DRIFT_DEFAULTS, ...settings.featureDrift };
    const [version] = await db.select({ profile: datasetVersions.profile }).from(datasetVersions).where(eq(datasetVersions.id, datasetVersionId));
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
    const detail = drifted.map((c) => `${c.column} (${c.test} ${c.statistic.toPrecision(3)}${c.pValue !== undefined ? `, p=${c.pValue.toExponential(2)}` : ''})`).join(', ');
    const message = `${drifted.length} of ${columns.length} features drifted (${(share * 100).toFixed(0)} %${datasetDrift ? `, ≥ ${options.datasetDriftShare * 100} %: dataset drift` : ''})${detail ? `: ${detail}` : ''}`;
    return { features: { columns, share, datasetDrift, message }, quality };
  }

  return {
    /** Stores the pipeline config so monitors and schedules can start it again. */
    async recordPipeline(input: { name: string; config: Record<string, unknown> }): Promise<void> {
      await db.insert(pipelines).values({ name: input.name, config: input.config })
        .onConflictDoUpdate({ target: pipelines.name, set: { config: input.config, updatedAt: new Date() } });
    },

    /** Starts the monitor for a deployment, or tells the running one that the served version changed. */
    async ensureMonitor(input: { modelName: string; alias: string; pipelineName: string; version: number; settings: MonitorSettings }): Promise<string> {
      const workflowId = monitorWorkflowId(input.modelName, input.alias);
      const monitorInput: MonitorInput = { modelName: input.modelName, alias: input.alias, pipelineName: input.pipelineName, settings: input.settings };
      await temporal.workflow.signalWithStart('monitorWorkflow', {
        workflowId,
        taskQueue: workflowTaskQueue,
        args: [monitorInput],
        signal: 'deploymentChanged',
        signalArgs: [{ version: input.version, settings: input.settings }],
        staticSummary: `Monitors ${input.modelName}@${input.alias}`,
      });
      await db.update(deployments).set({ monitorWorkflowId: workflowId }).where(eq(deployments.id, `${input.modelName}/${input.alias}`));
      return workflowId;
    },

    async checkPredictionDrift(input: {
      monitorWorkflowId: string; modelName: string; alias: string; windowStart: number; windowEnd: number; settings: MonitorSettings;
    }): Promise<DriftCheckResult> {
      const [alias] = await db.select().from(modelAliases).where(and(eq(modelAliases.modelName, input.modelName), eq(modelAliases.alias, input.alias)));
      const [deployment] = await db.select().from(deployments).where(eq(deployments.id, `${input.modelName}/${input.alias}`));
      if (!alias || !deployment) return { verdict: 'no-deployment', rows: 0, message: `${input.modelName}@${input.alias} is no longer deployed` };
      const [version] = await db.select().from(modelVersions).where(and(eq(modelVersions.modelName, input.modelName), eq(modelVersions.version, alias.version)));
      if (!version?.predictionReferenceKey || !version.artifactKey) throw badInput('NotFoundError', `model ${input.modelName} v${alias.version} has no prediction reference or no Flywheel model artifact`);
      const reference = await store.getJson<BinnedReference>(version.predictionReferenceKey);
      const inWindow = and(
        eq(predictions.modelName, input.modelName),
        eq(predictions.modelVersion, alias.version),
        gte(predictions.createdAt, new Date(input.windowStart)),
        lt(predictions.createdAt, new Date(input.windowEnd)),
      );
      // A busy window (an hour at 1,000 rps is 3.6M rows) is judged on an even sample of ids: memory stays bounded.
      const [{ total }] = await db.select({ total: count() }).from(predictions).where(inWindow) as [{ total: number }];
      const stride = Math.max(1, Math.ceil(total / MAX_WINDOW_ROWS));
      const rows = await db.select({ prediction: predictions.prediction, inputs: predictions.inputs, latencyMs: predictions.latencyMs }).from(predictions)
        .where(stride > 1 ? and(inWindow, sql`${predictions.id} % ${stride} = 0`) : inWindow);
      const values = Float64Array.from(rows, (r) => r.prediction);
      const performance = await checkPerformance(input, alias.version, { ...version, artifactKey: version.artifactKey }, input.settings);
      const latencies = rows.map((r) => r.latencyMs).sort((a, b) => a - b);
      const latency = latencies.length ? { p50: latencies[Math.floor(latencies.length * 0.5)]!, p99: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]! } : undefined;
      const [{ errors }] = await db.select({ errors: count() }).from(requestErrors)
        .where(and(eq(requestErrors.modelName, input.modelName), gte(requestErrors.at, new Date(input.windowStart)), lt(requestErrors.at, new Date(input.windowEnd)))) as [{ errors: number }];
      const limits = { maxErrorRate: 0.05, ...input.settings.service };
      const requests = errors + total;
      const errorRate = requests ? errors / requests : 0;
      const breaches = [
        requests >= input.settings.minWindowRows && errorRate > limits.maxErrorRate ? `${(errorRate * 100).toFixed(1)} % of ${requests} requests failed or were refused (limit ${limits.maxErrorRate * 100} %)` : '',
        latency && limits.maxLatencyP99Ms !== undefined && rows.length >= input.settings.minWindowRows && latency.p99 > limits.maxLatencyP99Ms ? `p99 latency ${latency.p99.toFixed(1)} ms (limit ${limits.maxLatencyP99Ms} ms)` : '',
      ].filter(Boolean);
      const service = { errors, requests, errorRate, ...(breaches.length ? { breach: breaches.join('; ') } : {}) };
      const featureReport = values.length >= input.settings.minWindowRows && version.datasetVersionId
        ? await checkFeatures(version.datasetVersionId, version.params as { features?: { numeric: string[]; categorical: string[] } }, rows.map((r) => r.inputs), input.settings)
        : undefined;
      let result: DriftCheckResult;
      if (values.length < input.settings.minWindowRows) {
        result = { verdict: 'insufficient-data', version: alias.version, rows: values.length, message: `${values.length} predictions in the window; at least ${input.settings.minWindowRows} are needed for a verdict`, performance, latency, service };
      } else {
        const currentMean = mean(values);
        const score = psi(reference, values);
        const meanShift = reference.mean !== 0 ? (currentMean - reference.mean) / Math.abs(reference.mean) : currentMean - reference.mean;
        const drifted = score >= input.settings.predictionPsiThreshold || Math.abs(meanShift) >= input.settings.meanShiftThreshold;
        result = {
          verdict: drifted ? 'drift' : 'ok', version: alias.version, rows: values.length, psi: score, meanShift, referenceMean: reference.mean, currentMean,
          message: `prediction PSI ${score.toFixed(3)} (threshold ${input.settings.predictionPsiThreshold}), mean ${currentMean.toFixed(3)} vs reference ${reference.mean.toFixed(3)} (${(meanShift * 100).toFixed(1)} %, threshold ${(input.settings.meanShiftThreshold * 100).toFixed(1)} %) over ${values.length} predictions`,
          ...featureReport, performance, latency, service,
        };
      }
      await db.insert(monitorChecks).values({
        id: `${input.monitorWorkflowId}:${input.windowEnd}`, monitorWorkflowId: input.monitorWorkflowId, modelName: input.modelName,
        windowStart: new Date(input.windowStart), windowEnd: new Date(input.windowEnd), report: { ...result },
      }).onConflictDoNothing();
      return result;
    },

    /** One open alert per monitor and check: a repeat updates its numbers; returns whether it is new. */
    async raiseAlert(input: {
      monitorWorkflowId: string; modelName: string; check: string; message: string; details: Record<string, unknown>; webhookUrl?: string; severity?: 'warning' | 'critical';
    }): Promise<{ alertId: number; isNew: boolean }> {
      const inserted = await db.insert(alerts).values({
        monitorWorkflowId: input.monitorWorkflowId, modelName: input.modelName, check: input.check, severity: input.severity ?? 'critical', status: 'open',
        message: input.message, details: input.details,
      }).onConflictDoNothing().returning({ id: alerts.id });
      if (inserted[0]) {
        if (input.webhookUrl) await deliverWebhook(input.webhookUrl, `:rotating_light: Flywheel: ${input.modelName} — ${input.message}`);
        return { alertId: inserted[0].id, isNew: true };
      }
      const [open] = await db.update(alerts).set({ message: input.message, details: input.details })
        .where(and(eq(alerts.monitorWorkflowId, input.monitorWorkflowId), eq(alerts.check, input.check), inArray(alerts.status, ['open', 'acknowledged']))).returning({ id: alerts.id });
      return { alertId: open!.id, isNew: false };
    },

    /** Acknowledges (still deduplicates, no more pages) or resolves (a recurrence opens a new alert) an alert. */
    async updateAlert(input: { monitorWorkflowId: string; alertId: number; action: 'acknowledge' | 'resolve'; by: string }): Promise<void> {
      const [alert] = await db.select().from(alerts).where(eq(alerts.id, input.alertId));
      if (!alert || alert.monitorWorkflowId !== input.monitorWorkflowId) throw badInput('NotFoundError', `alert ${input.alertId} does not belong to ${input.monitorWorkflowId}`);
      if (alert.status === 'resolved') return;
      const details = { ...alert.details, [input.action === 'resolve' ? 'resolvedBy' : 'acknowledgedBy']: input.by };
      await db.update(alerts).set(input.action === 'resolve' ? { status: 'resolved', resolvedAt: new Date(), details } : { status: 'acknowledged', details })
        .where(eq(alerts.id, input.alertId));
    },

    /**
     * Starts the pipeline again from its stored config, keyed by the alert (a retried activity starts nothing twice).
     * At most one retraining per pipeline is in flight: an alert raised while one runs is linked to it instead.
     */
    async startRetraining(input: { pipelineName: string; modelName: string; alertId: number; reason: string }): Promise<string> {
      const [pipeline] = await db.select().from(pipelines).where(eq(pipelines.name, input.pipelineName));
      if (!pipeline) throw badInput('NotFoundError', `pipeline ${input.pipelineName} has no stored config; run it once with "flywheel run"`);
      // One retraining in flight per pipeline: a newer alert joins a retraining that is still running.
      const earlier = await db.select({ id: alerts.retrainWorkflowId }).from(alerts)
        .where(and(eq(alerts.modelName, input.modelName), isNotNull(alerts.retrainWorkflowId))).orderBy(desc(alerts.id)).limit(5);
      for (const { id } of earlier) {
        const status = await temporal.workflow.getHandle(id!).describe().then((d) => d.status.name, () => undefined);
        if (status === 'RUNNING' && id!.startsWith(`${input.pipelineName}-retrain-`)) {
          await db.update(alerts).set({ retrainWorkflowId: id }).where(eq(alerts.id, input.alertId));
          return id!;
        }
      }
      const workflowId = `${input.pipelineName}-retrain-alert-${input.alertId}`;
      const [deployment] = await db.select().from(deployments).where(eq(deployments.pipelineName, input.pipelineName)).limit(1);
      // Parsed again: a config stored by an older version gets the defaults of fields added since.
      const config = storedConfig(pipeline.config, input.pipelineName);
      // The monitor's own release grant: its retraining may replace the champion, through the pipeline's gates only.
      const grant = issueGrant({ actor: `alert:${input.alertId}`, scope: 'system', model: config.model, action: 'release', workflowId });
      await temporal.workflow.start('pipelineWorkflow', {
        workflowId,
        taskQueue: workflowTaskQueue,
        args: [{
          config, trigger: { kind: 'drift', reason: input.reason, alertId: input.alertId },
          servingUrl: deployment ? new URL(deployment.endpoint).origin : undefined, queues: trainingQueues, grant,
        }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      });
      await db.update(alerts).set({ retrainWorkflowId: workflowId }).where(eq(alerts.id, input.alertId));
      return workflowId;
    },
  };
}

async function deliverWebhook(url: string, text: string): Promise<void> {
  // Slack-compatible body; delivery is best effort so a dead webhook never blocks retraining.
  await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }), signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
}

