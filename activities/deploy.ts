/** Deploy: moves the serving alias to a version (audited) and waits until every serving replica answers with it. */
import { heartbeat } from '@temporalio/activity';
import type { Db } from '../storage/db';
import { recordDeployment } from '../store/deployments';
import { listAliasEvents } from '../store/registry';
import { convergence, listServingReplicas, replicaLabel } from '../store/servingReplicas';
import { badInput, type ActivityDeps } from './deps';
import { moveAliasTx, notifyServing } from './release';

export interface DeployInput {
  workflowId: string;
  pipelineName: string;
  modelName: string;
  version: number;
  alias: string;
  servingUrl: string;
  actor: string;
  reason: string;
  /** Authorised only as a new model's first release: refused if anyone else set an alias of the model meanwhile. */
  firstRelease?: boolean;
}

export interface DeployResult {
  deploymentId: string;
  previousVersion: number | null;
  endpoint: string;
  /**
   * Whether serving confirmed it now answers with this version: every live replica of the alias reported it
   * (`replicas` of them), or, when no replica is registered (a serving process older than the replica registry), the
   * serving URL answered with it. `partial`: some live replicas had not loaded it in time (`lagging`); `unverified`: an
   * unregistered serving process requires API keys, so it tells no keyless caller what it serves. The move is done
   * all the same.
   */
  serving: 'confirmed' | 'partial' | 'unreachable' | 'unverified';
  /** Live replicas answering with this version; absent when no replica is registered. */
  replicas?: number;
  /** Those replicas: URL (or host:pid) each. */
  confirmedBy?: string[];
  /** Live replicas that had not loaded it when the wait ended: URL (or host:pid) each. */
  lagging?: string[];
}

export function createDeployActivities({ db }: ActivityDeps) {
  return {
    async deployModelVersion(input: DeployInput): Promise<DeployResult> {
      const endpoint = `${input.servingUrl}/v2/models/${encodeURIComponent(input.modelName)}/infer`;
      if (input.firstRelease) {
        const earlier = (await listAliasEvents(db, { modelName: input.modelName, limit: 20 })).find(
          (e) => e.workflowId !== input.workflowId,
        );
        if (earlier) {
          throw badInput(
            'UnauthorizedError',
            `${input.modelName} was released by ${earlier.actor} while this pipeline ran: releasing over it needs a release grant (flywheel run --token <admin token>)`,
          );
        }
      }
      const move = await moveAliasTx(db, {
        workflowId: input.workflowId,
        modelName: input.modelName,
        alias: input.alias,
        version: input.version,
        actor: input.actor,
        reason: input.reason,
      });
      // After the move (its own transaction): a retried deploy finds its move recorded and writes the same row again.
      const deploymentId = await recordDeployment(db, {
        modelName: input.modelName,
        alias: input.alias,
        version: input.version,
        endpoint,
        pipelineName: input.pipelineName,
        workflowId: input.workflowId,
      });
      await notifyServing(db, input.modelName);
      const previousVersion = move.fromVersion;
      const serving = await waitForServing(db, input, 30_000);
      return { deploymentId, previousVersion, endpoint, ...serving };
    },
  };
}

type ServingConfirmation = Pick<DeployResult, 'serving' | 'replicas' | 'confirmedBy' | 'lagging'>;

/**
 * Serving replicas hear the move (NOTIFY, else their poll) and report what they loaded: wait until every live replica
 * of the alias answers with the version. With none registered, ask the serving URL, as before replicas reported.
 */
async function waitForServing(
  db: Db,
  target: Pick<DeployInput, 'servingUrl' | 'alias' | 'modelName' | 'version'>,
  timeoutMs: number,
): Promise<ServingConfirmation> {
  const { modelName, version } = target;
  const deadline = Date.now() + timeoutMs;
  let partial: ServingConfirmation | undefined;
  while (Date.now() < deadline) {
    heartbeat();
    const state = convergence(await listServingReplicas(db, target.alias), {
      ready: (r) => r.models[modelName] === version,
      refused: (r) => r.failed[modelName] === version,
    });
    partial = undefined;
    if (state.live > 0) {
      const ready = { replicas: state.ready.length, confirmedBy: state.ready.map(replicaLabel) };
      if (!state.lagging.length) return { serving: 'confirmed', ...ready };
      partial = { serving: 'partial', ...ready, lagging: state.lagging.map(replicaLabel) };
      // A replica that failed to load this version retries only when the alias moves again.
      if (state.refused.length === state.lagging.length) return partial;
    } else {
      const answer = await askServingUrl(target.servingUrl, modelName, version);
      if (answer) return { serving: answer };
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return partial ?? { serving: 'unreachable' };
}

/** A serving process that does not report itself: what its metadata route says, or undefined while it does not. */
async function askServingUrl(
  servingUrl: string,
  modelName: string,
  version: number,
): Promise<'confirmed' | 'unverified' | undefined> {
  try {
    const response = await fetch(`${servingUrl}/v2/models/${encodeURIComponent(modelName)}`, {
      signal: AbortSignal.timeout(2_000),
    });
    if (response.status === 401) return 'unverified';
    if (response.ok) {
      const body = (await response.json()) as { versions?: string[] };
      if (body.versions?.includes(String(version))) return 'confirmed';
    }
  } catch {
    // not up (yet)
  }
  return undefined;
}
