/** The pipeline's words for humans: each stage's one-line summary and each refusal's message, pure and testable. */
import type { IngestResult, TrainResult, ValidateResult } from '../activities/index';
import type { DeployResult } from '../activities/deploy';
import type { EvaluateResult } from '../activities/evaluate';
import type { RegisterResult } from '../activities/registry';
import type { ReleaseAuthority } from '../activities/release';
import type { RolloutStrategy } from '../config/pipeline';
// Type-only: erased, so this module loads no Temporal code.
import type { RolloutResult } from './release';
import type { SweepResult } from './sweep';

/** A registered version, as the messages name it. */
export interface NamedVersion {
  modelName: string;
  version: number;
}

/** Metric values in summaries: three decimals. */
export function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

export function describeAuthority(authority: ReleaseAuthority): string {
  if (authority.actor)
    return `release authorised by ${authority.actor}${authority.scope === 'system' ? ' (through its gates only)' : ''}`;
  return authority.newModel
    ? 'a new model: its first release needs no grant'
    : 'no release grant: a new version is registered, deployed only if an admin approves it';
}

/** Null authority: a run recorded before grants existed. */
export function recordSummary(pipelineName: string, authority: ReleaseAuthority | null): string {
  return `pipeline ${pipelineName} stored${authority ? `; ${describeAuthority(authority)}` : ''}`;
}

/** `csv`, or `csv (';'-separated, detected from the first line)` when that is not the comma a reader assumes. */
export function describeFormat(r: Pick<IngestResult, 'format' | 'delimiter'>): string {
  if (!r.delimiter) return r.format;
  const shown = r.delimiter === '\t' ? 'tab' : `'${r.delimiter}'`;
  return `${r.format} (${shown}-separated, detected from the first line)`;
}

export function ingestSummary(
  r: Pick<IngestResult, 'datasetVersionId' | 'rowCount' | 'format' | 'delimiter' | 'reused' | 'featureViews'>,
) {
  return `${r.datasetVersionId}: ${r.rowCount} rows from ${describeFormat(r)}${r.featureViews ? ` with features of ${r.featureViews.map((v) => v.ref).join(', ')} joined point in time` : ''}${r.reused ? ' (already stored; reused)' : ''}`;
}

export function validateSummary(r: Pick<ValidateResult, 'contract' | 'reference' | 'warnings'>): string {
  return (
    `${r.contract} schema holds${r.reference ? `; distributions checked against ${r.reference}` : ''}` +
    `${r.warnings.length ? ` (${r.warnings.length} warnings)` : ''}`
  );
}

/** `r` is the trained run: the sweep's best trial when there was a sweep. */
export function trainSummary(
  r: Pick<TrainResult, 'runId' | 'backend' | 'epochs' | 'taskQueue' | 'resumedFromEpoch'>,
  sweep: SweepResult | undefined,
): string {
  return sweep
    ? `sweep of ${sweep.trials.length} trials (${sweep.trials.filter((t) => t.stoppedEarly).length} stopped early, ${sweep.trials.filter((t) => t.status === 'failed').length} failed); best trial ${sweep.best.trial + 1} ${JSON.stringify(sweep.best.params)}: val_loss ${round(sweep.best.objective)}, ${r.runId} on ${r.backend}`
    : `${r.runId}: ${r.epochs} epochs on ${r.backend} (${r.taskQueue})${r.resumedFromEpoch !== undefined ? `, resumed after epoch ${r.resumedFromEpoch + 1}` : ''}`;
}

export function evaluateSummary(r: Pick<EvaluateResult, 'metrics' | 'baseline'>): string {
  return (
    Object.entries(r.metrics)
      .filter(([k]) => k !== 'count')
      .map(([k, v]) => `${k}=${round(v)}`)
      .join(' ') +
    (r.baseline
      ? ` (champion v${r.baseline.version} on ${r.baseline.scoredOn}: ${Object.entries(r.baseline.metrics)
          .filter(([k]) => k !== 'count')
          .slice(0, 4)
          .map(([k, v]) => `${k}=${round(v)}`)
          .join(' ')})`
      : '')
  );
}

export function registerSummary(r: RegisterResult, gateTag: 'passed' | 'failed'): string {
  return `${r.modelName} v${r.version} (gate ${gateTag})`;
}

export function gateSummary(checks: number): string {
  return checks ? `${checks} checks passed` : 'no gates configured';
}

export function gateFailedMessage(failures: string[], model: NamedVersion): string {
  return `evaluation gate failed: ${failures.join('; ')}. ${model.modelName} v${model.version} is registered but not promoted`;
}

/** The approve stage's summary while it waits. */
export function awaitingApproval(model: NamedVersion, approval: { timeout: string; onTimeout: string }): string {
  return `waiting for \`flywheel approve ${model.modelName}@${model.version}\` (timeout ${approval.timeout}, then ${approval.onTimeout})`;
}

export function approvedSummary(outcome: { actor: string; comment?: string }): string {
  return `approved by ${outcome.actor}${outcome.comment ? `: ${outcome.comment}` : ''}`;
}

/** `decided` false: the approval expired (and its timeout rejects). */
export function releaseRejectedMessage(
  model: NamedVersion,
  decided: boolean,
  outcome: { actor: string; comment?: string },
  timeout: string,
): string {
  return `release of ${model.modelName} v${model.version} ${decided ? `rejected by ${outcome.actor}` : `expired after ${timeout}`}${outcome.comment ? `: ${outcome.comment}` : ''}; it stays registered, not promoted`;
}

/** Why this version may not replace what its model serves; undefined when it may. */
export function releaseRefusal(
  authority: ReleaseAuthority,
  approvedBy: string | undefined,
  gates: number,
  model: NamedVersion,
): string | undefined {
  if (approvedBy || authority.scope === 'admin') return undefined;
  const kept = `${model.modelName} v${model.version} is registered, tagged release=unauthorised, not deployed`;
  if (authority.scope === 'system') {
    return gates > 0
      ? undefined
      : `${kept}: a retraining started by ${authority.actor} may replace the champion only through evaluation gates, and this pipeline configures none`;
  }
  if (authority.newModel) return undefined;
  return `${kept}: ${model.modelName} already existed, and releasing a new version of it needs a release grant (flywheel run --token <admin token>, an admin token over the API) or an admin's approval (deploy.approval)`;
}

/** The release's audit reason: what started the run and, when known, who authorised the release. */
export function releaseReason(
  pipelineName: string,
  trigger: { kind: string; reason?: string } | undefined,
  approvedBy: { actor: string } | undefined,
  authority: ReleaseAuthority | null,
): string {
  const authorisedBy = approvedBy
    ? `approval by ${approvedBy.actor}`
    : authority
      ? (authority.actor ?? 'first release of a new model')
      : undefined;
  return `${trigger?.reason ?? `pipeline ${pipelineName} (${trigger?.kind ?? 'cli'})`}${authorisedBy ? `; authorised by ${authorisedBy}` : ''}`;
}

export function rolledBackMessage(model: NamedVersion, reason: string | undefined, alias: string, champion: number) {
  return `canary of ${model.modelName} v${model.version} rolled back: ${reason}; @${alias} stays at v${champion}`;
}

/** `modelName` is the config's model; `candidate` the version rolled out against the `champion`. */
export function rolloutSummary(
  kind: RolloutStrategy['kind'],
  r: Pick<RolloutResult, 'steps' | 'variants' | 'shadow'>,
  release: { modelName: string; alias: string; candidate: number; champion: number },
): string {
  const { modelName, alias, candidate, champion } = release;
  return kind === 'shadow'
    ? `shadowed against v${champion}: ${r.shadow?.requests ?? 0} requests, ${r.shadow?.meanAbsDifference !== null && r.shadow?.meanAbsDifference !== undefined ? `mean |difference| ${round(r.shadow.meanAbsDifference)}` : `agreement ${round(r.shadow?.agreement ?? NaN)}`}; @${alias} unchanged`
    : kind === 'ab'
      ? `A/B test against v${champion}: ${(r.variants ?? []).map((v) => `v${v.version} ${v.requests} requests${v.metric ? `, ${v.metric.name} ${round(v.metric.value)}` : ''}`).join('; ')}; @${alias} unchanged`
      : `canary ${r.steps.map((s) => `${s.percent} %`).join(' → ')} healthy; ${modelName}@${alias} → v${candidate} (was v${champion})`;
}

/** Replica labels in a summary: the first few, then how many more. */
function someReplicas(labels: string[], shown = 3): string {
  return labels.length > shown
    ? `${labels.slice(0, shown).join(', ')} and ${labels.length - shown} more`
    : labels.join(', ');
}

/**
 * `modelName` is the config's model. With registered replicas it says how many of the live ones confirmed (and which
 * lag); a result from before replicas reported (no `replicas`) says what the serving URL answered.
 */
export function deploySummary(
  r: Pick<DeployResult, 'previousVersion' | 'serving' | 'replicas' | 'lagging'>,
  modelName: string,
  alias: string,
  version: number,
): string {
  const moved = `${modelName}@${alias} → v${version} (was ${r.previousVersion === null ? 'none' : `v${r.previousVersion}`})`;
  if (r.replicas === undefined) return `${moved}; serving ${r.serving}`;
  const lagging = r.lagging ?? [];
  const of = `${r.replicas} of ${r.replicas + lagging.length} serving replica${r.replicas + lagging.length === 1 ? '' : 's'}`;
  return lagging.length
    ? `${moved}; confirmed by ${of}, not yet by ${someReplicas(lagging)}`
    : `${moved}; confirmed by ${of}`;
}

export function monitorSummary(monitorWorkflowId: string, interval: string): string {
  return `monitor ${monitorWorkflowId} every ${interval}`;
}
