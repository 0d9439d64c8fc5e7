/**
 * `flywheel lineage <model@version>`: where a model version came from and where it went — the alert that started its
 * retraining (and the version being served then), the run, the dataset version and its validation, the code, and
 * every alias move to and from it.
 */
import type { Command } from 'commander';
import { ConfigError } from '../config/pipeline';
import { api, ApiCallError } from './api';
import { when, type Say } from './output';

/** `GET /api/v1/models/{name}/versions/{version}/lineage` (dates as ISO strings). */
interface LineageJson {
  modelName: string;
  version: number;
  registeredAt: string;
  metrics: Record<string, number>;
  trigger: string;
  alert: {
    id: number;
    check: string | null;
    severity: string | null;
    status: string | null;
    openedAt: string | null;
    monitorWorkflowId: string | null;
    message: string | null;
  } | null;
  servedLineage: LineageJson | null;
  workflowId: string | null;
  source: string | null;
  run: {
    id: string;
    status: string;
    backend: string | null;
    sweepId: string | null;
    trial: number | null;
    codeVersion: string | null;
  } | null;
  dataset: { id: string; rowCount: number | null; sourceUri: string | null; validationPassed: boolean | null } | null;
  aliasMoves: {
    alias: string;
    fromVersion: number | null;
    toVersion: number | null;
    actor: string;
    reason: string;
    at: string;
  }[];
}

function describeVersion(lineage: LineageJson, say: Say, depth: number): void {
  const pad = '  '.repeat(depth);
  const { modelName: model, version, run, alert, dataset } = lineage;
  const metrics = Object.entries(lineage.metrics)
    .filter(([k]) => k !== 'count')
    .map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`)
    .join(' ');
  say(`${pad}${model} v${version}  registered ${when(lineage.registeredAt)}  ${metrics}`);
  if (alert) {
    say(
      `${pad}├─ started by alert #${alert.id}${alert.check !== null ? ` (${alert.check}, ${alert.severity}, ${alert.status}) opened ${when(alert.openedAt)} by ${alert.monitorWorkflowId}` : ''}`,
    );
    if (alert.message !== null) say(`${pad}│    ${alert.message}`);
    if (lineage.servedLineage) {
      say(`${pad}│    while ${model} v${lineage.servedLineage.version} was served:`);
      describeVersion(lineage.servedLineage, say, depth + 3);
    }
  } else
    say(
      `${pad}├─ started by ${lineage.trigger === 'schedule' ? 'a schedule' : lineage.trigger === 'cli' ? 'hand (flywheel run)' : lineage.trigger}`,
    );
  if (lineage.workflowId) say(`${pad}├─ pipeline workflow ${lineage.workflowId}`);
  if (run) {
    say(
      `${pad}├─ run ${run.id}  ${run.status} on ${run.backend ?? '?'}${run.sweepId ? `  (best trial ${(run.trial ?? 0) + 1} of sweep ${run.sweepId})` : ''}  code ${run.codeVersion ?? '-'}`,
    );
  }
  if (dataset) {
    const validation =
      dataset.validationPassed === null ? '' : `  (validation ${dataset.validationPassed ? 'passed' : 'FAILED'})`;
    say(
      `${pad}├─ dataset ${dataset.id}${dataset.sourceUri !== null ? `  ${dataset.rowCount} rows from ${dataset.sourceUri}` : ''}${validation}`,
    );
  } else
    say(
      `${pad}├─ registered over the API${lineage.source ? ` from ${lineage.source}` : ''} (no dataset version recorded)`,
    );
  const moves = lineage.aliasMoves;
  if (!moves.length) say(`${pad}└─ never deployed`);
  moves.forEach((m, i) => {
    const arrow =
      m.toVersion === version
        ? `rolled out to @${m.alias} (was ${m.fromVersion ? `v${m.fromVersion}` : 'none'})`
        : m.toVersion === null
          ? `removed from @${m.alias}`
          : `replaced on @${m.alias} by v${m.toVersion}`;
    say(`${pad}${i === moves.length - 1 ? '└─' : '├─'} ${when(m.at)} ${arrow} by ${m.actor}: ${m.reason}`);
  });
}

/** A 404 from the API as the message this command has always printed. */
async function orNotFound<T>(call: Promise<T>, message: string): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof ApiCallError && error.status === 404) throw new ConfigError(message);
    throw error;
  }
}

export function registerLineageCommand(program: Command, say: Say): void {
  program
    .command('lineage <ref>')
    .description("a model version's chain: alert → retraining run → dataset version → model version → rollout")
    .action(async (ref: string) => {
      const match = /^([^@]+)@v?(\d+)$/.exec(ref) ?? /^([^@]+)$/.exec(ref);
      if (!match) throw new ConfigError(`expected <model>@<version>, e.g. demand@3, got "${ref}"`);
      const model = match[1]!;
      let version = match[2] ? Number(match[2]) : undefined;
      if (version === undefined) {
        const { latestVersion } = await orNotFound(
          api<{ latestVersion: number | null }>('GET', `/api/v1/models/${encodeURIComponent(model)}`),
          `no model ${model}`,
        );
        if (latestVersion === null) throw new ConfigError(`no model ${model}`);
        version = latestVersion;
      }
      const lineage = await orNotFound(
        api<LineageJson>('GET', `/api/v1/models/${encodeURIComponent(model)}/versions/${version}/lineage`),
        `model ${model} has no version ${version}`,
      );
      describeVersion(lineage, say, 0);
    });
}
