/**
 * Materialisation of a feature view into the online store, window by window (Feast's `materialize-incremental`, with
 * its scheduler built in: run it from a Temporal Schedule, `flywheel features schedule`). Each window moves the
 * watermark in the same transaction as its upserts, so a crash resumes after the last finished window and a re-run
 * writes nothing twice.
 */
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { StageActivities } from '../activities/index';
import { ACTIVITY_PROFILES } from '../config/constants';
import { durationMs } from '../config/duration';

const quick = proxyActivities<StageActivities>(ACTIVITY_PROFILES.quick);
const io = proxyActivities<StageActivities>(ACTIVITY_PROFILES.io);

export interface MaterializeInput {
  /** `name` (latest version) or `name@version`. */
  view: string;
  /** Event time to materialise up to (ISO 8601). @default the workflow's start time */
  until?: string;
  /** Event time per activity. @default 1 day, or a twentieth of the span when that is longer (a backfill) */
  window?: string;
  /** Reload the offline table from the source first. @default true */
  load?: boolean;
  /** Clear the online rows and start from the oldest event. */
  full?: boolean;
}

export interface MaterializeResult {
  ref: string;
  windows: number;
  upserted: number;
  from: string | null;
  watermark: string | null;
  loadedRows?: number;
}

export async function materializeWorkflow(input: MaterializeInput): Promise<MaterializeResult> {
  const loaded = input.load === false ? undefined : await io.loadFeatureView({ view: input.view });
  const state = await quick.materializationState({ view: input.view });
  if (input.full) await quick.resetMaterialization({ name: state.name, version: state.version });
  const until = input.until ? Date.parse(input.until) : workflowInfo().startTime.getTime();
  const start = (input.full ? null : state.watermark) ?? (state.minEvent === null ? null : state.minEvent - 1);
  if (start === null || start >= until) {
    return {
      ref: state.ref,
      windows: 0,
      upserted: 0,
      from: null,
      watermark: state.watermark === null ? null : new Date(state.watermark).toISOString(),
      loadedRows: loaded?.rows,
    };
  }
  // Windows past the newest event hold nothing: one last window covers (newest, until].
  const last = Math.min(until, Math.max(start, state.maxEvent ?? start));
  const step = input.window ? durationMs(input.window) : Math.max(86_400_000, Math.ceil((last - start) / 20));
  let upserted = 0,
    windows = 0,
    from = start;
  while (from < until) {
    const to = from >= last ? until : Math.min(from + step, last);
    upserted += await io.materializeWindow({ name: state.name, version: state.version, from, to });
    windows++;
    from = to;
  }
  return {
    ref: state.ref,
    windows,
    upserted,
    from: new Date(start).toISOString(),
    watermark: new Date(until).toISOString(),
    loadedRows: loaded?.rows,
  };
}

/** Loads a view's source into its offline table, alone (`flywheel features load`). */
export async function loadFeatureViewWorkflow(input: {
  view: string;
}): Promise<{ ref: string; rows: number; loadedFrom: string }> {
  return io.loadFeatureView(input);
}
