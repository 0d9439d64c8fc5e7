/** `flywheel schedule …`: continuous training on a calendar — Temporal Schedules that start the pipeline. */
import type { Command } from 'commander';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { ConfigError, loadPipelineConfig } from '../config/pipeline';
import { temporalClient } from '../storage/temporal';
import { loadConfig } from '../temporal.config';
import { MODEL_KEY, PIPELINE_KEY } from '../workflows/searchAttributes';
import type { Say } from './output';
import { pipelineInput } from './pipelines';

const OVERLAP: Record<string, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP, 'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE, 'buffer-all': ScheduleOverlapPolicy.BUFFER_ALL,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER, 'terminate-other': ScheduleOverlapPolicy.TERMINATE_OTHER, 'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
};

function overlapOf(name: string): ScheduleOverlapPolicy {
  const policy = OVERLAP[name];
  if (policy === undefined) throw new ConfigError(`--overlap must be one of ${Object.keys(OVERLAP).join(', ')}, got "${name}"`);
  return policy;
}

function dateOf(text: string, flag: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new ConfigError(`${flag}: "${text}" is not a date (use ISO 8601, e.g. 2026-11-01T00:00:00Z)`);
  return date;
}

export function registerScheduleCommands(program: Command, say: Say): void {
  const schedule = program.command('schedule').description('retrain on a calendar (Temporal Schedules): create, list, describe, pause, resume, trigger, backfill, delete');
  const client = async () => temporalClient(loadConfig().temporal);

  schedule.command('create <config>')
    .requiredOption('--cron <expression>', 'cron expression, e.g. "0 3 * * *"')
    .option('--id <scheduleId>', 'schedule id (default: the pipeline name)')
    .option('--overlap <policy>', `when a run is still going: ${Object.keys(OVERLAP).join(' | ')}`, 'skip')
    .option('--catchup <duration>', 'runs missed while the server was down within this window still happen', '1h')
    .option('--paused', 'create it paused')
    .action(async (file: string, options: { cron: string; id?: string; overlap: string; catchup: string; paused?: boolean }) => {
      const pipeline = loadPipelineConfig(file);
      const config = loadConfig();
      const scheduleId = options.id ?? pipeline.name;
      await (await client()).schedule.create({
        scheduleId,
        spec: { cronExpressions: [options.cron] },
        action: {
          type: 'startWorkflow', workflowType: 'pipelineWorkflow', taskQueue: config.taskQueues.main,
          args: [pipelineInput(pipeline, config, { kind: 'schedule' })],
          typedSearchAttributes: [{ key: MODEL_KEY, value: pipeline.model }, { key: PIPELINE_KEY, value: pipeline.name }],
        },
        policies: { overlap: overlapOf(options.overlap), catchupWindow: options.catchup },
        // Temporal turns cron text into calendars; the memo keeps it readable in `list`.
        memo: { cron: options.cron },
        state: { paused: options.paused ?? false, note: options.paused ? 'created paused' : undefined },
      });
      say(`schedule ${scheduleId} created: ${options.cron} (overlap ${options.overlap}, catch-up ${options.catchup})${options.paused ? ', paused' : ''}`);
    });

  schedule.command('list').action(async () => {
    for await (const entry of (await client()).schedule.list()) {
      const description = await (await client()).schedule.getHandle(entry.scheduleId).describe();
      say(`${entry.scheduleId}  cron ${String(description.memo?.cron ?? '?')}  next ${entry.info.nextActionTimes?.[0]?.toISOString() ?? '-'}${entry.state.paused ? `  (paused: ${description.state.note ?? ''})` : ''}`);
    }
  });

  schedule.command('describe <scheduleId>').action(async (scheduleId: string) => {
    const d = await (await client()).schedule.getHandle(scheduleId).describe();
    say(`${scheduleId}: cron ${String(d.memo?.cron ?? '?')}, ${d.state.paused ? `paused (${d.state.note ?? ''})` : 'active'}`);
    say(`  overlap ${String(d.policies.overlap)}, catch-up ${Math.round(Number(d.policies.catchupWindow) / 1000)} s`);
    say(`  next ${d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()).join(', ') || '-'}`);
    say(`  runs so far ${d.info.numActionsTaken}, skipped for overlap ${d.info.numActionsSkippedOverlap}`);
    for (const action of d.info.recentActions.slice(-5)) say(`  ${action.takenAt.toISOString()} started ${action.action.workflow.workflowId}`);
  });

  schedule.command('pause <scheduleId>').option('--note <text>', 'why').action(async (scheduleId: string, options: { note?: string }) => {
    await (await client()).schedule.getHandle(scheduleId).pause(options.note ?? `paused from the CLI by ${process.env.USER ?? 'unknown'}`);
    say(`schedule ${scheduleId} paused`);
  });

  schedule.command('resume <scheduleId>').action(async (scheduleId: string) => {
    await (await client()).schedule.getHandle(scheduleId).unpause(`resumed from the CLI by ${process.env.USER ?? 'unknown'}`);
    say(`schedule ${scheduleId} resumed`);
  });

  schedule.command('trigger <scheduleId>').description('start a run now').action(async (scheduleId: string) => {
    await (await client()).schedule.getHandle(scheduleId).trigger();
    say(`schedule ${scheduleId}: a run was started`);
  });

  schedule.command('backfill <scheduleId>')
    .description('run the actions the calendar had between two times (e.g. after an outage longer than the catch-up window)')
    .requiredOption('--from <time>', 'ISO 8601 start')
    .requiredOption('--to <time>', 'ISO 8601 end')
    .option('--overlap <policy>', 'for the backfilled runs', 'buffer-all')
    .action(async (scheduleId: string, options: { from: string; to: string; overlap: string }) => {
      const start = dateOf(options.from, '--from'), end = dateOf(options.to, '--to');
      if (end <= start) throw new ConfigError('--to must be after --from');
      await (await client()).schedule.getHandle(scheduleId).backfill([{ start, end, overlap: overlapOf(options.overlap) }]);
      say(`schedule ${scheduleId}: backfilling ${start.toISOString()} → ${end.toISOString()}`);
    });

  schedule.command('delete <scheduleId>').action(async (scheduleId: string) => {
    await (await client()).schedule.getHandle(scheduleId).delete();
    say(`schedule ${scheduleId} deleted`);
  });
}
