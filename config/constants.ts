/**
 * Names and profiles shared by workflows, workers and the CLI. Pure constants (no environment, no I/O),
 * so workflow code may import them; `config/env.ts` re-exports them.
 */

import type { ActivityOptions } from '@temporalio/common';

/** Task queue names, one per kind of work. */
export const TASK_QUEUES = {
  /** Workflows and CPU stages (ingest, validate, evaluate, register, deploy, monitor). */
  main: 'flywheel',
  /** Training on GPU workers (tfjs-node-gpu); concurrency = number of GPUs. */
  trainGpu: 'flywheel-train-gpu',
  /** Training on CPU workers (tfjs-node, wasm or cpu backend). */
  trainCpu: 'flywheel-train-cpu',
  /** The user's Python training functions on Python workers (`flywheel-worker`, sdk/python), CPU and GPU. */
  trainPythonCpu: 'flywheel-train-python-cpu',
  trainPythonGpu: 'flywheel-train-python-gpu',
} as const;
export type TaskQueueName = keyof typeof TASK_QUEUES;

/** Errors that no retry can fix: bad input, broken contracts, failed gates. */
export const NON_RETRYABLE_ERROR_TYPES = [
  'ConfigError',
  'IngestError',
  'DataValidationError',
  'TrainingError',
  'EntrypointError',
  'TrainingSetupError',
  'EvaluationError',
  'GateFailedError',
  'NotFoundError',
  'UnauthorizedError',
] as const;
export type NonRetryableErrorType = (typeof NON_RETRYABLE_ERROR_TYPES)[number];

/**
 * Named timeout + retry profiles. Workflows pick a profile by name; they never spell out numbers.
 * Retries back off exponentially; the non-retryable types above fail at once.
 */
export const ACTIVITY_PROFILES: Readonly<Record<'quick' | 'io' | 'training', ActivityOptions>> = {
  /** Metadata writes and reads: seconds. */
  quick: {
    startToCloseTimeout: '1m',
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '10s',
      maximumAttempts: 5,
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES],
    },
  },
  /** Object-store and network I/O (ingest, validate, evaluate, deploy): minutes, heartbeating. */
  io: {
    startToCloseTimeout: '30m',
    heartbeatTimeout: '2m',
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: 8,
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES],
    },
  },
  /** Training: hours; heartbeat every batch, checkpoint every epoch; a retry resumes from the checkpoint. */
  training: {
    startToCloseTimeout: '12h',
    heartbeatTimeout: '30s',
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '60s',
      maximumAttempts: 10,
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES],
    },
  },
};
export type ActivityProfileName = keyof typeof ACTIVITY_PROFILES;
