/** Workflows for the pipeline benchmark: Flywheel's pipeline, and a bare workflow with as many no-op activities. */
import { proxyActivities } from '@temporalio/workflow';

export { pipelineWorkflow } from '../workflows/pipeline';

const { noop } = proxyActivities<{ noop(step: number): Promise<number> }>({ startToCloseTimeout: '1m' });

export async function bareWorkflow(steps: number): Promise<number> {
  let total = 0;
  for (let step = 0; step < steps; step++) total += await noop(step);
  return total;
}
