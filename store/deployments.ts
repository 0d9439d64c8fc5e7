/**
 * The deployments store: which alias of a model is served at which endpoint (and by which pipeline and monitor), and
 * the traffic routes of rollouts that serving reads. Alias moves themselves belong to the registry (store/registry.ts).
 */
import { and, eq } from 'drizzle-orm';
import { deployments, trafficRoutes } from '../schema/deployments';
import type { Db } from '../storage/db';
import type { Executor } from './experiments';
import { notifyServing } from './registry';

export type Deployment = typeof deployments.$inferSelect;
export type TrafficRoute = typeof trafficRoutes.$inferSelect;

/** `<model>/<alias>`: one deployment per served alias. */
export const deploymentId = (modelName: string, alias: string) => `${modelName}/${alias}`;

export async function findDeployment(db: Executor, modelName: string, alias: string): Promise<Deployment | undefined> {
  const [row] = await db
    .select()
    .from(deployments)
    .where(eq(deployments.id, deploymentId(modelName, alias)));
  return row;
}

/** A deployment a pipeline made (its retraining deploys to the same serving process). */
export async function findPipelineDeployment(db: Executor, pipelineName: string): Promise<Deployment | undefined> {
  const [row] = await db.select().from(deployments).where(eq(deployments.pipelineName, pipelineName)).limit(1);
  return row;
}

/** What a serving process answering with `alias` serves: one version per model. */
export async function servedVersions(db: Executor, alias: string): Promise<{ name: string; version: number }[]> {
  return db
    .select({ name: deployments.modelName, version: deployments.version })
    .from(deployments)
    .where(eq(deployments.alias, alias));
}

/** Records (or re-points) the deployment of `model@alias`; a retried deploy writes the same row again. */
export async function recordDeployment(
  db: Executor,
  input: {
    modelName: string;
    alias: string;
    version: number;
    endpoint: string;
    pipelineName: string;
    workflowId: string;
  },
): Promise<string> {
  const id = deploymentId(input.modelName, input.alias);
  await db
    .insert(deployments)
    .values({ id, ...input })
    .onConflictDoUpdate({
      target: deployments.id,
      set: {
        version: input.version,
        endpoint: input.endpoint,
        pipelineName: input.pipelineName,
        workflowId: input.workflowId,
        updatedAt: new Date(),
      },
    });
  return id;
}

export async function setDeploymentMonitor(
  db: Executor,
  modelName: string,
  alias: string,
  monitorWorkflowId: string,
): Promise<void> {
  await db
    .update(deployments)
    .set({ monitorWorkflowId })
    .where(eq(deployments.id, deploymentId(modelName, alias)));
}

/** Every rollout's traffic split (serving's reload). */
export async function listTrafficRoutes(db: Executor): Promise<TrafficRoute[]> {
  return db.select().from(trafficRoutes);
}

/** Sets a model's rollout split (one route per model; the latest rollout's wins) and tells serving, on commit. */
export async function setTrafficRoute(
  db: Db,
  route: {
    modelName: string;
    mode: 'canary' | 'ab' | 'shadow';
    baseVersion: number;
    candidateVersion: number;
    weight: number;
    workflowId: string;
  },
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx
      .insert(trafficRoutes)
      .values(route)
      .onConflictDoUpdate({ target: trafficRoutes.modelName, set: { ...route, updatedAt: new Date() } });
    await notifyServing(tx, route.modelName);
  });
}

/** Removes a model's route if `workflowId` still owns it (a later rollout's route stays), and tells serving. */
export async function clearTrafficRoute(db: Db, modelName: string, workflowId: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx
      .delete(trafficRoutes)
      .where(and(eq(trafficRoutes.modelName, modelName), eq(trafficRoutes.workflowId, workflowId)));
    await notifyServing(tx, modelName);
  });
}
