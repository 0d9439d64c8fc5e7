/**
 * Online feature lookup for models trained on feature-built tables: a request may carry only the entity keys; the
 * features come from the online store (one query per view for a whole request), fresh within the view's TTL.
 * Values the request carries itself win (request-time data); entity keys that are not model inputs are dropped.
 * The serving process reads through `MergedLookups`: requests that wait for a connection share one query per view.
 */
import { entityKey } from './define';
import type { ServedFeatureView } from './sql';
import { plansPerExecution, type Db } from '../storage/db';

export class LookupError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'LookupError';
  }
}

/** One entity's newest online row: its feature values and event time (epoch ms). */
export interface OnlineRow {
  entity_key: string;
  values: Record<string, unknown>;
  at: number;
}

const LOOKUP_SQL =
  'SELECT entity_key, values, extract(epoch from event_ts) * 1000 AS at FROM online_features WHERE view = $1 AND entity_key = ANY($2)';

/**
 * One read. Prepared (parsed once per session) only on a pool that plans each execution for its parameters
 * (storage/db.ts `customPlans`): a cached generic plan, made while the table was empty, was a sequential scan that
 * stayed after a bulk materialisation (200–500 ms per lookup). Prepared and planned per call, a lookup costs Postgres
 * about a third less CPU than an unnamed query here.
 */
async function queryRows(db: Db, view: string, keys: string[], prepared = plansPerExecution(db)): Promise<OnlineRow[]> {
  const values = [view, keys];
  const query = prepared ? { name: 'flywheel_online_lookup', text: LOOKUP_SQL, values } : { text: LOOKUP_SQL, values };
  return (await db.$client.query<OnlineRow>(query)).rows;
}

const byKey = (rows: OnlineRow[]) => new Map(rows.map((row) => [row.entity_key, row]));

interface PendingLookup {
  keys: string[];
  resolve(rows: Map<string, OnlineRow>): void;
  reject(error: unknown): void;
}

/**
 * Online reads with at most `concurrency` queries in flight (the pool's size). A request that finds a query slot free
 * is sent at once, so a lone lookup waits for nothing; requests that arrive while every slot is busy wait, and the
 * next free slot reads all those of the same view (up to `maxKeys` distinct keys) in one query. Under load each
 * request then costs a share of one round trip instead of its own — at 1,000 lookups/s on 2 cores the per-query
 * cost (a socket write each way, parse, plan, execute: ~300 µs of CPU in Node and Postgres) had the machine saturated
 * and the queue for connections grew to p99 0.5–1.3 s. Views wait in arrival order. A merged query that fails is
 * retried request by request, so one request's failure never becomes its neighbours'.
 */
export class MergedLookups {
  /** Queries sent so far (merged reads count once, a failed merge's retries each). */
  queries = 0;
  private inFlight = 0;
  private readonly waiting = new Map<string, PendingLookup[]>();
  /** Whether the pool prepares lookups: read from it on the first query (a handler may be built before any). */
  private prepared: boolean | undefined;

  constructor(
    private readonly db: Db,
    private readonly concurrency: number,
    private readonly maxKeys = 1_000,
  ) {}

  private query(view: string, keys: string[]): Promise<OnlineRow[]> {
    this.queries++;
    this.prepared ??= plansPerExecution(this.db);
    return queryRows(this.db, view, keys, this.prepared);
  }

  /** The view's newest rows for `keys`, by entity key (keys without a row are absent). */
  rows(view: string, keys: string[]): Promise<Map<string, OnlineRow>> {
    return new Promise((resolve, reject) => {
      let queue = this.waiting.get(view);
      if (!queue) this.waiting.set(view, (queue = []));
      queue.push({ keys, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.waiting.size > 0) {
      const [view, queue] = this.waiting.entries().next().value as [string, PendingLookup[]];
      const keys = new Set<string>();
      let taken = 0;
      while (taken < queue.length) {
        const next = queue[taken]!.keys;
        if (taken > 0 && keys.size + next.length > this.maxKeys) break;
        for (const key of next) keys.add(key);
        taken++;
      }
      const batch = queue.splice(0, taken);
      if (queue.length === 0) this.waiting.delete(view);
      this.inFlight++;
      void this.read(view, [...keys], batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async read(view: string, keys: string[], batch: PendingLookup[]): Promise<void> {
    try {
      const found = byKey(await this.query(view, keys));
      for (const pending of batch) pending.resolve(found);
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
      for (const pending of batch) {
        try {
          pending.resolve(byKey(await this.query(view, [...new Set(pending.keys)])));
        } catch (own) {
          pending.reject(own);
        }
      }
    }
  }
}

/** Where online rows come from: a database (one query per view and request) or a serving process's merged reads. */
export type OnlineSource = Db | MergedLookups;

async function onlineRows(source: OnlineSource, view: string, keys: string[]): Promise<Map<string, OnlineRow>> {
  if (source instanceof MergedLookups) return source.rows(view, keys);
  return byKey(await queryRows(source, view, keys));
}

export async function withOnlineFeatures(
  source: OnlineSource,
  views: ServedFeatureView[],
  modelInputs: Set<string>,
  instances: Record<string, unknown>[],
  now = Date.now(),
): Promise<Record<string, unknown>[]> {
  const out = instances.map((instance) => ({ ...instance }));
  const entityColumns = new Set<string>();
  for (const view of views) {
    const keys = instances.map((instance, i) => {
      if (instance === null || typeof instance !== 'object' || Array.isArray(instance))
        throw new LookupError(422, `instances[${i}] must be a JSON object`, `instances[${i}]`);
      return entityKey(
        view.entities.map((e) => {
          entityColumns.add(e);
          const value = instance[e];
          if (value === undefined || value === null || typeof value === 'object') {
            throw new LookupError(
              422,
              `instances[${i}].${e}: ${value === undefined || value === null ? 'missing' : 'not a string or number'}: the entity key of feature view ${view.ref}`,
              `instances[${i}].${e}`,
            );
          }
          return value;
        }),
      );
    });
    const found = await onlineRows(source, view.ref, [...new Set(keys)]);
    keys.forEach((key, i) => {
      const row = found.get(key);
      const stale = row && Number(row.at) <= now - view.ttlSeconds * 1000;
      if (!row || stale) {
        if (view.onMissing === 'error') {
          const entity = view.entities.map((e) => `${e}=${JSON.stringify(String(instances[i]![e]))}`).join(', ');
          throw new LookupError(
            404,
            `instances[${i}]: no ${stale ? 'fresh ' : ''}online features for ${entity} in feature view ${view.ref}${stale ? ` (newest is older than its TTL, ${view.ttlSeconds} s)` : ' (unknown entity, or not materialised yet)'}`,
            `instances[${i}]`,
          );
        }
        for (const f of view.features) if (out[i]![f] === undefined) out[i]![f] = null;
        return;
      }
      for (const f of view.features) if (out[i]![f] === undefined) out[i]![f] = row.values[f] ?? null;
    });
  }
  for (const instance of out) for (const e of entityColumns) if (!modelInputs.has(e)) delete instance[e];
  return out;
}
