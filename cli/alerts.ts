/** `flywheel alerts`: open alerts of the monitors; acknowledge or resolve one (a signal to its monitor). */
import type { Command } from 'commander';
import { ConfigError } from '../config/pipeline';
import { loadConfig } from '../config/env';
import { api } from './api';
import type { Say } from './output';
import { uiLink } from './pipelines';

interface AlertJson {
  id: number;
  status: string;
  severity: string;
  check: string;
  modelName: string;
  openedAt: string;
  message: string;
  retrainWorkflowId: string | null;
  monitorWorkflowId: string;
}

async function listAlerts(options: { all?: boolean; model?: string }, say: Say): Promise<void> {
  const { alerts } = await api<{ alerts: AlertJson[] }>('GET', '/api/v1/alerts', undefined, {
    all: options.all ? 'true' : undefined,
    model: options.model,
  });
  if (!alerts.length) return say(options.all ? 'no alerts yet' : 'no open alerts');
  for (const a of alerts) {
    say(
      `#${a.id}  ${a.status.padEnd(12)} ${a.severity.padEnd(8)} ${a.check.padEnd(16)} ${a.modelName}  opened ${a.openedAt.slice(0, 19).replace('T', ' ')}`,
    );
    say(`      ${a.message}`);
    if (a.retrainWorkflowId) say(`      retraining: ${a.retrainWorkflowId}`);
  }
}

async function actOnAlert(id: string, action: 'acknowledge' | 'resolve', say: Say): Promise<void> {
  const alertId = Number(id.replace(/^#/, ''));
  if (!Number.isInteger(alertId) || alertId <= 0)
    throw new ConfigError(`alert id must be a number such as 12, got "${id}"`);
  const { alert } = await api<{ alert: AlertJson }>('POST', `/api/v1/alerts/${alertId}/${action}`);
  say(
    `alert #${alertId} ${alert.status} (via monitor ${alert.monitorWorkflowId}: ${uiLink(loadConfig(), alert.monitorWorkflowId)})`,
  );
}

export function registerAlertCommands(program: Command, say: Say): void {
  const command = program
    .command('alerts')
    .description('monitor alerts: list (open by default), ack, resolve')
    .option('--all', 'resolved ones too')
    .option('--model <name>', 'one model only')
    .action((options: { all?: boolean; model?: string }) => listAlerts(options, say));
  command
    .command('ack <id>')
    .description('acknowledge: seen; it stays open for deduplication but pages no more')
    .action((id: string) => actOnAlert(id, 'acknowledge', say));
  command
    .command('resolve <id>')
    .description('resolve: a recurrence opens a new alert')
    .action((id: string) => actOnAlert(id, 'resolve', say));
}
