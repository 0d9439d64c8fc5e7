/**
 * Following pipelines stage by stage through the API (`GET /api/v1/pipelines/{id}`), for `run --wait`, `status` and
 * `demo`.
 */
import type { PipelineResult, StageStatus } from '../workflows/pipeline';
import type { TrialResult } from '../workflows/sweep';
import { pollUntil, type PollOptions } from './api';

export { failureMessage, startPipeline, uiLink } from '../storage/pipelines';

/** `GET /api/v1/pipelines/{id}` (times as ISO strings). */
export interface PipelineStatus {
  workflowId: string;
  status: 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELED' | 'TERMINATED' | 'TIMED_OUT' | 'CONTINUED_AS_NEW' | string;
  startedAt: string;
  closedAt: string | null;
  model: string | null;
  pipeline: string | null;
  stages: StageStatus[];
  training?: { epoch: number; loss: number };
  trials?: TrialResult[];
  result?: PipelineResult;
  failure?: string;
  uiUrl: string;
}

export class PipelineFailedError extends Error {
  constructor(
    readonly workflowId: string,
    readonly status: string,
    readonly failure: string,
  ) {
    super(failure);
    this.name = 'PipelineFailedError';
  }
}

const ICON: Record<StageStatus['status'], string> = {
  pending: '·',
  running: '▶',
  done: '✓',
  failed: '✗',
  skipped: '-',
};

export function formatStage(stage: StageStatus): string {
  const took = stage.startedAt && stage.endedAt ? `${((stage.endedAt - stage.startedAt) / 1000).toFixed(1)}s` : '';
  return `  ${ICON[stage.status]} ${stage.name.padEnd(9)} ${took.padStart(7)}  ${stage.summary ?? ''}`;
}

export const pipelinePath = (workflowId: string) => `/api/v1/pipelines/${encodeURIComponent(workflowId)}`;

/**
 * Prints each stage as it starts and ends (training epochs and sweep trials as they land) until the pipeline closes;
 * resolves with its result, or throws `PipelineFailedError` with its failure. A Temporal or server outage is waited
 * through (`pollUntil`), so only the pipeline's own ending decides.
 */
export async function followPipeline(
  workflowId: string,
  print: (line: string) => void,
  options: PollOptions = {},
): Promise<PipelineResult> {
  const shown = new Map<string, string>();
  const shownTrials = new Set<number>();
  let lastEpoch = 0;
  const final = await pollUntil<PipelineStatus>(
    pipelinePath(workflowId),
    (p) => p.status !== 'RUNNING',
    (p) => {
      const train = p.stages.find((s) => s.name === 'train');
      // A sweep: one line per trial as it finishes, fails or is stopped early (the last ones before "train ✓").
      if (p.trials && (train?.status === 'running' || shown.get('train') !== train?.status || p.status !== 'RUNNING'))
        printTrials(p.trials, shownTrials, print);
      if (p.result?.sweep) printTrials(p.result.sweep.trials, shownTrials, print);
      for (const stage of p.result?.stages ?? p.stages) {
        if (stage.status === 'pending' || shown.get(stage.name) === stage.status) continue;
        shown.set(stage.name, stage.status);
        print(formatStage(stage));
      }
      if (!shownTrials.size && p.training && p.training.epoch > lastEpoch) {
        lastEpoch = p.training.epoch;
        print(`      epoch ${p.training.epoch}: loss ${p.training.loss.toFixed(4)}`);
      }
    },
    options,
  );
  if (final.status !== 'COMPLETED' || !final.result)
    throw new PipelineFailedError(workflowId, final.status, final.failure ?? `the pipeline ended ${final.status}`);
  return final.result;
}

function printTrials(trials: TrialResult[], shown: Set<number>, print: (line: string) => void): void {
  for (const trial of trials) {
    if (!trial || trial.status === 'running' || trial.status === 'pending' || shown.has(trial.index)) continue;
    shown.add(trial.index);
    const params = Object.entries(trial.params)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(3)) : JSON.stringify(v)}`)
      .join(' ');
    print(
      trial.status === 'failed'
        ? `      trial ${trial.index + 1}: failed: ${trial.error}`
        : `      trial ${trial.index + 1}: val_loss ${trial.objective!.toFixed(4)} after ${trial.epochs} epochs${trial.stoppedEarly ? ' (stopped early)' : ''}  ${params}`,
    );
  }
}
