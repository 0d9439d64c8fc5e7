/** What the pipeline API reads from the run tables while a pipeline is going: the training run's latest epoch. */
import { and, desc, eq, isNull } from 'drizzle-orm';
import { runMetrics, runs } from '../schema/runs';
import type { Db } from '../storage/db';

export interface EpochProgress {
  epoch: number;
  loss: number;
}

/** The newest logged loss of a pipeline's own training run (not a sweep's trials); undefined before its first epoch. */
export async function latestEpoch(db: Db, workflowId: string): Promise<EpochProgress | undefined> {
  const [latest] = await db
    .select({ epoch: runMetrics.step, loss: runMetrics.value })
    .from(runMetrics)
    .innerJoin(runs, eq(runs.id, runMetrics.runId))
    .where(and(eq(runs.workflowId, workflowId), isNull(runs.trial), eq(runMetrics.key, 'loss')))
    .orderBy(desc(runMetrics.step))
    .limit(1);
  return latest;
}
