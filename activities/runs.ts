/** Run lookups for workflows that start from an existing run (reproduce). */
import { ApiError } from '../config/errors';
import { getRun } from '../store/runs';
import { badInput, type ActivityDeps } from './deps';
import type { TrainingParams } from './train';

export interface RunSpec {
  runId: string;
  pipelineName: string;
  modelName: string;
  experiment: string;
  datasetVersionId: string;
  params: TrainingParams;
  backend: string | null;
  metrics: Record<string, number>;
}

export function createRunActivities({ db }: ActivityDeps) {
  return {
    async loadRunSpec(runId: string): Promise<RunSpec> {
      const run = await getRun(db, runId).catch((error: unknown) => {
        if (error instanceof ApiError && error.code === 'RESOURCE_DOES_NOT_EXIST') return undefined;
        throw error;
      });
      if (!run) throw badInput('NotFoundError', `run ${runId} does not exist`);
      if (!run.pipelineName || !run.modelName || !run.datasetVersionId || run.seed === null) {
        throw badInput(
          'NotFoundError',
          `run ${runId} was logged by a client, not trained by a pipeline: it cannot be reproduced`,
        );
      }
      if (run.status !== 'finished')
        throw badInput('NotFoundError', `run ${runId} is ${run.status}; only a finished run can be reproduced`);
      const { fellBackFromGpu: _gpu, ...params } = run.params as unknown as TrainingParams & {
        fellBackFromGpu?: boolean;
      };
      // A sweep trial stopped by the median rule trained fewer epochs than its params say.
      if (run.metrics?.stopped_early === 1 && run.metrics.epochs) params.epochs = run.metrics.epochs;
      return {
        runId,
        pipelineName: run.pipelineName,
        modelName: run.modelName,
        experiment: run.experiment,
        datasetVersionId: run.datasetVersionId,
        params,
        backend: run.backend,
        metrics: run.metrics ?? {},
      };
    },
  };
}
