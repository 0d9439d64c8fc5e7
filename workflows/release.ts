/**
 * Releases as workflows:
 *   - `rolloutWorkflow`: canary in steps with a health gate after each (error rate, p99, prediction PSI against the
 *     champion) and automatic rollback; A/B with a fixed, sticky split compared on the labels that arrive; shadow
 *     (mirrored traffic, answers compared, never returned). The serving process follows the route it writes.
 *   - `aliasWorkflow`: a person's alias move or rollback.
 * Both begin with the `authorize` activity, whatever their input says: a grant (store/grants.ts) signed by whoever
 * checked
 * an admin token, for this model, action and workflow — never the token itself, which would stay in the history.
 * Neither sends webhooks: the registry queues them in the alias move's own transaction (store/webhooks.ts), so no
 * receiver can hold a release up and no webhook secret enters a history. Every route a rollout set is removed when it
 * ends, however it ends.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { StageActivities } from '../activities/index';
import type { HealthResult, ShadowStats, VariantStats } from '../activities/release';
import { ACTIVITY_PROFILES } from '../config/constants';
import { durationMs } from '../config/duration';
import type { RolloutStrategy } from '../config/pipeline';
import type { Grant } from '../store/grants';

const quick = proxyActivities<StageActivities>(ACTIVITY_PROFILES.quick);
const io = proxyActivities<StageActivities>(ACTIVITY_PROFILES.io);

export interface RolloutInput {
  modelName: string;
  alias: string;
  candidateVersion: number;
  strategy: RolloutStrategy;
  reason: string;
  /**
   * Action `rollout` for this workflow, alias and version; a pipeline's rollout carries the pipeline's grant. Refused
   * without one.
   */
  grant?: Grant;
  /** @deprecated Ignored: the audit records whom the grant names. */
  actor?: string;
}

/** Runs recorded before grants existed replay their authorisation from their history. */
export const GRANTS_PATCH = 'release-grants';

export interface RolloutStep {
  percent: number;
  startedAt: number;
  health?: HealthResult;
}

export interface RolloutResult {
  outcome: 'promoted' | 'rolled_back' | 'completed' | 'stopped';
  /** Why it rolled back or stopped. */
  reason?: string;
  baseVersion: number | null;
  candidateVersion: number;
  steps: RolloutStep[];
  variants?: VariantStats[];
  shadow?: ShadowStats;
}

export const rolloutStatusQuery = defineQuery<{ phase: string; steps: RolloutStep[] }>('rolloutStatus');
/** Ends a rollout early: a canary rolls back, an A/B or shadow test reports what it has. */
export const stopRolloutSignal = defineSignal<[{ reason: string }]>('stopRollout');

/**
 * Histories recorded before the webhook outbox scheduled `listWebhookTargets` then one `deliverWebhook` per target
 * after
 * each registry change; they replay those steps (results come from the history). New runs record the patch and skip
 * them.
 */
export const WEBHOOK_OUTBOX_PATCH = 'webhook-outbox';

/** The retired webhook activities, by name only: no worker registers them any more. */
interface RetiredWebhookActivities {
  listWebhookTargets(input: { event: string; modelName: string }): Promise<unknown[]>;
  deliverWebhook(input: Record<string, never>): Promise<number>;
}
const retired = proxyActivities<RetiredWebhookActivities>(ACTIVITY_PROFILES.quick);

/** Where a workflow used to send a registry webhook: a no-op for new runs, the recorded steps for old histories. */
export async function replayRetiredWebhooks(event: string, modelName: string): Promise<void> {
  if (patched(WEBHOOK_OUTBOX_PATCH)) return;
  try {
    const targets = await retired.listWebhookTargets({ event, modelName });
    await Promise.allSettled(targets.map(() => retired.deliverWebhook({})));
  } catch {
    // A step still in flight when the workers were upgraded finds no activity; the release goes on, as it did when a
    // receiver was down.
  }
}

export async function rolloutWorkflow(input: RolloutInput): Promise<RolloutResult> {
  const { workflowId } = workflowInfo();
  const steps: RolloutStep[] = [];
  let phase = 'starting';
  let stopped: string | undefined;
  setHandler(rolloutStatusQuery, () => ({ phase, steps }));
  setHandler(stopRolloutSignal, ({ reason }) => {
    stopped = reason;
  });

  const request = `a rollout of ${input.modelName} v${input.candidateVersion}`;
  const authorize = () =>
    quick.authorize({
      request,
      grant: input.grant,
      modelName: input.modelName,
      action: 'rollout',
      alias: input.alias,
      version: input.candidateVersion,
      parentWorkflowId: workflowInfo().parent?.workflowId,
    });
  const legacy = input as RolloutInput & { token?: string };
  const actor = patched(GRANTS_PATCH) || legacy.token !== undefined ? await authorize() : (legacy.actor ?? 'unknown');
  const champion = await quick.resolveAlias({ modelName: input.modelName, alias: input.alias });
  const { strategy } = input;
  const base = { baseVersion: champion?.version ?? null, candidateVersion: input.candidateVersion, steps };
  if (champion?.version === input.candidateVersion)
    return { ...base, outcome: 'completed', reason: `v${input.candidateVersion} already holds @${input.alias}` };
  if (!champion && strategy.kind !== 'canary') {
    throw ApplicationFailure.nonRetryable(
      `${input.modelName}@${input.alias} does not exist: a ${strategy.kind} test needs a version to compare with`,
      'NotFoundError',
    );
  }

  const promote = async () => {
    phase = 'promoting';
    await quick.moveAlias({
      workflowId,
      modelName: input.modelName,
      alias: input.alias,
      version: input.candidateVersion,
      actor,
      reason: input.reason,
    });
    await replayRetiredWebhooks('model_version_alias.moved', input.modelName);
  };
  if (!champion) {
    await promote();
    return { ...base, outcome: 'promoted', reason: 'no version held the alias: deployed directly' };
  }

  const route = (mode: 'canary' | 'ab' | 'shadow', weight: number) =>
    quick.setTrafficRoute({
      modelName: input.modelName,
      mode,
      baseVersion: champion.version,
      candidateVersion: input.candidateVersion,
      weight,
      workflowId,
    });
  try {
    if (strategy.kind === 'canary') {
      for (const percent of strategy.steps) {
        const step: RolloutStep = { percent, startedAt: Date.now() };
        steps.push(step);
        phase = `canary at ${percent} %`;
        await route('canary', percent / 100);
        const stepMs = durationMs(strategy.stepDuration);
        await condition(() => stopped !== undefined, stepMs);
        let health = await io.candidateHealth({
          modelName: input.modelName,
          baseVersion: champion.version,
          candidateVersion: input.candidateVersion,
          since: step.startedAt,
          until: Date.now(),
          health: strategy.health,
        });
        if (!health.enoughTraffic && stopped === undefined) {
          // Too few requests to judge: wait one more step length, then judge what there is.
          await condition(() => stopped !== undefined, stepMs);
          health = await io.candidateHealth({
            modelName: input.modelName,
            baseVersion: champion.version,
            candidateVersion: input.candidateVersion,
            since: step.startedAt,
            until: Date.now(),
            health: strategy.health,
          });
        }
        step.health = health;
        if (stopped !== undefined || !health.passed) {
          phase = 'rolled back';
          const reason =
            stopped !== undefined
              ? `stopped: ${stopped}`
              : `health gate failed at ${percent} %: ${health.failures.join('; ')}`;
          return { ...base, outcome: 'rolled_back', reason };
        }
      }
      await promote();
      phase = 'promoted';
      return { ...base, outcome: 'promoted' };
    }
    if (strategy.kind === 'ab') {
      const step: RolloutStep = { percent: strategy.split * 100, startedAt: Date.now() };
      steps.push(step);
      phase = `A/B test, ${step.percent} % to v${input.candidateVersion}`;
      await route('ab', strategy.split);
      await condition(() => stopped !== undefined, durationMs(strategy.duration));
      const variants = await io.compareVariants({
        modelName: input.modelName,
        versions: [champion.version, input.candidateVersion],
        since: step.startedAt,
        until: Date.now(),
      });
      phase = 'compared';
      return { ...base, outcome: stopped !== undefined ? 'stopped' : 'completed', reason: stopped, variants };
    }
    const step: RolloutStep = { percent: 0, startedAt: Date.now() };
    steps.push(step);
    phase = `shadowing v${input.candidateVersion}`;
    await route('shadow', 1);
    await condition(() => stopped !== undefined, durationMs(strategy.duration));
    const shadow = await io.shadowReport({
      modelName: input.modelName,
      shadowVersion: input.candidateVersion,
      since: step.startedAt,
      until: Date.now(),
    });
    phase = 'compared';
    return { ...base, outcome: stopped !== undefined ? 'stopped' : 'completed', reason: stopped, shadow };
  } finally {
    // Also when cancelled: the champion gets all traffic back.
    await CancellationScope.nonCancellable(() => quick.clearTrafficRoute({ modelName: input.modelName, workflowId }));
  }
}

export interface AliasInput {
  action: 'alias' | 'rollback';
  modelName: string;
  alias: string;
  /** For `alias`: the version to point at. */
  version?: number;
  /** Action `alias` (this alias and version) or `rollback` (this alias) for this workflow; refused without one. */
  grant?: Grant;
  reason: string;
}

export interface AliasResult {
  fromVersion: number | null;
  toVersion: number;
  actor: string;
}

export async function aliasWorkflow(input: AliasInput): Promise<AliasResult> {
  const action =
    input.action === 'rollback'
      ? `rolling back ${input.modelName}@${input.alias}`
      : `moving ${input.modelName}@${input.alias}`;
  const actor = await quick.authorize({
    request: action,
    grant: input.grant,
    modelName: input.modelName,
    action: input.action,
    alias: input.alias,
    version: input.action === 'alias' ? input.version : undefined,
  });
  const version =
    input.action === 'rollback'
      ? (await quick.rollbackTarget({ modelName: input.modelName, alias: input.alias })).previous
      : input.version;
  if (version === undefined) throw ApplicationFailure.nonRetryable('an alias move needs a version', 'ConfigError');
  const move = await quick.moveAlias({
    workflowId: workflowInfo().workflowId,
    modelName: input.modelName,
    alias: input.alias,
    version,
    actor,
    reason: input.reason,
  });
  await replayRetiredWebhooks('model_version_alias.moved', input.modelName);
  return { fromVersion: move.fromVersion, toVersion: move.toVersion, actor };
}
