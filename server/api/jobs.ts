/**
 * Long operations the API starts as workflows (an ingest, a feature load or materialisation): what the CLI polls —
 * status, the progress the running activity last reported in its heartbeat, and the result or the failure's message.
 */
import { WorkflowNotFoundError, type WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { notFound } from '../../config/errors';
import { failureMessage, uiLink } from '../../storage/pipelines';
import type { ServerDeps } from '../deps';

export interface Job<Result = unknown> {
  workflowId: string;
  /** Temporal's status: RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT. */
  status: string;
  startedAt: Date;
  closedAt: Date | null;
  /** What the running activity last reported (`{ bytes }`, `{ rows }`); null before its first heartbeat. */
  progress: Record<string, unknown> | null;
  result?: Result;
  /** The deepest failure message: the one that names the file, row or column. */
  failure?: string;
  uiUrl: string;
}

/** A job's state; a 404 naming `what` when there is no such workflow, or it is not of one of `types` or not `ours`. */
export async function describeJob(
  deps: ServerDeps,
  workflowId: string,
  types: string[],
  what: string,
  ours: (description: WorkflowExecutionDescription) => boolean = () => true,
): Promise<Job> {
  const handle = (await deps.temporal()).workflow.getHandle(workflowId);
  const description = await handle.describe().catch((error: unknown) => {
    if (error instanceof WorkflowNotFoundError) return undefined;
    throw error;
  });
  if (!description || !types.includes(description.type) || !ours(description)) throw notFound(what);
  // The TypeScript SDK spells it CANCELLED; Temporal's API and UI, CANCELED.
  const status = description.status.name === 'CANCELLED' ? 'CANCELED' : description.status.name;
  const beat = description.raw.pendingActivities?.find((a) => a.heartbeatDetails?.payloads?.length)?.heartbeatDetails
    ?.payloads?.[0];
  let progress: Record<string, unknown> | null = null;
  try {
    if (beat) progress = defaultPayloadConverter.fromPayload(beat as never) as Record<string, unknown>;
  } catch {
    // a beat this API cannot read is no progress to show
  }
  const job: Job = {
    workflowId,
    status,
    startedAt: description.startTime,
    closedAt: description.closeTime ?? null,
    progress,
    uiUrl: uiLink(deps.config, workflowId),
  };
  if (status === 'COMPLETED') job.result = await handle.result();
  else if (status !== 'RUNNING')
    job.failure = await handle.result().then(
      () => status,
      (error: unknown) => failureMessage(error),
    );
  return job;
}
