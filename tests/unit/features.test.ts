import { describe, expect, it } from 'vitest';
import {
  defineFeatureView,
  definitionHash,
  entityKey,
  isFeatureView,
  type FeatureViewInput,
} from '../../features/define';
import { materializeSql, pointInTimeJoinSql, ttlSeconds } from '../../features/sql';

const base: FeatureViewInput = {
  name: 'store_sales',
  entities: ['store_id'],
  timestamp: 'day',
  ttl: '7d',
  source: { query: 'SELECT * FROM sales' },
  features: { avg_units: 'number', region: 'string' },
};

describe('feature view definitions', () => {
  it('validates, brands and versions a definition by its content', () => {
    const view = defineFeatureView(base);
    expect(isFeatureView(view)).toBe(true);
    expect(isFeatureView({ ...base })).toBe(false);
    expect(view.onMissing).toBe('error');
    expect(ttlSeconds(view)).toBe(7 * 86_400);
    expect(definitionHash(view)).toBe(
      definitionHash(defineFeatureView({ ...base, features: { region: 'string', avg_units: 'number' } })),
    );
    expect(definitionHash(view)).not.toBe(definitionHash(defineFeatureView({ ...base, ttl: '8d' })));
    expect(entityKey(['S1', 7])).toBe('S1\u001f7');
  });

  it('names the field of a bad definition: TTL of zero, clashing names, unknown types', () => {
    expect(() => defineFeatureView({ ...base, ttl: '0s' })).toThrow(
      /feature view store_sales is invalid:\n {2}ttl: must be a positive duration/,
    );
    expect(() => defineFeatureView({ ...base, features: { store_id: 'string' } })).toThrow(
      /features\.store_id: "store_id" is already the entity key/,
    );
    expect(() => defineFeatureView({ ...base, features: { x: 'float' as 'number' } })).toThrow(
      /features\.x: Invalid enum value/,
    );
    expect(() => defineFeatureView({ ...base, entities: [] })).toThrow(/entities: Array must contain at least 1/);
    expect(() => defineFeatureView({ ...base, source: {} as { query: string } })).toThrow(/source: Invalid input/);
  });

  it('joins point in time: at or before the row, within the TTL, latest created first, in a stable order', () => {
    const view = defineFeatureView({
      ...base,
      createdTimestamp: 'created',
      transforms: { log_units: { expression: 'ln(1 + avg_units)', type: 'number' } },
    });
    const sql = pointInTimeJoinSql('SELECT * FROM entities', ['store_id', 'ts', 'y'], 'ts', [
      { view, table: 'fv_store_sales_v1' },
    ]);
    expect(sql).toContain(`f.event_ts <= e."ts"::timestamptz`);
    expect(sql).toContain(`f.event_ts > e."ts"::timestamptz - interval '604800 seconds'`);
    expect(sql).toContain('ORDER BY f.event_ts DESC, f.created_ts DESC NULLS LAST LIMIT 1');
    expect(sql).toContain('(ln(1 + avg_units))::double precision AS "log_units"');
    expect(sql).toMatch(/ORDER BY 1, 2, 3$/);
    // Materialisation only ever replaces an older value.
    expect(materializeSql(view, 'fv_store_sales_v1', 'store_sales@1')).toMatch(
      /WHERE online_features\.event_ts < excluded\.event_ts\s+OR \(online_features\.event_ts = excluded\.event_ts AND coalesce\(excluded\.created_ts/,
    );
  });
});
