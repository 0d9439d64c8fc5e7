/**
 * `flywheel workers`: the worker builds (Temporal Worker Deployment versions) — list them with their pollers, promote
 * one to current. An operator's action on Temporal itself: it connects to Temporal directly, not the Flywheel server.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/env';
import { temporalClient } from '../storage/temporal';
import { describeDeployment, promoteBuild, type DeploymentSummary } from '../workers/versioning';
import { table, when, type Say } from './output';

const CONNECTS =
  'Talks to Temporal directly (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS / API key as configured), not to the ' +
  'Flywheel server.';

async function withTemporal<T>(work: (client: Awaited<ReturnType<typeof temporalClient>>) => Promise<T>): Promise<T> {
  const client = await temporalClient(loadConfig().temporal);
  try {
    return await work(client);
  } finally {
    await client.connection.close();
  }
}

/** Temporal keeps a poller listed for minutes after it stopped: how long ago it last polled tells them apart. */
const seen = (at: Date | undefined) =>
  at ? ` (${Math.max(0, Math.round((Date.now() - at.getTime()) / 1000))}s ago)` : '';

/** Until a build is promoted, new workflows go to unversioned workers. */
const NO_CURRENT = '(none: new work goes to unversioned workers)';

export function printDeployment(deployment: DeploymentSummary, say: Say): void {
  const ramping = deployment.rampingBuildId
    ? `; ramping ${deployment.rampingBuildId} at ${deployment.rampingPercentage ?? 0}%`
    : '';
  say(`deployment ${deployment.name}: current build ${deployment.currentBuildId ?? NO_CURRENT}${ramping}`);
  const rows = [['build', 'status', 'drainage', 'created', 'task queue', 'pollers']];
  for (const version of deployment.versions) {
    const queues = version.taskQueues.length ? version.taskQueues : [{ name: '-', type: '', pollers: [] as never[] }];
    queues.forEach((queue, i) =>
      rows.push([
        i === 0 ? version.buildId : '',
        i === 0 ? version.status : '',
        i === 0 ? (version.drainage ?? '-') : '',
        i === 0 ? when(version.createdAt ?? null) : '',
        queue.type ? `${queue.name} (${queue.type})` : queue.name,
        queue.pollers.length ? queue.pollers.map((p) => `${p.identity}${seen(p.lastSeen)}`).join(', ') : 'none',
      ]),
    );
  }
  table(rows, say);
}

export function registerWorkerCommands(program: Command, say: Say): void {
  const defaultDeployment = () => loadConfig().temporal.deployment.name;
  const command = program
    .command('workers')
    .description(`worker builds (FLYWHEEL_WORKER_BUILD_ID): list them, promote one to current. ${CONNECTS}`);
  command
    .command('list')
    .description("the deployment's builds, which one is current, and the workers polling each")
    .option('--deployment <name>', 'worker deployment (default FLYWHEEL_WORKER_DEPLOYMENT or flywheel)')
    .action((options: { deployment?: string }) =>
      withTemporal(async (client) =>
        printDeployment(await describeDeployment(client, options.deployment ?? defaultDeployment()), say),
      ),
    );
  command
    .command('promote <buildId>')
    .description(
      'make a build current: new pipelines (and monitors, at their next check) run on its workers; pipelines already ' +
        'running stay on the build they started on',
    )
    .option('--deployment <name>', 'worker deployment (default FLYWHEEL_WORKER_DEPLOYMENT or flywheel)')
    .action((buildId: string, options: { deployment?: string }) =>
      withTemporal(async (client) => {
        const deploymentName = options.deployment ?? defaultDeployment();
        const { previousBuildId } = await promoteBuild(client, deploymentName, buildId, `cli:${loadConfig().user}`);
        say(
          `deployment ${deploymentName}: build ${buildId} is current` +
            (previousBuildId ? ` (was ${previousBuildId}; its pinned pipelines finish there)` : ''),
        );
      }),
    );
}
