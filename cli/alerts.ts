/** `flywheel alerts`: open alerts of the monitors; acknowledge or resolve one (a signal to its monitor). */
import type { Command } from 'commander';
import { desc, eq, inArray } from 'drizzle-orm';
import { ConfigError } from '../config/pipeline';
import { alerts } from '../schema/monitors';
import { temporalClient } from '../storage/temporal';
import { loadConfig } from '../temporal.config';
import { withDb, type Say } from './output';
import { uiLink } from './pipelines';

async function listAlerts(options: { all?: boolean; model?: string }, say: Say): Promise<void> {
  await withDb(async (db) => {
    let rows = await db.select().from(alerts).where(options.all ? undefined : inArray(alerts.status, ['open', 'acknowledged'])).orderBy(desc(alerts.openedAt));
    if (options.model) rows = rows.filter((a) => a.modelName === options.model);
    if (!rows.length) return say(options.all ? 'no alerts yet' : 'no open alerts');
    for (const a of rows) {
      say(`#${a.id}  ${a.status.padEnd(12)} ${a.severity.padEnd(8)} ${a.check.padEnd(16)} ${a.modelName}  opened ${a.openedAt.toISOString().slice(0, 19).replace('T', ' ')}`);
      say(`      ${a.message}`);
      if (a.retrainWorkflowId) say(`      retraining: ${a.retrainWorkflowId}`);
    }
  });
}

async function actOnAlert(id: string, action: 'acknowledge' | 'resolve', say: Say): Promise<void> {
  const alertId = Number(id.replace(/^#/, ''));
  if (!Number.isInteger(alertId)) throw new ConfigError(`alert id must be a number such as 12, got "${id}"`);
  const config = loadConfig();
  await withDb(async (db) => {
    const [alert] = await db.select().from(alerts).where(eq(alerts.id, alertId));
    if (!alert) throw new ConfigError(`no alert #${alertId}`);
    const by = `cli:${process.env.USER ?? 'unknown'}`;
    const client = await temporalClient(config.temporal);
    const handle = client.workflow.getHandle(alert.monitorWorkflowId);
    const running = (await handle.describe().catch(() => undefined))?.status.name === 'RUNNING';
    if (running) {
      await handle.signal('alertAction', { alertId, action, by });
    } else {
      // The monitor is gone (its deployment was removed): record it directly.
      await db.update(alerts).set(action === 'resolve' ? { status: 'resolved', resolvedAt: new Date() } : { status: 'acknowledged' }).where(eq(alerts.id, alertId));
    }
    const want = action === 'resolve' ? 'resolved' : 'acknowledged';
    for (let i = 0; i < 50; i++) {
      const [now] = await db.select({ status: alerts.status }).from(alerts).where(eq(alerts.id, alertId));
      if (now?.status === want || now?.status === 'resolved') {
        say(`alert #${alertId} ${now.status}${running ? ` (via monitor ${alert.monitorWorkflowId}: ${uiLink(config, alert.monitorWorkflowId)})` : ''}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`monitor ${alert.monitorWorkflowId} has not recorded the ${action} yet; is a worker running?`);
  });
}

export function registerAlertCommands(program: Command, say: Say): void {
  const command = program.command('alerts').description('monitor alerts: list (open by default), ack, resolve')
    .option('--all', 'resolved ones too')
    .option('--model <name>', 'one model only')
    .action((options: { all?: boolean; model?: string }) => listAlerts(options, say));
  command.command('ack <id>').description('acknowledge: seen; it stays open for deduplication but pages no more')
    .action((id: string) => actOnAlert(id, 'acknowledge', say));
  command.command('resolve <id>').description('resolve: a recurrence opens a new alert')
    .action((id: string) => actOnAlert(id, 'resolve', say));
}
