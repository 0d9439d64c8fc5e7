/**
 * `flywheel lineage <model@version>`: where a model version came from and where it went — the alert that started its
 * retraining (and the version being served then), the run, the dataset version and its validation, the code, and
 * every alias move to and from it.
 */
import type { Command } from 'commander';
import { and, eq } from 'drizzle-orm';
import { ConfigError } from '../config/pipeline';
import { datasetVersions, validationReports } from '../schema/datasets';
import { alerts } from '../schema/monitors';
import { runs } from '../schema/runs';
import type { Db } from '../storage/db';
import { findModelVersion, latestModelVersion, listAliasEvents } from '../store/registry';
import { when, withDb, type Say } from './output';


async function describeVersion(db: Db, model: string, version: number, say: Say, depth: number): Promise<void> {
  const pad = '  '.repeat(depth);
  const mv = await findModelVersion(db, model, version);
  if (!mv) throw new ConfigError(`model ${model} has no version ${version}`);
  const [run] = mv.runId ? await db.select().from(runs).where(eq(runs.id, mv.runId)) : [];
  const metrics = Object.entries(mv.metrics).filter(([k]) => k !== 'count').map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`).join(' ');
  say(`${pad}${model} v${version}  registered ${when(mv.createdAt)}  ${metrics}`);
  const trigger = run?.tags.trigger ?? 'cli';
  const alertId = run?.tags.alert ? Number(run.tags.alert) : undefined;
  if (alertId !== undefined) {
    const [alert] = await db.select().from(alerts).where(eq(alerts.id, alertId));
    say(`${pad}├─ started by alert #${alertId}${alert ? ` (${alert.check}, ${alert.severity}, ${alert.status}) opened ${when(alert.openedAt)} by ${alert.monitorWorkflowId}` : ''}`);
    if (alert) say(`${pad}│    ${alert.message}`);
    const served = alert?.details && typeof (alert.details as { version?: unknown }).version === 'number' ? (alert.details as { version: number }).version : undefined;
    if (served !== undefined && served !== version && depth < 3) {
      say(`${pad}│    while ${model} v${served} was served:`);
      await describeVersion(db, model, served, say, depth + 3);
    }
  } else say(`${pad}├─ started by ${trigger === 'schedule' ? 'a schedule' : trigger === 'cli' ? 'hand (flywheel run)' : trigger}`);
  if (mv.workflowId) say(`${pad}├─ pipeline workflow ${mv.workflowId}`);
  if (run) {
    say(`${pad}├─ run ${run.id}  ${run.status} on ${run.backend ?? '?'}${run.sweepId ? `  (best trial ${(run.trial ?? 0) + 1} of sweep ${run.sweepId})` : ''}  code ${run.codeVersion ?? '-'}`);
  }
  if (mv.datasetVersionId) {
    const [dataset] = await db.select().from(datasetVersions).where(eq(datasetVersions.id, mv.datasetVersionId));
    const [report] = mv.workflowId
      ? await db.select().from(validationReports).where(and(eq(validationReports.datasetVersionId, mv.datasetVersionId), eq(validationReports.workflowId, mv.workflowId)))
      : [];
    say(`${pad}├─ dataset ${mv.datasetVersionId}${dataset ? `  ${dataset.rowCount} rows from ${dataset.sourceUri}` : ''}${report ? `  (validation ${report.passed ? 'passed' : 'FAILED'})` : ''}`);
  } else say(`${pad}├─ registered over the API${mv.source ? ` from ${mv.source}` : ''} (no dataset version recorded)`);
  const moves = await listAliasEvents(db, { modelName: model, version, oldestFirst: true });
  if (!moves.length) say(`${pad}└─ never deployed`);
  moves.forEach((m, i) => {
    const arrow = m.toVersion === version ? `rolled out to @${m.alias} (was ${m.fromVersion ? `v${m.fromVersion}` : 'none'})` : m.toVersion === null ? `removed from @${m.alias}` : `replaced on @${m.alias} by v${m.toVersion}`;
    say(`${pad}${i === moves.length - 1 ? '└─' : '├─'} ${when(m.at)} ${arrow} by ${m.actor}: ${m.reason}`);
  });
}

export function registerLineageCommand(program: Command, say: Say): void {
  program.command('lineage <ref>')
    .description('a model version\'s chain: alert → retraining run → dataset version → model version → rollout')
    .action(async (ref: string) => {
      const match = /^([^@]+)@v?(\d+)$/.exec(ref) ?? /^([^@]+)$/.exec(ref);
      if (!match) throw new ConfigError(`expected <model>@<version>, e.g. demand@3, got "${ref}"`);
      await withDb(async (db) => {
        let version = match[2] ? Number(match[2]) : undefined;
        if (version === undefined) {
          const latest = await latestModelVersion(db, match[1]!);
          if (!latest) throw new ConfigError(`no model ${match[1]}`);
          version = latest.version;
        }
        await describeVersion(db, match[1]!, version, say, 0);
      });
    });
}
