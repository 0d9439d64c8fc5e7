/**
 * Follows a long operation the server started as a workflow (an ingest, a feature load): progress, then its outcome.
 */
import { pollUntil } from './api';

/** What the server answers about a job (server/api/jobs.ts). */
export interface JobJson<Result> {
  workflowId: string;
  status: string;
  progress: Record<string, unknown> | null;
  result?: Result;
  failure?: string;
  uiUrl: string;
}

/** Polls `path` until the job is no longer running, calling `onProgress` with each new heartbeat it reports. */
export async function followJob<Result>(
  path: string,
  onProgress: (progress: Record<string, unknown>) => void = () => undefined,
): Promise<JobJson<Result>> {
  let shown = '';
  return pollUntil<JobJson<Result>>(
    path,
    (job) => job.status !== 'RUNNING',
    (job) => {
      const progress = job.progress ? JSON.stringify(job.progress) : '';
      if (progress && progress !== shown) {
        shown = progress;
        onProgress(job.progress!);
      }
    },
  );
}
