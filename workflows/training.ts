/**
 * Routing a training step. TF.js training: the GPU queue when asked for (CPU after `gpuWait` with no GPU worker),
 * else CPU. A Python step: the same routing over the Python queues, between two main-queue activities that open the
 * run and take in the ONNX model it saved. An imported model: one activity that installs and checks it.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  TimeoutFailure,
} from '@temporalio/workflow';
import { ActivityCancellationType, TimeoutType } from '@temporalio/common';
import type {
  PythonTrainInput,
  PythonTrainOutput,
  StageActivities,
  TrainInput,
  TrainResult,
} from '../activities/index';
import { ACTIVITY_PROFILES, TASK_QUEUES } from '../config/constants';

export interface TrainingRoute {
  gpu: number;
  gpuWait: string;
  queues?: { trainCpu?: string; trainGpu?: string; trainPythonCpu?: string; trainPythonGpu?: string };
}

const main = proxyActivities<
  Pick<StageActivities, 'preparePythonRun' | 'finishPythonRun' | 'failTrainingRun' | 'importModel'>
>(ACTIVITY_PROFILES.io);

/** Runs `work` on the GPU queue when asked for; on the CPU queue when no GPU worker took it within `gpuWait`. */
async function onRoutedQueue<T>(
  route: TrainingRoute,
  queues: { cpu: string; gpu: string },
  work: (taskQueue: string, gpu: boolean) => Promise<T>,
): Promise<{ result: T; taskQueue: string; fellBack: boolean }> {
  if (route.gpu > 0) {
    try {
      return { result: await work(queues.gpu, true), taskQueue: queues.gpu, fellBack: false };
    } catch (error) {
      const timedOutWaiting =
        error instanceof ActivityFailure &&
        error.cause instanceof TimeoutFailure &&
        error.cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
      if (!timedOutWaiting) throw error;
    }
    return { result: await work(queues.cpu, false), taskQueue: queues.cpu, fellBack: true };
  }
  return { result: await work(queues.cpu, false), taskQueue: queues.cpu, fellBack: false };
}

export async function trainRouted(input: TrainInput, route: TrainingRoute): Promise<TrainResult> {
  const runner = input.params.runner ?? 'tfjs';
  if (runner === 'import') return main.importModel(input);
  if (runner === 'python') return trainPython(input, route);
  const { result } = await onRoutedQueue(
    route,
    { cpu: route.queues?.trainCpu ?? TASK_QUEUES.trainCpu, gpu: route.queues?.trainGpu ?? TASK_QUEUES.trainGpu },
    (taskQueue, gpu) => {
      const queue = proxyActivities<{ trainModel(input: TrainInput): Promise<TrainResult> }>({
        ...ACTIVITY_PROFILES.training,
        taskQueue,
        ...(gpu ? { scheduleToStartTimeout: route.gpuWait } : {}),
      });
      return queue.trainModel(gpu || route.gpu === 0 ? input : { ...input, fellBackFromGpu: true });
    },
  );
  return result;
}

async function trainPython(input: TrainInput, route: TrainingRoute): Promise<TrainResult> {
  const prepared = await main.preparePythonRun(input);
  if ('done' in prepared) return prepared.done;
  const { train } = prepared;
  let ran: { result: PythonTrainOutput; taskQueue: string };
  try {
    ran = await onRoutedQueue(
      route,
      {
        cpu: route.queues?.trainPythonCpu ?? TASK_QUEUES.trainPythonCpu,
        gpu: route.queues?.trainPythonGpu ?? TASK_QUEUES.trainPythonGpu,
      },
      (taskQueue, gpu) => {
        const queue = proxyActivities<{ trainPython(input: PythonTrainInput): Promise<PythonTrainOutput> }>({
          ...ACTIVITY_PROFILES.training,
          // A cancelled pipeline ends once the user's process has stopped, not while it still writes to the run.
          cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
          taskQueue,
          ...(gpu ? { scheduleToStartTimeout: route.gpuWait } : {}),
        });
        return queue.trainPython(train);
      },
    );
  } catch (error) {
    // The Python failure (its trimmed traceback) is the run's error too; the workflow fails with it. A cancelled
    // pipeline still records why its run ended, outside the cancelled scope.
    const cause = error instanceof ActivityFailure ? error.cause : error;
    const message = isCancellation(error)
      ? 'cancelled'
      : cause instanceof ApplicationFailure || cause instanceof Error
        ? cause.message
        : String(cause);
    await CancellationScope.nonCancellable(() => main.failTrainingRun({ runId: train.runId, message }));
    throw error;
  }
  return main.finishPythonRun({
    train: input,
    runId: train.runId,
    experimentId: train.experimentId,
    taskQueue: ran.taskQueue,
    output: ran.result,
  });
}
