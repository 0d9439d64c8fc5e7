/**
 * The monitor of one deployment: a long-running workflow (continue-as-new keeps its history short).
 *   1. every `interval`, compare the window of predictions with the model's holdout predictions
 *   2. on drift: raise (or refresh) the alert — one open alert per monitor and check
 *   3. start the retraining pipeline, at most once per cooldown
 *   4. a new deployment (signal) restarts the window; a removed model, version or deployment ends the monitor, with
 *      what is gone as its result and no alert
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  setWorkflowOptions,
  workflowInfo,
} from '@temporalio/workflow';
import type { StageActivities } from '../activities/index';
import type { DriftCheckResult, MonitorInput, MonitorSettings } from '../activities/monitor';
import { ACTIVITY_PROFILES } from '../config/constants';
import { durationMs } from '../config/duration';

export const deploymentChangedSignal =
  defineSignal<[{ version: number; settings?: MonitorSettings }]>('deploymentChanged');
export const stopMonitorSignal = defineSignal('stop');
export const alertActionSignal =
  defineSignal<[{ alertId: number; action: 'acknowledge' | 'resolve'; by: string }]>('alertAction');
export const monitorStatusQuery = defineQuery<{
  settings: MonitorSettings;
  state: NonNullable<MonitorInput['state']>;
  lastCheck?: DriftCheckResult;
}>('status');

const activities = proxyActivities<StageActivities>(ACTIVITY_PROFILES.quick);
const CHECKS_PER_RUN = 200;

export async function monitorWorkflow(input: MonitorInput): Promise<string> {
  let settings = input.settings;
  const state = input.state ?? { windowStart: Date.now(), checks: 0, alertsRaised: 0 };
  let lastCheck: DriftCheckResult | undefined;
  let stopped = false;
  let changed = false;
  setHandler(deploymentChangedSignal, ({ version, settings: next }) => {
    state.version = version;
    if (next) settings = next;
    changed = true;
  });
  setHandler(stopMonitorSignal, () => void (stopped = true));
  // `flywheel alerts ack|resolve` signals the monitor that owns the alert; the monitor records it.
  setHandler(alertActionSignal, async ({ alertId, action, by }) => {
    await activities.updateAlert({ monitorWorkflowId: workflowInfo().workflowId, alertId, action, by });
  });
  setHandler(monitorStatusQuery, () => ({ settings, state, lastCheck }));
  const monitorId = workflowInfo().workflowId;

  for (
    let checksThisRun = 0;
    checksThisRun < CHECKS_PER_RUN && !workflowInfo().continueAsNewSuggested;
    checksThisRun++
  ) {
    changed = false;
    await condition(() => stopped || changed, settings.interval);
    if (stopped) return 'stopped';
    if (changed) {
      // A new version is served: judge it on its own predictions only.
      state.windowStart = Date.now();
      continue;
    }
    const windowEnd = Date.now();
    lastCheck = await activities.checkPredictionDrift({
      monitorWorkflowId: monitorId,
      modelName: input.modelName,
      alias: input.alias,
      windowStart: state.windowStart,
      windowEnd,
      settings,
    });
    state.windowStart = windowEnd;
    state.checks++;
    // Checked before any alert: a monitor of something deleted ends quietly instead of paging about it.
    if (lastCheck.verdict === 'no-deployment') return lastCheck.message;
    const check = lastCheck;
    // What the Temporal UI shows on the monitor's page ("current details"): the latest verdict in a few lines.
    setCurrentDetails(
      [
        `**${input.modelName}@${input.alias}** v${check.version ?? '?'} — check ${state.checks} at ${new Date(windowEnd).toISOString()}`,
        `predictions: ${check.verdict} (${check.message})`,
        check.features ? `features: ${check.features.message}` : '',
        check.performance ? `labels: ${check.performance.message}` : '',
        check.quality?.length ? `quality: ${check.quality.map((q) => q.message).join('; ')}` : '',
        check.latency ? `latency p50 ${check.latency.p50.toFixed(1)} ms, p99 ${check.latency.p99.toFixed(1)} ms` : '',
        check.service ? `errors: ${check.service.errors} of ${check.service.requests} requests` : '',
        `alerts raised by this monitor: ${state.alertsRaised}`,
      ]
        .filter(Boolean)
        .join('\n\n'),
    );
    let retrainFor: { alertId: number; reason: string } | undefined;
    if (patched('feature-drift-and-quality')) {
      // Features and data quality: their own deduplicated alerts; a whole-dataset drift is worth a retraining.
      if (check.features?.columns.some((c) => c.drifted)) {
        const alert = await activities.raiseAlert({
          monitorWorkflowId: monitorId,
          modelName: input.modelName,
          check: 'feature_drift',
          message: check.features.message,
          details: { ...check.features, version: check.version },
          webhookUrl: settings.webhookUrl,
          severity: check.features.datasetDrift ? 'critical' : 'warning',
        });
        if (alert.isNew) state.alertsRaised++;
        if (check.features.datasetDrift)
          retrainFor = { alertId: alert.alertId, reason: `dataset drift: ${check.features.message}` };
      }
      if (check.performance?.degraded) {
        const alert = await activities.raiseAlert({
          monitorWorkflowId: monitorId,
          modelName: input.modelName,
          check: 'model_quality',
          message: check.performance.message,
          details: { ...check.performance, version: check.version },
          webhookUrl: settings.webhookUrl,
          severity: 'critical',
        });
        if (alert.isNew) state.alertsRaised++;
        retrainFor = { alertId: alert.alertId, reason: `model quality: ${check.performance.message}` };
      }
      if (check.service?.breach) {
        const alert = await activities.raiseAlert({
          monitorWorkflowId: monitorId,
          modelName: input.modelName,
          check: 'service',
          message: check.service.breach,
          details: { ...check.service, latency: check.latency, version: check.version },
          webhookUrl: settings.webhookUrl,
          severity: 'warning',
        });
        if (alert.isNew) state.alertsRaised++;
      }
      if (check.quality?.length) {
        const alert = await activities.raiseAlert({
          monitorWorkflowId: monitorId,
          modelName: input.modelName,
          check: 'data_quality',
          message: check.quality.map((q) => q.message).join('; '),
          details: { issues: check.quality, version: check.version },
          webhookUrl: settings.webhookUrl,
          severity: 'warning',
        });
        if (alert.isNew) state.alertsRaised++;
      }
    }
    if (check.verdict === 'drift') {
      const alert = await activities.raiseAlert({
        monitorWorkflowId: monitorId,
        modelName: input.modelName,
        check: 'prediction_drift',
        message: check.message,
        details: { ...check, features: undefined, quality: undefined },
        webhookUrl: settings.webhookUrl,
      });
      if (alert.isNew) state.alertsRaised++;
      retrainFor = { alertId: alert.alertId, reason: `prediction drift: ${check.message}` };
    }
    if (!retrainFor) continue;
    const cooledDown =
      state.lastRetrainAt === undefined || Date.now() - state.lastRetrainAt >= durationMs(settings.retrainCooldown);
    if (settings.retrainOnDrift && cooledDown) {
      await activities.startRetraining({
        pipelineName: input.pipelineName,
        modelName: input.modelName,
        alertId: retrainFor.alertId,
        reason: retrainFor.reason,
      });
      state.lastRetrainAt = Date.now();
    }
  }
  await condition(allHandlersFinished);
  return continueAsNew<typeof monitorWorkflow>({ ...input, settings, state });
}
// A versioned monitor never ends, so it moves to the promoted build (its changes go behind patched()); unversioned
// workers must not name a behavior at all (the server refuses it), and theirs have no deployment name.
setWorkflowOptions(
  () => ({ versioningBehavior: workflowInfo().currentDeploymentVersion?.deploymentName ? 'AUTO_UPGRADE' : undefined }),
  monitorWorkflow,
);
