/** Read side of monitoring for the UI: deployments with their monitors, and a monitor's checks over time. */
import { and, desc, eq } from 'drizzle-orm';
import { deployments } from '../schema/deployments';
import { monitorChecks } from '../schema/monitors';
import type { Executor } from './experiments';

export interface MonitoredDeployment {
  modelName: string;
  alias: string;
  version: number;
  endpoint: string;
  pipelineName: string;
  monitorWorkflowId: string | null;
  updatedAt: Date;
}

export interface MonitorCheck {
  monitorWorkflowId: string;
  windowStart: Date;
  windowEnd: Date;
  /** The monitor's DriftCheckResult as recorded (activities/monitor.ts). */
  report: Record<string, unknown>;
}

export async function listMonitoredDeployments(db: Executor, modelName?: string): Promise<MonitoredDeployment[]> {
  return db
    .select({
      modelName: deployments.modelName,
      alias: deployments.alias,
      version: deployments.version,
      endpoint: deployments.endpoint,
      pipelineName: deployments.pipelineName,
      monitorWorkflowId: deployments.monitorWorkflowId,
      updatedAt: deployments.updatedAt,
    })
    .from(deployments)
    .where(modelName === undefined ? undefined : eq(deployments.modelName, modelName))
    .orderBy(desc(deployments.updatedAt))
    .limit(1000);
}

/** The newest `limit` checks of a model's monitors (one monitor when named), returned oldest first for charts. */
export async function listMonitorChecks(
  db: Executor,
  filter: { modelName: string; monitorWorkflowId?: string; limit?: number },
): Promise<MonitorCheck[]> {
  const rows = await db
    .select({
      monitorWorkflowId: monitorChecks.monitorWorkflowId,
      windowStart: monitorChecks.windowStart,
      windowEnd: monitorChecks.windowEnd,
      report: monitorChecks.report,
    })
    .from(monitorChecks)
    .where(
      and(
        eq(monitorChecks.modelName, filter.modelName),
        filter.monitorWorkflowId === undefined
          ? undefined
          : eq(monitorChecks.monitorWorkflowId, filter.monitorWorkflowId),
      ),
    )
    .orderBy(desc(monitorChecks.windowEnd))
    .limit(filter.limit ?? 500);
  return rows.reverse();
}
