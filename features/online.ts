/**
 * Online feature lookup for models trained on feature-built tables: a request may carry only the entity keys; the
 * features come from the online store (one query per view for a whole request), fresh within the view's TTL.
 * Values the request carries itself win (request-time data); entity keys that are not model inputs are dropped.
 */
import { entityKey } from './define';
import type { ServedFeatureView } from './sql';
import type { Db } from '../storage/db';

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

export async function withOnlineFeatures(
  db: Db,
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
    // Unnamed on purpose: as a prepared statement its generic plan, cached per connection, became a sequential scan
    // right after a bulk materialisation (statistics still said the table was empty): 200–500 ms per lookup.
    const { rows } = await db.$client.query<{ entity_key: string; values: Record<string, unknown>; at: number }>(
      'SELECT entity_key, values, extract(epoch from event_ts) * 1000 AS at FROM online_features WHERE view = $1 AND entity_key = ANY($2)',
      [view.ref, [...new Set(keys)]],
    );
    const found = new Map(rows.map((r) => [r.entity_key, r]));
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
