/**
 * The serving-replicas store: every serving process reports what it answers with (and beats while it runs), so a
 * deploy or a rollout can wait for every live replica behind a load balancer instead of the one URL it was given.
 */
import { eq, sql } from 'drizzle-orm';
import { servingReplicas } from '../schema/servingReplicas';
import type { Executor } from './experiments';

/** A replica unseen for this many of its own beat intervals counts as gone (crashed, cut off, paused). */
export const REPLICA_MISSED_BEATS = 3;

/** Rows unseen this long are deleted by any replica's beat: a process that crashed cannot delete its own. */
const PRUNE_AFTER = sql`interval '10 minutes'`;

export type ReplicaReport = Omit<typeof servingReplicas.$inferInsert, 'startedAt' | 'lastSeenAt'>;

export type ServingReplica = typeof servingReplicas.$inferSelect & {
  /** Milliseconds since its last report, by the database's clock (replicas on other machines share no clock). */
  ageMs: number;
};

/** Records a replica's state and stamps it seen now; its first report registers it. */
export async function reportServingReplica(db: Executor, report: ReplicaReport): Promise<void> {
  const { id: _id, ...state } = report;
  await db
    .insert(servingReplicas)
    .values(report)
    .onConflictDoUpdate({ target: servingReplicas.id, set: { ...state, lastSeenAt: sql`now()` } });
}

/** A replica that stops removes itself at once rather than waiting to be counted gone. */
export async function removeServingReplica(db: Executor, id: string): Promise<void> {
  await db.delete(servingReplicas).where(eq(servingReplicas.id, id));
}

/** Deletes rows of replicas long gone. */
export async function pruneServingReplicas(db: Executor): Promise<void> {
  await db.delete(servingReplicas).where(sql`${servingReplicas.lastSeenAt} < now() - ${PRUNE_AFTER}`);
}

/** Registered replicas (of one alias, or all), live or not, with the age of their last report. */
export async function listServingReplicas(db: Executor, alias?: string): Promise<ServingReplica[]> {
  const rows = await db
    .select({
      replica: servingReplicas,
      ageMs: sql<number>`(extract(epoch from (now() - ${servingReplicas.lastSeenAt})) * 1000)::float8`,
    })
    .from(servingReplicas)
    .where(alias === undefined ? undefined : eq(servingReplicas.alias, alias))
    .orderBy(servingReplicas.startedAt);
  return rows.map((r) => ({ ...r.replica, ageMs: Number(r.ageMs) }));
}

/** Live: it reported within `REPLICA_MISSED_BEATS` of its own beat intervals. */
export function isLiveReplica(replica: { ageMs: number; beatMs: number }): boolean {
  return replica.ageMs <= REPLICA_MISSED_BEATS * replica.beatMs;
}

export interface ReplicaConvergence {
  /** Live replicas the wait concerns. */
  live: number;
  ready: ServingReplica[];
  lagging: ServingReplica[];
  /** Lagging replicas that reported they cannot load it: waiting longer will not help. */
  refused: ServingReplica[];
}

/**
 * Where the live replicas stand on one change: `concerns` picks the replicas it applies to, `ready` says which have
 * it loaded, `refused` which reported a failure to load it. Replicas that are not live are left out.
 */
export function convergence(
  replicas: ServingReplica[],
  test: {
    ready: (replica: ServingReplica) => boolean;
    refused?: (replica: ServingReplica) => boolean;
    concerns?: (replica: ServingReplica) => boolean;
  },
): ReplicaConvergence {
  const live = replicas.filter((r) => isLiveReplica(r) && (test.concerns?.(r) ?? true));
  const lagging = live.filter((r) => !test.ready(r));
  return {
    live: live.length,
    ready: live.filter((r) => test.ready(r)),
    lagging,
    refused: lagging.filter((r) => test.refused?.(r) ?? false),
  };
}

/** How a replica is named in results and messages: its URL, else host and process id. */
export const replicaLabel = (replica: Pick<ServingReplica, 'url' | 'host' | 'pid'>) =>
  replica.url ?? `${replica.host}:${replica.pid}`;
