/** The alerts store: monitors' alerts, listed and moved through open → acknowledged → resolved. */
import { and, desc, eq, inArray, type SQL } from 'drizzle-orm';
import { notFound } from '../config/errors';
import { alerts } from '../schema/monitors';
import type { Db } from '../storage/db';

export type Alert = typeof alerts.$inferSelect;
export type AlertStatus = Alert['status'];

export async function listAlerts(
  db: Db,
  filter: { all?: boolean; model?: string; limit?: number } = {},
): Promise<Alert[]> {
  const where: SQL[] = [];
  if (!filter.all) where.push(inArray(alerts.status, ['open', 'acknowledged']));
  if (filter.model) where.push(eq(alerts.modelName, filter.model));
  return db
    .select()
    .from(alerts)
    .where(and(...where))
    .orderBy(desc(alerts.openedAt))
    .limit(filter.limit ?? 500);
}

export async function getAlert(db: Db, id: number): Promise<Alert> {
  const [row] = await db.select().from(alerts).where(eq(alerts.id, id));
  if (!row) throw notFound(`alert #${id}`);
  return row;
}

/**
 * Records an action directly, for alerts whose monitor has ended (a running monitor records it itself, from a signal).
 */
export async function setAlertStatus(db: Db, id: number, action: 'acknowledge' | 'resolve'): Promise<void> {
  await db
    .update(alerts)
    .set(action === 'resolve' ? { status: 'resolved', resolvedAt: new Date() } : { status: 'acknowledged' })
    .where(and(eq(alerts.id, id), inArray(alerts.status, action === 'resolve' ? ['open', 'acknowledged'] : ['open'])));
}
