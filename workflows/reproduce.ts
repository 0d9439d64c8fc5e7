/**
 * Reproduce a run: train again with its dataset version, params and seed, evaluate on the same holdout, and compare
 * every holdout metric with the original. On the CPU and wasm backends training is deterministic, so they match bit
 * for bit; a difference on the same backend is a bug.
 */
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { StageActivities } from '../activities/index';
import { ACTIVITY_PROFILES } from '../config/constants';
import { trainRouted } from './training';

export interface ReproduceInput {
  runId: string;
  queues?: { trainCpu?: string };
}

export interface ReproduceResult {
  runId: string;
  backend: string;
  originalBackend: string | null;
  sameBackend: boolean;
  original: Record<string, number>;
  reproduced: Record<string, number>;
  identical: boolean;
}

const quick = proxyActivities<StageActivities>(ACTIVITY_PROFILES.quick);
const io = proxyActivities<StageActivities>(ACTIVITY_PROFILES.io);

export async function reproduceWorkflow(input: ReproduceInput): Promise<ReproduceResult> {
  const spec = await quick.loadRunSpec(input.runId);
  const training = await trainRouted(
    {
      workflowId: workflowInfo().workflowId,
      pipelineName: spec.pipelineName,
      modelName: spec.modelName,
      experiment: spec.experiment,
      datasetVersionId: spec.datasetVersionId,
      params: spec.params,
      tags: { reproduces: spec.runId },
    },
    { gpu: 0, gpuWait: '1m', queues: input.queues },
  );
  const evaluation = await io.evaluateModel({
    runId: training.runId,
    artifactKey: training.artifactKey,
    datasetVersionId: spec.datasetVersionId,
    params: spec.params,
    gates: [],
  });
  const reproduced: Record<string, number> = { loss: training.finalLoss, objective: training.objective };
  for (const [k, v] of Object.entries(evaluation.metrics)) reproduced[`holdout_${k}`] = v;
  // Compare what both have: the training loss, the objective and every holdout metric of the evaluation.
  const keys = Object.keys(reproduced).filter((k) => spec.metrics[k] !== undefined);
  const original = Object.fromEntries(keys.map((k) => [k, spec.metrics[k]!]));
  return {
    runId: training.runId,
    backend: training.backend,
    originalBackend: spec.backend,
    sameBackend: training.backend === spec.backend,
    original,
    reproduced: Object.fromEntries(keys.map((k) => [k, reproduced[k]!])),
    identical: keys.length > 0 && keys.every((k) => reproduced[k] === original[k]),
  };
}
