/** Starting pipelines and following them stage by stage, for `run`, `demo` and `status`. */
import type { WorkflowHandle } from '@temporalio/client';
import { and, desc, eq } from 'drizzle-orm';
import { runIdFor } from '../activities/train';
import { runMetrics } from '../schema/runs';
import type { Db } from '../storage/db';
import type { PipelineResult, StageStatus } from '../workflows/pipeline';
import type { TrialResult } from '../workflows/sweep';

export { codeVersion, failureMessage, pipelineInput, pipelineWorkflowId, startPipeline, uiLink } from '../storage/pipelines';

const ICON: Record<StageStatus['status'], string> = { pending: '·', running: '▶', done: '✓', failed: '✗', skipped: '-' };

export function formatStage(stage: StageStatus): string {
  const took = stage.startedAt && stage.endedAt ? `${((stage.endedAt - stage.startedAt) / 1000).toFixed(1)}s` : '';
  return `  ${ICON[stage.status]} ${stage.name.padEnd(9)} ${took.padStart(7)}  ${stage.summary ?? ''}`;
}

/** Prints each stage as it starts and ends (and training epochs as they land) until the workflow closes. */
export async function followPipeline(handle: WorkflowHandle, db: Db | undefined, print: (line: string) => void): Promise<PipelineResult> {
  const shown = new Map<string, string>();
  let lastEpoch = 0;
  const shownTrials = new Set<number>();
  const runId = runIdFor(handle.workflowId);
  const result = handle.result() as Promise<PipelineResult>;
  let done = false;
  result.then(() => (done = true), () => (done = true));
  while (!done) {
    try {
      const stages = await handle.query<StageStatus[]>('progress');
      const train = stages.find((s) => s.name === 'train');
      if (train?.status === 'running' || (train?.status === 'done' && shown.get('train') !== 'done')) {
        // A sweep: one line per trial as it finishes, fails or is stopped early (the last ones before "train ✓").
        const trials = await handle.client.getHandle(`${handle.workflowId}-sweep`).query<TrialResult[]>('trials').catch(() => undefined);
        printTrials(trials ?? [], shownTrials, print);
      }
      for (const stage of stages) {
        if (stage.status === 'pending' || shown.get(stage.name) === stage.status) continue;
        shown.set(stage.name, stage.status);
        print(formatStage(stage));
      }
      if (db && !shownTrials.size && stages.find((s) => s.name === 'train')?.status === 'running') {
        const [latest] = await db.select().from(runMetrics).where(and(eq(runMetrics.runId, runId), eq(runMetrics.key, 'loss'))).orderBy(desc(runMetrics.step)).limit(1);
        if (latest && latest.step > lastEpoch) {
          lastEpoch = latest.step;
          print(`      epoch ${latest.step}: loss ${latest.value.toFixed(4)}`);
        }
      }
    } catch {
      // No worker has picked the workflow up yet; keep waiting.
    }
    await Promise.race([result.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 500))]);
  }
  const final = await result.catch(async (error) => {
    const stages = await handle.query<StageStatus[]>('progress').catch(() => []);
    for (const stage of stages) if (stage.status !== 'pending' && shown.get(stage.name) !== stage.status) print(formatStage(stage));
    throw error;
  });
  if (final.sweep) printTrials(final.sweep.trials, shownTrials, print);
  for (const stage of final.stages) if (shown.get(stage.name) !== stage.status) print(formatStage(stage));
  return final;
}

function printTrials(trials: TrialResult[], shown: Set<number>, print: (line: string) => void): void {
  for (const trial of trials) {
    if (!trial || trial.status === 'running' || trial.status === 'pending' || shown.has(trial.index)) continue;
    shown.add(trial.index);
    const params = Object.entries(trial.params).map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(3)) : JSON.stringify(v)}`).join(' ');
    print(trial.status === 'failed'
      ? `      trial ${trial.index + 1}: failed: ${trial.error}`
      : `      trial ${trial.index + 1}: val_loss ${trial.objective!.toFixed(4)} after ${trial.epochs} epochs${trial.stoppedEarly ? ' (stopped early)' : ''}  ${params}`);
  }
}
