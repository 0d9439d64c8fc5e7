/**
 * Queue waits across pipelines on the real stack: two runs of one small pipeline, then `flywheel status --queues`
 * (through the server's `GET /api/v1/queue-waits`) lists each of their stages on the suite's task queues with both
 * runs counted; the redeploy's summary says how many serving replicas confirmed it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { QueueWaitReport } from '../../cli/timings';
import { startCliServer, type CliServer } from './cliServer';
import { cli, demandPipeline, eventually, startHarness, type Harness } from './harness';

let harness: Harness;
let server: CliServer;

beforeAll(async () => {
  harness = await startHarness();
  server = await startCliServer(harness);
}, 120_000);

afterAll(async () => {
  await server?.close();
  await harness?.stop();
});

it('lists queue wait p50/p95/max and run time p95 per stage over the last pipelines, in JSON and as a table', async () => {
  const config = await demandPipeline(harness.workDir, { data: { stores: 2, items: 3, days: 40 } });
  const first = await harness.runPipeline(config);
  expect((await first.result).deployment?.serving).toBe('confirmed');
  // An admin's grant: the second run replaces the version the first deployed.
  const second = await harness.runPipeline(config, undefined, { release: true });
  const redeployed = await second.result;
  const deploy = redeployed.stages.find((s) => s.name === 'deploy');
  expect(deploy?.summary).toMatch(
    new RegExp(`^${config.model}@champion → v2 \\(was v1\\); confirmed by (\\d+) of \\1 serving replicas?$`),
  );

  const env = server.env(server.tokens.read);
  const args = ['status', '--queues', '--pipeline', config.name, '--last', '10'];
  // Visibility lists a closed pipeline a moment after it closes.
  const report = await eventually(
    async () => {
      const answer = await cli(harness, [...args, '--json'], env);
      expect(answer.stderr).toBe('');
      const parsed = JSON.parse(answer.stdout) as QueueWaitReport;
      return parsed.pipelines === 2 && parsed;
    },
    60_000,
    'both pipelines listed',
  );
  const stage = (name: string, taskQueue: string) =>
    report.stages.find((s) => s.stage === name && s.taskQueue === taskQueue);
  for (const [name, taskQueue] of [
    ['ingestDataset', harness.queues.main],
    ['validateDataset', harness.queues.main],
    ['trainModel', harness.queues.trainCpu],
    ['evaluateModel', harness.queues.main],
    ['deployModelVersion', harness.queues.main],
  ] as const) {
    const row = stage(name, taskQueue);
    expect(row, `${name} on ${taskQueue} in ${JSON.stringify(report.stages)}`).toBeDefined();
    expect(row!.count).toBeGreaterThanOrEqual(2);
    expect(row!.queueWaitP50Ms).not.toBeNull();
    expect(row!.queueWaitP95Ms!).toBeGreaterThanOrEqual(row!.queueWaitP50Ms!);
    expect(row!.queueWaitMaxMs!).toBeGreaterThanOrEqual(row!.queueWaitP95Ms!);
    expect(row!.runTimeP95Ms).toBeGreaterThan(0);
  }
  expect(report.stages.every((s) => s.queueWaitP95Ms === null || s.queueWaitP95Ms >= s.queueWaitP50Ms!)).toBe(true);

  const table = await cli(harness, args, env);
  expect(table.code).toBe(0);
  expect(table.stdout).toContain('queue wait (schedule → start) and run time per stage over 2 pipelines');
  const duration = String.raw`(\d+ms|\d+\.\d+s)`;
  expect(table.stdout).toMatch(
    new RegExp(
      `ingestDataset\\s+${harness.queues.main}\\s+2\\s+${duration}\\s+${duration}\\s+${duration}\\s+${duration}`,
    ),
  );
  expect(table.stdout).toMatch(new RegExp(`trainModel\\s+${harness.queues.trainCpu}\\s+2\\s`));

  // The count is bounded, and named in the refusal.
  const tooMany = await cli(harness, ['status', '--queues', '--last', '501'], env);
  expect(tooMany.code).toBe(1);
  expect(tooMany.stderr).toContain('--last must be a whole number from 1 to 500');
  const refused = await fetch(`${server.url}/api/v1/queue-waits?pipelines=501`, {
    headers: { authorization: `Bearer ${server.tokens.read}` },
  });
  expect(refused.status).toBe(400);
}, 300_000);
