/** Routing a training activity: the GPU queue when asked for (CPU after `gpuWait` with no GPU worker), else CPU. */
import { ActivityFailure, proxyActivities, TimeoutFailure } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { TrainInput, TrainResult } from '../activities/index';
import { ACTIVITY_PROFILES, TASK_QUEUES } from '../config/constants';

export interface TrainingRoute {
  gpu: number;
  gpuWait: string;
  queues?: { trainCpu?: string; trainGpu?: string };
}

export async function trainRouted(input: TrainInput, route: TrainingRoute): Promise<TrainResult> {
  const cpuQueue = route.queues?.trainCpu ?? TASK_QUEUES.trainCpu;
  if (route.gpu > 0) {
    const gpu = proxyActivities<{ trainModel(input: TrainInput): Promise<TrainResult> }>({
      ...ACTIVITY_PROFILES.training,
      taskQueue: route.queues?.trainGpu ?? TASK_QUEUES.trainGpu,
      scheduleToStartTimeout: route.gpuWait,
    });
    try {
      return await gpu.trainModel(input);
    } catch (error) {
      const timedOutWaiting =
        error instanceof ActivityFailure &&
        error.cause instanceof TimeoutFailure &&
        error.cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
      if (!timedOutWaiting) throw error;
    }
    input = { ...input, fellBackFromGpu: true };
  }
  const cpu = proxyActivities<{ trainModel(input: TrainInput): Promise<TrainResult> }>({
    ...ACTIVITY_PROFILES.training,
    taskQueue: cpuQueue,
  });
  return cpu.trainModel(input);
}
