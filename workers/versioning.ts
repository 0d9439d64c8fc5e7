/**
 * Worker versioning with Temporal Worker Deployments: with a build id, workers register as a version of the
 * deployment; a pipeline stays PINNED to the build it started on (a rolling upgrade never replays its history on new
 * code), and the operator promotes a build to current for new work. Without one, workers are unversioned.
 */
import type { Client } from '@temporalio/client';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import type { TemporalSettings } from '../config/env';

export type WorkerDeployment = TemporalSettings['deployment'];

/**
 * The workers' deployment options, or undefined (unversioned) without a build id. Every workflow is PINNED unless it
 * says otherwise: the monitor (workflows/monitor.ts) is AUTO_UPGRADE.
 */
export function deploymentOptions(deployment: WorkerDeployment): WorkerDeploymentOptions | undefined {
  if (!deployment.buildId) return undefined;
  return {
    version: { deploymentName: deployment.name, buildId: deployment.buildId },
    useWorkerVersioning: true,
    defaultVersioningBehavior: 'PINNED',
  };
}

/** One build of the deployment, as the operator sees it: its status, queues and the workers polling them. */
export interface DeploymentVersionSummary {
  buildId: string;
  /** current, ramping, draining, drained or inactive (registered, never current). */
  status: string;
  /** Whether pinned workflows still run on it (DRAINING) or none are left (DRAINED). */
  drainage?: string;
  createdAt?: Date;
  /** Each queue of this build with the identities of the workers polling it and when each last polled. */
  taskQueues: { name: string; type: string; pollers: { identity: string; lastSeen?: Date }[] }[];
}

export interface DeploymentSummary {
  name: string;
  currentBuildId?: string;
  rampingBuildId?: string;
  rampingPercentage?: number;
  versions: DeploymentVersionSummary[];
}

/** Thrown when the deployment or build id is unknown to Temporal (no worker of it has polled yet). */
export class DeploymentNotFoundError extends Error {
  constructor(
    readonly deploymentName: string,
    readonly buildId?: string,
  ) {
    super(
      buildId
        ? `build id "${buildId}" is not a version of worker deployment "${deploymentName}": start a worker with ` +
            `FLYWHEEL_WORKER_BUILD_ID=${buildId} first (it registers when it polls)`
        : `worker deployment "${deploymentName}" not found: no worker with FLYWHEEL_WORKER_BUILD_ID set has polled yet`,
    );
    this.name = 'DeploymentNotFoundError';
  }
}

/** Temporal's enums (temporal.api.enums.v1) by number, as the operator reads them. */
const VERSION_STATUS = ['unspecified', 'inactive', 'current', 'ramping', 'draining', 'drained'] as const;
const DRAINAGE_STATUS = ['unspecified', 'draining', 'drained'] as const;
const TASK_QUEUE_TYPE = ['unspecified', 'workflow', 'activity', 'nexus'] as const;
const typeOrder = (type: string) => (TASK_QUEUE_TYPE as readonly string[]).indexOf(type);
const nameOf = (names: readonly string[], value: number | null | undefined) => names[value ?? 0] ?? String(value);
const timeOf = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): Date | undefined =>
  t?.seconds == null ? undefined : new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
const isNotFound = (error: unknown) => (error as { code?: number }).code === 5;

/** Makes `buildId` the deployment's current version: new workflows (and AUTO_UPGRADE ones) go to its workers. */
export async function promoteBuild(
  client: Client,
  deploymentName: string,
  buildId: string,
  identity = 'flywheel',
): Promise<{ previousBuildId?: string }> {
  try {
    const response = await client.workflowService.setWorkerDeploymentCurrentVersion({
      namespace: client.options.namespace,
      deploymentName,
      buildId,
      identity,
    });
    return { previousBuildId: response.previousDeploymentVersion?.buildId ?? undefined };
  } catch (error) {
    if (isNotFound(error)) throw new DeploymentNotFoundError(deploymentName, buildId);
    // The server names a build id it does not know in a FailedPrecondition / InvalidArgument message.
    if (/not found|does not exist/i.test((error as Error).message))
      throw new DeploymentNotFoundError(deploymentName, buildId);
    throw error;
  }
}

/** The deployment's versions, which one is current, and who polls each version's task queues. */
export async function describeDeployment(client: Client, deploymentName: string): Promise<DeploymentSummary> {
  const namespace = client.options.namespace;
  const service = client.workflowService;
  const described = await service.describeWorkerDeployment({ namespace, deploymentName }).catch((error: unknown) => {
    throw isNotFound(error) ? new DeploymentNotFoundError(deploymentName) : error;
  });
  const info = described.workerDeploymentInfo!;
  const routing = info.routingConfig;
  const versions: DeploymentVersionSummary[] = [];
  for (const summary of info.versionSummaries ?? []) {
    const buildId = summary.deploymentVersion?.buildId ?? '';
    const version = await service.describeWorkerDeploymentVersion({
      namespace,
      deploymentVersion: { deploymentName, buildId },
    });
    const taskQueues: DeploymentVersionSummary['taskQueues'] = [];
    for (const queue of version.workerDeploymentVersionInfo?.taskQueueInfos ?? []) {
      const pollers = await service.describeTaskQueue({
        namespace,
        taskQueue: { name: queue.name },
        taskQueueType: queue.type ?? undefined,
      });
      taskQueues.push({
        name: queue.name ?? '',
        type: nameOf(TASK_QUEUE_TYPE, queue.type),
        pollers: (pollers.pollers ?? [])
          .filter(
            (p) => p.deploymentOptions?.deploymentName === deploymentName && p.deploymentOptions.buildId === buildId,
          )
          .map((p) => ({ identity: p.identity ?? '?', lastSeen: timeOf(p.lastAccessTime) })),
      });
    }
    // The server lists a version's queues in no fixed order: by name, workflow before activity.
    taskQueues.sort((x, y) => x.name.localeCompare(y.name) || typeOrder(x.type) - typeOrder(y.type));
    versions.push({
      buildId,
      status: nameOf(VERSION_STATUS, summary.status),
      drainage: summary.drainageStatus ? nameOf(DRAINAGE_STATUS, summary.drainageStatus) : undefined,
      createdAt: timeOf(summary.createTime),
      taskQueues,
    });
  }
  return {
    name: info.name ?? deploymentName,
    currentBuildId: routing?.currentDeploymentVersion?.buildId ?? undefined,
    rampingBuildId: routing?.rampingDeploymentVersion?.buildId ?? undefined,
    rampingPercentage: routing?.rampingVersionPercentage ?? undefined,
    versions,
  };
}

/** How a worker names its version in its start-up line: empty when unversioned. */
export function buildLabel(deployment: WorkerDeployment): string {
  return deployment.buildId ? ` (deployment ${deployment.name}, build ${deployment.buildId})` : '';
}
