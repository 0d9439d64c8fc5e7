/**
 * `flywheel schedule …`: continuous training on a calendar — Temporal Schedules that start the pipeline, all through
 * the API; `create` reads the pipeline config file here and sends it.
 */
import type { Command } from 'commander';
import type { ScheduleOverlapPolicy } from '@temporalio/client';
import { ConfigError, loadPipelineConfig } from '../config/pipeline';
import { loadConfig } from '../config/env';
import { OVERLAP_POLICIES } from '../server/api/schedules';
import { api } from './api';
import { withUploadedSource } from './upload';
import type { Say } from './output';

/** `GET /api/v1/schedules/{id}` (times as ISO strings). */
interface ScheduleJson {
  scheduleId: string;
  cron: string | null;
  paused: boolean;
  note: string | null;
  overlap: string;
  catchupWindowMs: number;
  nextActionTimes: string[];
  numActionsTaken: number;
  numActionsSkippedOverlap: number;
  recentActions: { takenAt: string; workflowId: string }[];
}

const at = (scheduleId: string, action?: string) =>
  `/api/v1/schedules/${encodeURIComponent(scheduleId)}${action ? `/${action}` : ''}`;

function overlapOf(name: string): ScheduleOverlapPolicy {
  const policy = (OVERLAP_POLICIES as Record<string, ScheduleOverlapPolicy>)[name];
  if (policy === undefined)
    throw new ConfigError(`--overlap must be one of ${Object.keys(OVERLAP_POLICIES).join(', ')}, got "${name}"`);
  return policy;
}

function dateOf(text: string, flag: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime()))
    throw new ConfigError(`${flag}: "${text}" is not a date (use ISO 8601, e.g. 2026-11-01T00:00:00Z)`);
  return date;
}

export function registerScheduleCommands(program: Command, say: Say): void {
  const schedule = program
    .command('schedule')
    .description(
      'retrain on a calendar (Temporal Schedules): create, list, describe, pause, resume, trigger, backfill, delete',
    );

  schedule
    .command('create <config>')
    .requiredOption('--cron <expression>', 'cron expression, e.g. "0 3 * * *"')
    .option('--id <scheduleId>', 'schedule id (default: the pipeline name)')
    .option('--overlap <policy>', `when a run is still going: ${Object.keys(OVERLAP_POLICIES).join(' | ')}`, 'skip')
    .option('--catchup <duration>', 'runs missed while the server was down within this window still happen', '1h')
    .option('--paused', 'create it paused')
    .action(
      async (
        file: string,
        options: { cron: string; id?: string; overlap: string; catchup: string; paused?: boolean },
      ) => {
        overlapOf(options.overlap);
        // Every scheduled run reads the copy uploaded now: re-create the schedule to train on a newer local file.
        const pipeline = await withUploadedSource(loadPipelineConfig(file), (line) => console.error(line));
        const { scheduleId } = await api<ScheduleJson>('POST', '/api/v1/schedules', {
          config: pipeline,
          cron: options.cron,
          scheduleId: options.id,
          overlap: options.overlap,
          catchup: options.catchup,
          paused: options.paused ?? false,
        });
        say(
          `schedule ${scheduleId} created: ${options.cron} (overlap ${options.overlap}, catch-up ${options.catchup})${options.paused ? ', paused' : ''}`,
        );
      },
    );

  schedule.command('list').action(async () => {
    const { schedules } = await api<{ schedules: ScheduleJson[] }>('GET', '/api/v1/schedules');
    for (const s of schedules)
      say(
        `${s.scheduleId}  cron ${s.cron ?? '?'}  next ${s.nextActionTimes[0] ?? '-'}${s.paused ? `  (paused: ${s.note ?? ''})` : ''}`,
      );
  });

  schedule.command('describe <scheduleId>').action(async (scheduleId: string) => {
    const d = await api<ScheduleJson>('GET', at(scheduleId));
    say(`${scheduleId}: cron ${d.cron ?? '?'}, ${d.paused ? `paused (${d.note ?? ''})` : 'active'}`);
    say(`  overlap ${d.overlap}, catch-up ${Math.round(d.catchupWindowMs / 1000)} s`);
    say(`  next ${d.nextActionTimes.slice(0, 3).join(', ') || '-'}`);
    say(`  runs so far ${d.numActionsTaken}, skipped for overlap ${d.numActionsSkippedOverlap}`);
    for (const action of d.recentActions.slice(-5)) say(`  ${action.takenAt} started ${action.workflowId}`);
  });

  schedule
    .command('pause <scheduleId>')
    .option('--note <text>', 'why')
    .action(async (scheduleId: string, options: { note?: string }) => {
      await api('POST', at(scheduleId, 'pause'), {
        note: options.note ?? `paused from the CLI by ${loadConfig().user}`,
      });
      say(`schedule ${scheduleId} paused`);
    });

  schedule.command('resume <scheduleId>').action(async (scheduleId: string) => {
    await api('POST', at(scheduleId, 'resume'), { note: `resumed from the CLI by ${loadConfig().user}` });
    say(`schedule ${scheduleId} resumed`);
  });

  schedule
    .command('trigger <scheduleId>')
    .description('start a run now')
    .action(async (scheduleId: string) => {
      await api('POST', at(scheduleId, 'trigger'));
      say(`schedule ${scheduleId}: a run was started`);
    });

  schedule
    .command('backfill <scheduleId>')
    .description(
      'run the actions the calendar had between two times (e.g. after an outage longer than the catch-up window)',
    )
    .requiredOption('--from <time>', 'ISO 8601 start')
    .requiredOption('--to <time>', 'ISO 8601 end')
    .option('--overlap <policy>', 'for the backfilled runs', 'buffer-all')
    .action(async (scheduleId: string, options: { from: string; to: string; overlap: string }) => {
      const start = dateOf(options.from, '--from'),
        end = dateOf(options.to, '--to');
      if (end <= start) throw new ConfigError('--to must be after --from');
      overlapOf(options.overlap);
      await api('POST', at(scheduleId, 'backfill'), {
        from: start.toISOString(),
        to: end.toISOString(),
        overlap: options.overlap,
      });
      say(`schedule ${scheduleId}: backfilling ${start.toISOString()} → ${end.toISOString()}`);
    });

  schedule.command('delete <scheduleId>').action(async (scheduleId: string) => {
    await api('DELETE', at(scheduleId));
    say(`schedule ${scheduleId} deleted`);
  });
}
