/**
 * Checkpoint retention: a run that ended (finished, failed, killed) more than N days ago has no use for its training
 * checkpoints (the model artifact is kept apart), so they are deleted from the object store: TF.js runs'
 * `checkpoints/<runId>/` and Python runs' `checkpoints/` among the run's artifacts. Run by the serving process's
 * retention sweep (serving/retention.ts); deleting is idempotent, so replicas sweeping at once do no harm.
 */
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';
import { markCheckpointsDeleted, runArtifactPrefix, runsWithExpiredCheckpoints } from '../store/runs';

/** Where a run's checkpoints may lie: the TF.js trainer's prefix and, with its experiment, the Python SDK's. */
export function checkpointPrefixes(runId: string, experimentId: number | null): string[] {
  return [
    `checkpoints/${runId}/`,
    ...(experimentId === null ? [] : [`${runArtifactPrefix(experimentId, runId)}checkpoints/`]),
  ];
}

export interface CheckpointSweepResult {
  runs: number;
  objects: number;
}

/** Deletes the checkpoints of every run that ended before `olderThan`, `batchSize` runs per query. */
export async function sweepCheckpoints(
  db: Db,
  objects: ObjectStore,
  options: { olderThan: Date; batchSize?: number; signal?: AbortSignal; now?: () => Date },
): Promise<CheckpointSweepResult> {
  const { olderThan, batchSize = 100, signal, now = () => new Date() } = options;
  const swept: CheckpointSweepResult = { runs: 0, objects: 0 };
  for (;;) {
    const expired = await runsWithExpiredCheckpoints(db, olderThan, batchSize);
    for (const { runId, experimentId } of expired) {
      if (signal?.aborted) return swept;
      for (const prefix of checkpointPrefixes(runId, experimentId)) {
        for (const key of await objects.list(prefix)) {
          await objects.remove(key);
          swept.objects++;
        }
      }
      await markCheckpointsDeleted(db, runId, now());
      swept.runs++;
    }
    if (expired.length < batchSize) return swept;
  }
}
