/**
 * The monitor's drift check (checkPredictionDrift) back to back in a process of its own, for bench:serve's phase beside
 * a pipeline: started where a worker would run it, at the workers' niceness (`nice -n`), its Postgres sessions at the
 * same (storage/db.ts), so the check loads the machine as it does in production and not at the bench's priority.
 *
 * `node --import tsx bench/monitorChecks.ts '<json: monitorWorkflowId, modelName, alias, settings>'`: one JSON line
 * per check on stdout (`seconds`, `verdict`, `rows`) until SIGTERM, then it finishes the check under way and exits.
 */
import { getPriority } from 'node:os';
import { createMonitorActivities, type MonitorSettings } from '../activities/monitor';
import { loadConfig } from '../config/env';
import { closeDb, connectDb } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { temporalClient } from '../storage/temporal';

const input = JSON.parse(process.argv[2] ?? '{}') as {
  monitorWorkflowId: string;
  modelName: string;
  alias: string;
  settings: MonitorSettings;
};
const config = loadConfig();
const db = connectDb(config.databaseUrl, 2, { sessionNice: getPriority() });
const temporal = await temporalClient(config.temporal);
const monitor = createMonitorActivities({
  db,
  store: new S3ObjectStore(config.s3),
  temporal,
  workflowTaskQueue: config.taskQueues.main,
});
let stop = false;
process.on('SIGTERM', () => (stop = true));
while (!stop) {
  const started = performance.now();
  const result = await monitor
    .checkPredictionDrift({ ...input, windowStart: Date.now() - 3_600_000, windowEnd: Date.now() })
    .catch((error: Error) => ({ verdict: `error: ${error.message.slice(0, 120)}`, rows: 0 }));
  const seconds = Math.round((performance.now() - started) / 10) / 100;
  console.log(JSON.stringify({ seconds, verdict: result.verdict, rows: result.rows }));
  await new Promise((resolve) => setTimeout(resolve, 500));
}
await temporal.connection.close().catch(() => undefined);
await closeDb(db);
