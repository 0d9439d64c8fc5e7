/** Deploy: moves the serving alias to a model version (audited) and waits until the serving process answers with it. */
import { heartbeat } from '@temporalio/activity';
import { and, eq } from 'drizzle-orm';
import { deployments } from '../schema/deployments';
import { aliasEvents, modelAliases } from '../schema/models';
import type { ActivityDeps } from './deps';

export interface DeployInput {
  workflowId: string;
  pipelineName: string;
  modelName: string;
  version: number;
  alias: string;
  servingUrl: string;
  actor: string;
  reason: string;
}

export interface DeployResult {
  deploymentId: string;
  previousVersion: number | null;
  endpoint: string;
  /** Whether the serving process confirmed it now answers with this version. */
  serving: 'confirmed' | 'unreachable';
}

export function createDeployActivities({ db }: ActivityDeps) {
  return {
    async deployModelVersion(input: DeployInput): Promise<DeployResult> {
      const deploymentId = `${input.modelName}/${input.alias}`;
      const endpoint = `${input.servingUrl}/v2/models/${encodeURIComponent(input.modelName)}/infer`;
      const previousVersion = await db.transaction(async (tx) => {
        const [done] = await tx.select().from(aliasEvents)
          .where(and(eq(aliasEvents.workflowId, input.workflowId), eq(aliasEvents.modelName, input.modelName), eq(aliasEvents.alias, input.alias)));
        if (done) return done.fromVersion;
        const [current] = await tx.select().from(modelAliases)
          .where(and(eq(modelAliases.modelName, input.modelName), eq(modelAliases.alias, input.alias))).for('update');
        await tx.insert(modelAliases).values({ modelName: input.modelName, alias: input.alias, version: input.version })
          .onConflictDoUpdate({ target: [modelAliases.modelName, modelAliases.alias], set: { version: input.version, updatedAt: new Date() } });
        await tx.insert(aliasEvents).values({
          modelName: input.modelName, alias: input.alias, fromVersion: current?.version ?? null, toVersion: input.version,
          actor: input.actor, reason: input.reason, workflowId: input.workflowId,
        });
        await tx.insert(deployments).values({
          id: deploymentId, modelName: input.modelName, alias: input.alias, version: input.version, endpoint,
          pipelineName: input.pipelineName, workflowId: input.workflowId,
        }).onConflictDoUpdate({ target: deployments.id, set: { version: input.version, endpoint, pipelineName: input.pipelineName, workflowId: input.workflowId, updatedAt: new Date() } });
        return current?.version ?? null;
      });
      const serving = await waitForServing(input.servingUrl, input.modelName, input.version, 30_000);
      return { deploymentId, previousVersion, endpoint, serving };
    },
  };
}

/** The serving process polls aliases; confirm it picked the new version up. */
async function waitForServing(servingUrl: string, modelName: string, version: number, timeoutMs: number): Promise<'confirmed' | 'unreachable'> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    heartbeat();
    try {
      const response = await fetch(`${servingUrl}/v2/models/${encodeURIComponent(modelName)}`, { signal: AbortSignal.timeout(2_000) });
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
