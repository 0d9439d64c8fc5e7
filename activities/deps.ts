/** What every activity factory receives: real services in workers, the test's own in tests. */
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { NonRetryableErrorType } from '../config/env';
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';

export interface ActivityDeps {
  db: Db;
  store: ObjectStore;
  /** For activities that start or signal workflows (monitors, retraining). */
  temporal: Client;
  /** Task queue the pipeline workflows run on; retraining starts there. */
  workflowTaskQueue: string;
  /** Training queues for the pipelines these activities start (tests use their own). @default TASK_QUEUES */
  trainingQueues?: { trainCpu?: string; trainGpu?: string };
}

/** A failure no retry can fix: the type lets workflows and `nonRetryableErrorTypes` recognise it. */
export function badInput(type: NonRetryableErrorType, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: true,
    details: details === undefined ? undefined : [details],
  });
}
