import { describe, expect, it } from 'vitest';
import { defineFeatureView } from '../../features/define';
import { checkSqlExpression, isForbiddenFunction, singleStatement, UserSqlError } from '../../features/userSql';

describe('user SQL checks', () => {
  it('keeps one statement, dropping a trailing ";"', () => {
    expect(singleStatement('SELECT 1 AS x')).toBe('SELECT 1 AS x');
    expect(singleStatement('SELECT 1 AS x;  ')).toBe('SELECT 1 AS x');
    expect(singleStatement('SELECT 1 AS x; ; -- done\n')).toBe('SELECT 1 AS x');
    expect(
      singleStatement('SELECT \';\' AS a, $$;$$ AS b, $t$ ; DROP $t$ AS c, "x;y" FROM t /* ; */ -- ;\n'),
    ).toContain('"x;y" FROM t');
  });

  it('refuses stacked statements, naming where the second one starts', () => {
    expect(() => singleStatement('SELECT 1; DROP TABLE runs')).toThrow(
      new UserSqlError('more than one statement: a ";" at character 9 is followed by more SQL; give one SELECT'),
    );
    expect(() =>
      singleStatement(
        "SELECT * FROM t) src; DROP TABLE runs; INSERT INTO api_tokens VALUES ('x'); SELECT * FROM (SELECT 1",
      ),
    ).toThrow(/unbalanced parentheses|more than one statement/);
    expect(() => singleStatement('SELECT 1 AS x) src LIMIT 0; --')).toThrow(
      /unbalanced parentheses: a "\)" at character 14 closes nothing/,
    );
    expect(() => singleStatement('SELECT (1')).toThrow(/1 "\(" never closed/);
    expect(() => singleStatement("SELECT 'open")).toThrow(/unterminated string/);
    expect(() => singleStatement('SELECT 1 /* open')).toThrow(/unterminated comment/);
    expect(() => singleStatement("COPY t TO PROGRAM 'id'")).toThrow(/COPY is not a query/);
    expect(() => singleStatement('  ')).toThrow(/empty/);
  });

  it('refuses functions that reach files, other servers or settings, by name, however spelt', () => {
    for (const call of [
      "pg_read_file('/etc/passwd')",
      "PG_LS_DIR('.')",
      "lo_import('/etc/passwd')",
      "dblink('host=x', 'select 1')",
      "pg_catalog.pg_read_binary_file('x')",
      '"pg_read_file"(\'x\')',
      "set_config('role', 'postgres', true)",
      "query_to_xml('delete from runs', true, true, '')",
      'pg_advisory_lock (1)',
    ]) {
      expect(() => singleStatement(`SELECT ${call}`), call).toThrow(/which user SQL may not use/);
    }
    // A column or string of that name is no call.
    expect(singleStatement("SELECT 'pg_read_file(x)' AS pg_read_file FROM t")).toContain('AS pg_read_file');
    expect(isForbiddenFunction('lower')).toBe(false);
  });

  it('checks transform expressions: one expression, no subquery', () => {
    expect(() => checkSqlExpression('ln(1 + avg_units)')).not.toThrow();
    expect(() => checkSqlExpression('extract(epoch from ts)')).not.toThrow();
    expect(() => checkSqlExpression('(SELECT hash FROM api_tokens LIMIT 1)')).toThrow(/no subquery/);
    expect(() => checkSqlExpression('1) x; DELETE FROM runs; SELECT (1')).toThrow(UserSqlError);
  });

  it('refuses a bad source query or transform when a feature view is defined, naming the field', () => {
    const base = {
      name: 'v',
      entities: ['store_id'],
      timestamp: 'day',
      ttl: '7d',
      features: { units: 'number' as const },
    };
    expect(() => defineFeatureView({ ...base, source: { query: 'SELECT 1; DROP TABLE runs' } })).toThrow(
      /source\.query: more than one statement/,
    );
    expect(() =>
      defineFeatureView({
        ...base,
        source: { query: 'SELECT * FROM t' },
        transforms: { x: { expression: "pg_read_file('/etc/passwd')", type: 'string' } },
      }),
    ).toThrow(/transforms\.x\.expression: calls pg_read_file\(\)/);
  });
});
