import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { FilterError, matches, parseFilter, parseOrderBy, sortRuns, type RunView } from '../../store/runFilter';
import { compileFilter, compileSearch } from '../../store/runFilterSql';

const run = (id: string, rmse: number | undefined, lr: number, extra: Partial<RunView> = {}): RunView => ({
  metrics: rmse === undefined ? {} : { holdout_rmse: rmse, val_rmse: rmse },
  params: { learningRate: lr, model: { type: 'mlp', hiddenUnits: [64, 32] } },
  tags: { team: id === 'a' ? 'ml' : 'ops' },
  attributes: { id, status: 'finished', backend: 'wasm' },
  ...extra,
});
const runs = [
  run('a', 6.5, 0.01),
  run('b', 12, 0.001),
  run('c', 8, 0.001),
  run('d', undefined, 0.01),
  run('e', 9, 0.1),
];
const ids = (filter: string) => runs.filter((r) => matches(r, parseFilter(filter))).map((r) => r.attributes.id);

describe('run filter language', () => {
  it('takes the issue example: AND, OR and parentheses, with MLflow short names', () => {
    expect(ids('metrics.val_rmse < 10 and (params.lr = 0.01 or params.lr = 0.001)')).toEqual(['a', 'c']);
  });

  it('compares strings, nested params, tags, attributes, lists, LIKE and NOT', () => {
    expect(ids("tags.team = 'ml'")).toEqual(['a']);
    expect(ids('params.model.type = \'mlp\' and attributes.backend = "wasm"')).toHaveLength(5);
    expect(ids('params.learningRate in (0.1, 0.01)')).toEqual(['a', 'd', 'e']);
    expect(ids("id like 'a%' or id ILIKE 'E'")).toEqual(['a', 'e']);
    expect(ids('not metrics.holdout_rmse >= 8')).toEqual(['a', 'd']);
  });

  it('leaves out runs that lack the metric, as MLflow does', () => {
    expect(ids('metrics.holdout_rmse > 0')).toEqual(['a', 'b', 'c', 'e']);
  });

  it('explains a bad filter with its position', () => {
    const error = (filter: string) => {
      try {
        parseFilter(filter);
      } catch (e) {
        return e as FilterError;
      }
      throw new Error('no error');
    };
    expect(error('metrics.rmse <').message).toMatch(
      /expected a number or a quoted string, found the end of the filter at position 15/,
    );
    expect(error('(metrics.rmse < 1 or params.lr = 2').message).toMatch(/expected "\)" but found the end/);
    expect(error('colour = 1').message).toMatch(/unknown field "colour"/);
    expect(error("tags.team = 'ml").message).toMatch(/unterminated string at position 13/);
    expect(error('metrics.rmse ~ 1').message).toMatch(/unexpected character "~"/);
    expect(error('metrics.rmse < 1 params.lr = 2').message).toMatch(/expected "and", "or" or the end, found "params"/);
  });

  it('orders by several keys, missing values last', () => {
    expect(sortRuns(runs, parseOrderBy('metrics.holdout_rmse asc')).map((r) => r.attributes.id)).toEqual([
      'a',
      'c',
      'e',
      'b',
      'd',
    ]);
    expect(sortRuns(runs, parseOrderBy('params.lr DESC, metrics.holdout_rmse')).map((r) => r.attributes.id)).toEqual([
      'e',
      'a',
      'd',
      'c',
      'b',
    ]);
  });
});

describe('run filter compiled to SQL', () => {
  const text = (query: SQL | undefined) => new PgDialect().sqlToQuery(query!);

  it('reads metric predicates from run_latest_metrics within the searched experiment', () => {
    const { sql: where, params } = text(compileFilter('metrics.rmse < 5 and params.eta = 0.1', { experimentIds: [7] }));
    expect(where).toMatch(
      /EXISTS \(SELECT 1 FROM run_latest_metrics m WHERE m.run_id = "runs"."id" AND m.key = \$1 AND m.experiment_id = \$2 AND m.value < \$3\)/,
    );
    expect(params.slice(0, 3)).toEqual(['rmse', 7, 5]);
    expect(where).not.toMatch(/"metrics"/);
  });

  it('pushes NOT into a metric comparison, so a run without the metric matches neither', () => {
    const { sql: where } = text(compileFilter('not (metrics.rmse < 5 or metrics.r2 in (1, 2))'));
    expect(where).toMatch(/m.value >= \$\d+\) AND EXISTS .* m.value <> ALL\(\$\d+::float8\[\]\)/);
    expect(where).not.toMatch(/NOT/);
    // The jsonb reference keeps SQL's own three-valued NOT.
    expect(text(compileFilter('not metrics.rmse < 5', { metrics: 'json' })).sql).toMatch(
      /^\(NOT .*"runs"."metrics" ->> /,
    );
  });

  it('splits a search ordered by a metric first into the runs with it (walked in value order) and those without', () => {
    const search = compileSearch({
      filter: 'metrics.rmse < 0.5',
      orderBy: 'metrics.rmse desc, metrics.r2',
      experimentIds: [3],
    });
    expect(search.byMetric!.key).toBe('rmse');
    expect(text(search.byMetric!.scan).sql).toBe(
      '"ordered"."key" = $1 AND "ordered"."experiment_id" = $2 AND "ordered"."value" < $3',
    );
    expect(
      text(compileSearch({ filter: 'metrics.rmse > 1 or metrics.r2 < 2', orderBy: 'metrics.rmse' }).byMetric!.scan).sql,
    ).toBe('"ordered"."key" = $1');
    expect(text(search.byMetric!.present.where).sql).toBe('"ordered"."value" < $1');
    expect(text(search.byMetric!.present.order[0]).sql).toBe('"ordered"."value" DESC NULLS LAST');
    expect(text(search.byMetric!.missing.where).sql).toMatch(/^NOT EXISTS .* AND NULL::boolean$/);
    expect(search.byMetric!.missing.order.map((term) => text(term).sql)[0]).toMatch(
      /^\(SELECT m.value FROM run_latest_metrics m .* ASC NULLS LAST$/,
    );
    expect(compileSearch({ orderBy: 'start_time, metrics.rmse' }).byMetric).toBeUndefined();
  });
});
