/**
 * The monitors store: stored pipeline configs (what a monitor retrains), each check's report, and the writes of the
 * monitors' deduplicated alerts (one open alert per monitor and check). Listing alerts is store/alerts.ts.
 */
import { and, desc, eq, inArray, isNotNull } from 'drizzle-orm';
import { alerts, monitorChecks, pipelines } from '../schema/monitors';
import type { Db } from '../storage/db';
import type { Executor } from './experiments';

export type StoredPipeline = typeof pipelines.$inferSelect;

export async function recordPipeline(db: Executor, name: string, config: Record<string, unknown>): Promise<void> {
  await db
    .insert(pipelines)
    .values({ name, config })
    .onConflictDoUpdate({ target: pipelines.name, set: { config, updatedAt: new Date() } });
}

export async function findPipeline(db: Executor, name: string): Promise<StoredPipeline | undefined> {
  const [row] = await db.select().from(pipelines).where(eq(pipelines.name, name));
  return row;
}

/** One report per monitor and window end: a retried check writes nothing twice. */
export async function recordMonitorCheck(
  db: Executor,
  input: {
    monitorWorkflowId: string;
    modelName: string;
    windowStart: Date;
    windowEnd: Date;
    report: Record<string, unknown>;
  },
): Promise<void> {
  await db
    .insert(monitorChecks)
    .values({ id: `${input.monitorWorkflowId}:${input.windowEnd.getTime()}`, ...input })
    .onConflictDoNothing();
}

export interface AlertInput {
  monitorWorkflowId: string;
  modelName: string;
  check: string;
  message: string;
  details: Record<string, unknown>;
  severity: 'warning' | 'critical';
}

/** Opens the monitor's alert for this check, or refreshes the open (or acknowledged) one; says which. */
export async function raiseAlert(db: Db, input: AlertInput): Promise<{ alertId: number; isNew: boolean }> {
  return db.transaction(async (tx) => {
    const [inserted] = await tx
      .insert(alerts)
      .values({ ...input, status: 'open' })
      .onConflictDoNothing()
      .returning({ id: alerts.id });
    if (inserted) return { alertId: inserted.id, isNew: true };
    const [open] = await tx
      .update(alerts)
      .set({ message: input.message, details: input.details })
      .where(
        and(
          eq(alerts.monitorWorkflowId, input.monitorWorkflowId),
          eq(alerts.check, input.check),
          inArray(alerts.status, ['open', 'acknowledged']),
        ),
      )
      .returning({ id: alerts.id });
    if (!open)
      throw new Error(`alert ${input.check} of ${input.monitorWorkflowId} was neither opened nor found open; retry`);
    return { alertId: open.id, isNew: false };
  });
}

export class AlertOwnerError extends Error {
  constructor(
    readonly alertId: number,
    readonly monitorWorkflowId: string,
  ) {
    super(`alert ${alertId} does not belong to ${monitorWorkflowId}`);
    this.name = 'AlertOwnerError';
  }
}

/** Acknowledges (still deduplicates, no more pages) or resolves (a recurrence opens a new alert) a monitor's alert. */
export async function recordAlertAction(
  db: Db,
  input: { monitorWorkflowId: string; alertId: number; action: 'acknowledge' | 'resolve'; by: string },
): Promise<void> {
  await db.transaction(async (tx) => {
    const [alert] = await tx.select().from(alerts).where(eq(alerts.id, input.alertId)).for('update');
    if (!alert || alert.monitorWorkflowId !== input.monitorWorkflowId)
      throw new AlertOwnerError(input.alertId, input.monitorWorkflowId);
    if (alert.status === 'resolved') return;
    const details = { ...alert.details, [input.action === 'resolve' ? 'resolvedBy' : 'acknowledgedBy']: input.by };
    await tx
      .update(alerts)
      .set(
        input.action === 'resolve'
          ? { status: 'resolved', resolvedAt: new Date(), details }
          : { status: 'acknowledged', details },
      )
      .where(eq(alerts.id, input.alertId));
  });
}

/** The retraining workflows recent alerts of a model started, newest first. */
export async function recentRetrainings(db: Executor, modelName: string, limit = 5): Promise<string[]> {
  const rows = await db
    .select({ id: alerts.retrainWorkflowId })
    .from(alerts)
    .where(and(eq(alerts.modelName, modelName), isNotNull(alerts.retrainWorkflowId)))
    .orderBy(desc(alerts.id))
    .limit(limit);
  return rows.map((r) => r.id!);
}

export async function linkRetraining(db: Executor, alertId: number, retrainWorkflowId: string): Promise<void> {
  await db.update(alerts).set({ retrainWorkflowId }).where(eq(alerts.id, alertId));
}
