/**
 * The one structured logger (pino): JSON lines with level, time and msg (plus workflowId / runId / activityType where
 * known), or one human line per record with FLYWHEEL_LOG_FORMAT=pretty. The CLI's own output is not logging.
 */
import { pino, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';
import { observabilitySettings, type ObservabilitySettings } from '../config/env';

export type { Logger } from 'pino';

/** Fields every record has, left out of the pretty line's `key=value` tail. */
const FRAME = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'component', 'err']);

/** One record as a line for a terminal: `12:03:04.512 INFO  [serving] msg key=value …`, then an error's stack. */
export function formatPretty(record: Record<string, unknown>): string {
  const time = typeof record.time === 'string' ? record.time.slice(11, 23) : '';
  const level = String(record.level ?? '').toUpperCase();
  const component = record.component ? `[${String(record.component)}] ` : '';
  const fields = Object.entries(record)
    .filter(([key, value]) => !FRAME.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const err = record.err as { stack?: string; message?: string } | undefined;
  const tail = err ? `\n  ${(err.stack ?? err.message ?? '').split('\n').join('\n  ')}` : '';
  return `${time} ${level.padEnd(5)} ${component}${String(record.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}${tail}`;
}

/** Pretty output: each JSON line pino writes becomes one formatted line on `out`. */
function prettyStream(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(line: string) {
      out.write(`${formatPretty(JSON.parse(line) as Record<string, unknown>)}\n`);
    },
  };
}

/** A logger for `settings`; `destination` defaults to stdout (tests pass their own). */
export function createLogger(
  settings: Pick<ObservabilitySettings, 'logLevel' | 'logFormat'>,
  destination?: DestinationStream,
): Logger {
  const options = {
    level: settings.logLevel,
    // Names, not pino's numbers: a reader of the file and a log shipper both see "info".
    formatters: { level: (label: string) => ({ level: label }) },
    timestamp: stdTimeFunctions.isoTime,
  };
  if (destination) return pino(options, destination);
  return settings.logFormat === 'pretty' ? pino(options, prettyStream(process.stdout)) : pino(options);
}

/** The process's logger, configured from the environment once. */
export const logger: Logger = createLogger(observabilitySettings());

/** A child logger naming the part of the process that logs (`server`, `serving`, `worker`, `retention` …). */
export const componentLogger = (component: string, bindings: Record<string, unknown> = {}): Logger =>
  logger.child({ component, ...bindings });
