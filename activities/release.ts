/**
 * Release activities: authorisation, audited alias moves, approvals, traffic routes for rollouts and the numbers their
 * health gates and comparisons read. Each write is idempotent per workflow. Webhooks are not here: the registry queues
 * them with each change (store/webhooks.ts) and the dispatcher sends them, so no secret reaches a workflow.
 */
import { activityInfo, heartbeat, log } from '@temporalio/activity';
import { ApiError } from '../config/errors';
import type { RolloutStrategy } from '../config/pipeline';
import { binReference, psi } from '../ml/quality/drift';
import { labelledQuality } from '../ml/evaluation/metrics';
import type { Db } from '../storage/db';
import { clearTrafficRoute, setTrafficRoute } from '../store/deployments';
import { convergence, listServingReplicas, replicaLabel } from '../store/servingReplicas';
import {
  closeApproval,
  findModelVersion,
  findRegisteredModel,
  findVersionByAlias,
  openApproval,
  rollbackTarget,
  setAlias,
  setModelVersionTags,
  type AliasMoveResult,
} from '../store/registry';
import { GrantError, verifyGrant, type GrantAction, type GrantScope } from '../store/grants';
import {
  countWindowPredictions,
  countWindowRequestErrors,
  labelsOfWindowPredictions,
  windowLatency,
  windowPredictionValues,
  windowShadowPredictions,
  type PredictionWindow,
} from '../store/predictions';
import { badInput, type ActivityDeps } from './deps';
import { modelClasses } from '../inference/load';

export { notifyServing, SERVING_CHANNEL, type AliasMoveResult } from '../store/registry';

export interface AliasMoveInput {
  workflowId: string;
  modelName: string;
  alias: string;
  version: number;
  actor: string;
  reason: string;
}

/**
 * Moves `model@alias` to `version` (the registry's one alias move: alias, audit event and deployment in one
 * transaction).
 * One move per (workflow, alias): a retry returns the recorded move. What the registry refuses fails without retries.
 */
export async function moveAliasTx(db: Db, input: AliasMoveInput): Promise<AliasMoveResult> {
  try {
    return await setAlias(db, input);
  } catch (error) {
    if (error instanceof ApiError && error.status < 500) throw badInput('NotFoundError', error.message);
    throw error;
  }
}

const MIN_PSI_VALUES = 100;

export interface AuthorizeInput {
  /** What is asked, for the refusal: "moving demand@champion". */
  request: string;
  /** Signed by a caller that checked an admin token (store/grants.ts); never a token. */
  grant?: unknown;
  modelName: string;
  action: Exclude<GrantAction, 'release'>;
  alias?: string;
  version?: number;
  /** A child workflow's parent (from `workflowInfo().parent`): a rollout may present its parent pipeline's grant. */
  parentWorkflowId?: string;
}

/** Who may release over what a model serves: decided when a pipeline begins, from its grant, never from a flag. */
export interface ReleaseAuthority {
  /** Who signed the pipeline's release grant (`token:<name>`, `alert:<id>`); null without one. */
  actor: string | null;
  /** `system`: the monitor's retraining, which may promote only through configured gates. */
  scope: GrantScope | null;
  /** No model of this name was registered when the pipeline began: its first release needs no grant. */
  newModel: boolean;
}

/** The workflow that scheduled this activity, which a grant must name. */
function callingWorkflowId(): string {
  const id = activityInfo().workflowExecution?.workflowId;
  if (!id) throw new GrantError('grants are checked for workflows only, and no workflow scheduled this activity');
  return id;
}

const refusal = (request: string, error: GrantError) =>
  badInput(
    'UnauthorizedError',
    `${request} needs a grant from an admin token (--token or FLYWHEEL_TOKEN; create one with \`flywheel tokens create <name> --scope admin\`): ${error.message}`,
  );

/** A canary step's health gate, as the pipeline config declares it. */
export type HealthThresholds = Extract<RolloutStrategy, { kind: 'canary' }>['health'];

export interface HealthInput {
  modelName: string;
  baseVersion: number;
  candidateVersion: number;
  /** Epoch ms; the window the step ran in. */
  since: number;
  until: number;
  health: HealthThresholds;
}

export interface HealthResult {
  passed: boolean;
  /** Fewer candidate requests than `minRequests`: no verdict. */
  enoughTraffic: boolean;
  failures: string[];
  candidate: { requests: number; errors: number; errorRate: number; p99Ms: number | null };
  base: { requests: number; errors: number };
  predictionPsi: number | null;
}

export interface VariantStats {
  version: number;
  requests: number;
  errors: number;
  labels: number;
  /** rmse (regression) or accuracy (classification) on the labels that arrived. */
  metric: { name: 'rmse' | 'accuracy'; value: number } | null;
}

export interface ShadowStats {
  requests: number;
  errors: number;
  /** Regression: mean |shadow − served|; classification: share of identical classes. */
  meanAbsDifference: number | null;
  agreement: number | null;
  p99Ms: number | null;
}

/** One version's traffic in the step's window (epoch ms, [since, until)). */
const versionWindow = (modelName: string, version: number, since: number, until: number): PredictionWindow => ({
  modelName,
  version,
  from: new Date(since),
  to: new Date(until),
});

export function createReleaseActivities({ db, store }: ActivityDeps) {
  return {
    /**
     * The actor a grant names, or a non-retryable refusal: the grant must be signed, unexpired, and for this model,
     * action, alias, version and workflow. A rollout started by a pipeline presents the pipeline's grant instead (its
     * expiry was checked when the pipeline began); the move is then the pipeline's.
     */
    async authorize(input: AuthorizeInput): Promise<string> {
      const issuedFor = (input.grant as { claims?: { workflowId?: unknown } } | undefined)?.claims?.workflowId;
      try {
        if (
          input.parentWorkflowId !== undefined &&
          input.action === 'rollout' &&
          issuedFor === input.parentWorkflowId
        ) {
          const claims = verifyGrant(input.grant, {
            model: input.modelName,
            actions: ['release', 'approve'],
            workflowIds: [input.parentWorkflowId],
            checkExpiry: false,
          });
          if (claims.action === 'approve' && claims.version !== input.version)
            throw new GrantError(`the approval was for v${claims.version}, not v${input.version}`);
          return `workflow:${input.parentWorkflowId}`;
        }
        return verifyGrant(input.grant, {
          model: input.modelName,
          actions: [input.action],
          workflowIds: [callingWorkflowId()],
          alias: input.alias,
          version: input.version,
        }).actor;
      } catch (error) {
        if (error instanceof GrantError) throw refusal(input.request, error);
        throw error;
      }
    },

    /** A pipeline's release authority; a grant that is present but invalid fails the pipeline before it trains. */
    async authorizeRelease(input: { grant?: unknown; modelName: string }): Promise<ReleaseAuthority> {
      const newModel = (await findRegisteredModel(db, input.modelName)) === undefined;
      if (input.grant === undefined || input.grant === null) return { actor: null, scope: null, newModel };
      try {
        const claims = verifyGrant(input.grant, {
          model: input.modelName,
          actions: ['release'],
          workflowIds: [callingWorkflowId()],
        });
        return { actor: claims.actor, scope: claims.scope, newModel };
      } catch (error) {
        if (error instanceof GrantError) throw refusal(`releasing ${input.modelName}`, error);
        throw error;
      }
    },

    async moveAlias(input: AliasMoveInput): Promise<AliasMoveResult> {
      return moveAliasTx(db, input);
    },

    /** The version an alias points at, with what a release compares against. */
    async resolveAlias(input: {
      modelName: string;
      alias: string;
    }): Promise<{ version: number; artifactKey: string; metrics: Record<string, number> } | null> {
      const found = await findVersionByAlias(db, input.modelName, input.alias);
      return found ? { version: found.version, artifactKey: found.artifactKey ?? '', metrics: found.metrics } : null;
    },

    /** Where a rollback goes: the version that held the alias before the current one moved there. */
    async rollbackTarget(input: { modelName: string; alias: string }): Promise<{ current: number; previous: number }> {
      const { current, previous } = await rollbackTarget(db, input.modelName, input.alias);
      if (current === null) throw badInput('NotFoundError', `${input.modelName}@${input.alias} does not exist`);
      if (previous === null)
        throw badInput(
          'NotFoundError',
          `${input.modelName}@${input.alias} (v${current}) has no earlier version to roll back to`,
        );
      return { current, previous };
    },

    async openApproval(input: { workflowId: string; modelName: string; version: number }): Promise<void> {
      await openApproval(db, input);
    },

    async closeApproval(input: {
      workflowId: string;
      status: 'approved' | 'rejected' | 'expired';
      actor: string;
      comment?: string;
    }): Promise<void> {
      await closeApproval(db, input);
    },

    async tagModelVersion(input: { modelName: string; version: number; tags: Record<string, string> }): Promise<void> {
      await setModelVersionTags(db, input.modelName, input.version, input.tags);
    },

    /**
     * Sets the route, then waits (up to 20 s) until every live replica serving the model has loaded the candidate, so
     * a step's window starts with the split applied everywhere. Replicas still lagging then are logged, not failed:
     * the health gate judges what was served.
     */
    async setTrafficRoute(input: {
      modelName: string;
      mode: 'canary' | 'ab' | 'shadow';
      baseVersion: number;
      candidateVersion: number;
      weight: number;
      workflowId: string;
    }): Promise<void> {
      await setTrafficRoute(db, input);
      const deadline = Date.now() + 20_000;
      for (;;) {
        heartbeat();
        const state = convergence(await listServingReplicas(db), {
          concerns: (r) => r.models[input.modelName] !== undefined,
          ready: (r) => r.routes[input.modelName] === input.candidateVersion,
        });
        if (!state.lagging.length) return;
        if (Date.now() >= deadline) {
          log.warn('serving replicas have not loaded the rollout candidate', {
            modelName: input.modelName,
            candidateVersion: input.candidateVersion,
            lagging: state.lagging.map(replicaLabel),
          });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },

    /** Removes the route if this workflow still owns it. */
    async clearTrafficRoute(input: { modelName: string; workflowId: string }): Promise<void> {
      await clearTrafficRoute(db, input.modelName, input.workflowId);
    },

    /** A canary step's health: the candidate's error rate and p99, and its predictions against the champion's. */
    async candidateHealth(input: HealthInput): Promise<HealthResult> {
      const baseWindow = versionWindow(input.modelName, input.baseVersion, input.since, input.until);
      const candidateWindow = versionWindow(input.modelName, input.candidateVersion, input.since, input.until);
      const count = async (window: PredictionWindow) => {
        const { predictions, p99Ms } = await windowLatency(db, window);
        const errors = await countWindowRequestErrors(db, window);
        return { requests: predictions + errors, errors, p99: p99Ms };
      };
      const candidate = await count(candidateWindow);
      const base = await count(baseWindow);
      const baseValues = await windowPredictionValues(db, baseWindow, 50_000);
      const candidateValues = await windowPredictionValues(db, candidateWindow, 50_000);
      // PSI over 10 bins is noise below a few hundred values a side (≈ 9/n₁ + 9/n₂): no verdict under 100 each.
      const predictionPsi =
        baseValues.length >= MIN_PSI_VALUES && candidateValues.length >= MIN_PSI_VALUES
          ? psi(binReference(baseValues, 10), candidateValues)
          : null;
      const errorRate = candidate.requests ? candidate.errors / candidate.requests : 0;
      const failures: string[] = [];
      const { health } = input;
      if (errorRate > health.maxErrorRate)
        failures.push(
          `error rate ${(errorRate * 100).toFixed(1)} % (${candidate.errors} of ${candidate.requests}) is above ${(health.maxErrorRate * 100).toFixed(1)} %`,
        );
      if (health.maxLatencyP99Ms !== undefined && candidate.p99 !== null && candidate.p99 > health.maxLatencyP99Ms)
        failures.push(`p99 latency ${candidate.p99.toFixed(1)} ms is above ${health.maxLatencyP99Ms} ms`);
      if (predictionPsi !== null && predictionPsi > health.maxPredictionPsi)
        failures.push(
          `prediction PSI ${predictionPsi.toFixed(3)} against v${input.baseVersion} is above ${health.maxPredictionPsi}`,
        );
      return {
        passed: failures.length === 0,
        enoughTraffic: candidate.requests >= health.minRequests,
        failures,
        candidate: { requests: candidate.requests, errors: candidate.errors, errorRate, p99Ms: candidate.p99 },
        base: { requests: base.requests, errors: base.errors },
        predictionPsi,
      };
    },

    /** An A/B test's variants: traffic, errors and the quality measured on the labels that arrived for each. */
    async compareVariants(input: {
      modelName: string;
      versions: number[];
      since: number;
      until: number;
    }): Promise<VariantStats[]> {
      const model = await findRegisteredModel(db, input.modelName);
      const out: VariantStats[] = [];
      for (const version of input.versions) {
        heartbeat();
        const window = versionWindow(input.modelName, version, input.since, input.until);
        const served = await countWindowPredictions(db, window);
        const errors = await countWindowRequestErrors(db, window);
        const pairs = await labelsOfWindowPredictions(db, window, 100_000);
        const row = await findModelVersion(db, input.modelName, version);
        const classes =
          model?.task === 'classification' && row?.artifactKey ? await modelClasses(store, row.artifactKey) : undefined;
        const quality = labelledQuality(pairs, classes);
        const metric = quality ? { name: quality.name, value: quality.value } : null;
        out.push({ version, requests: served + errors, errors, labels: pairs.length, metric });
      }
      return out;
    },

    async shadowReport(input: {
      modelName: string;
      shadowVersion: number;
      since: number;
      until: number;
    }): Promise<ShadowStats> {
      const rows = await windowShadowPredictions(
        db,
        versionWindow(input.modelName, input.shadowVersion, input.since, input.until),
        200_000,
      );
      const answered = rows.filter((r) => r.shadow !== null);
      const model = await findRegisteredModel(db, input.modelName);
      const latencies = rows.map((r) => r.latencyMs).sort((a, b) => a - b);
      let meanAbsDifference: number | null = null,
        agreement: number | null = null;
      if (answered.length) {
        if (model?.task === 'classification')
          agreement = answered.filter((r) => r.shadow === r.base).length / answered.length;
        else meanAbsDifference = answered.reduce((s, r) => s + Math.abs(r.shadow! - r.base), 0) / answered.length;
      }
      return {
        requests: rows.length,
        errors: rows.length - answered.length,
        meanAbsDifference,
        agreement,
        p99Ms: latencies.length
          ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]!
          : null,
      };
    },
  };
}
