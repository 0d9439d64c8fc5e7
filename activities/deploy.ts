/** Deploy: moves the serving alias to a model version (audited) and waits until the serving process answers with it. */
import { heartbeat } from '@temporalio/activity';
import { recordDeployment } from '../store/deployments';
import { listAliasEvents } from '../store/registry';
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
   * Whether the serving process confirmed it now answers with this version; `unverified`: it is up but requires API
   * keys, so it tells no keyless caller what it serves (the move is done all the same).
   */
  serving: 'confirmed' | 'unreachable' | 'unverified';
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
      const serving = await waitForServing(input.servingUrl, input.modelName, input.version, 30_000);
      return { deploymentId, previousVersion, endpoint, serving };
    },
  };
}

/** The serving process polls aliases; confirm it picked the new version up. */
async function waitForServing(
  servingUrl: string,
  modelName: string,
  version: number,
  timeoutMs: number,
): Promise<DeployResult['serving']> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    heartbeat();
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
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return 'unreachable';
}
