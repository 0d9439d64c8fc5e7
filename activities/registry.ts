/**
 * Register: a model version with lineage (run, dataset version, params, code version, workflow) and its release
 * evaluation; idempotent per workflow. A candidate that failed its gate is registered too (tag gate=failed), never promoted.
 */
import { and, eq, max } from 'drizzle-orm';
import { modelVersions, registeredModels } from '../schema/models';
import type { ReleaseEvaluation } from '../ml/gates';
import type { ActivityDeps } from './deps';

export interface RegisterInput {
  workflowId: string;
  modelName: string;
  task: string;
  runId: string;
  datasetVersionId: string;
  params: Record<string, unknown>;
  metrics: Record<string, number>;
  codeVersion?: string;
  artifactKey: string;
  predictionReferenceKey: string;
  tags?: Record<string, string>;
  evaluation?: ReleaseEvaluation;
}

export interface RegisterResult {
  modelName: string;
  version: number;
}

export function createRegistryActivities({ db }: ActivityDeps) {
  return {
    async registerModelVersion(input: RegisterInput): Promise<RegisterResult> {
      return db.transaction(async (tx) => {
        await tx.insert(registeredModels).values({ name: input.modelName, task: input.task }).onConflictDoNothing();
        // Serialises version numbering per model.
        await tx.select().from(registeredModels).where(eq(registeredModels.name, input.modelName)).for('update');
        const [mine] = await tx.select({ version: modelVersions.version }).from(modelVersions)
          .where(and(eq(modelVersions.modelName, input.modelName), eq(modelVersions.workflowId, input.workflowId)));
        if (mine) return { modelName: input.modelName, version: mine.version };
        const [{ latest } = { latest: 0 }] = await tx.select({ latest: max(modelVersions.version) }).from(modelVersions).where(eq(modelVersions.modelName, input.modelName));
        const version = (latest ?? 0) + 1;
        await tx.insert(modelVersions).values({
          modelName: input.modelName,
          version,
          runId: input.runId,
          datasetVersionId: input.datasetVersionId,
          workflowId: input.workflowId,
          codeVersion: input.codeVersion,
          params: input.params,
          metrics: input.metrics,
          artifactKey: input.artifactKey,
          predictionReferenceKey: input.predictionReferenceKey,
          tags: input.tags ?? {},
          evaluation: input.evaluation,
        });
        return { modelName: input.modelName, version };
      });
    },
  };
}
