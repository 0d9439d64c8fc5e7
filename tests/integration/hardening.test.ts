/**
 * The probe's findings on the real stack: a huge CSV field, files outside the data folders, stacked and writing SQL
 * in feature views and SQL sources, a small drop judged as drift, a wide header, and names that are paths or SQL.
 * Each is refused at once (non-retryable), with a message that says what and where.
 */
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSource } from '../../features/activities';
import { registerFeatureView } from '../../features/store';
import type { FeatureView } from '../../features/define';
import { parseCsv } from '../../ml/formats/csv';
import { loadConfig } from '../../config/env';
import { startHarness, unique, type Harness } from './harness';

let harness: Harness;
const id = unique('hard').replace(/-/g, '_');
const canary = `hardening_canary_${id}`;
const writer = `hardening_write_${id}`;

beforeAll(async () => {
  harness = await startHarness();
  const db = harness.services.db.$client;
  await db.query(`CREATE TABLE ${canary} (store_id text, day timestamptz, units float8)`);
  await db.query(
    `INSERT INTO ${canary} VALUES ('S1', now() - interval '1 day', 3), ('S2', now() - interval '1 day', 4)`,
  );
  await db.query(
    `CREATE FUNCTION ${writer}() RETURNS int AS $$ BEGIN INSERT INTO ${canary} VALUES ('X', now(), 0); RETURN 1; END $$ LANGUAGE plpgsql`,
  );
});
afterAll(async () => {
  const db = harness?.services.db.$client;
  const views =
    (await db?.query(`SELECT offline_table FROM feature_views WHERE name LIKE $1`, [`hv\\_%${id.slice(-8)}%`]))?.rows ??
    [];
  for (const view of views) await db!.query(`DROP TABLE IF EXISTS "${view.offline_table}"`);
  await db?.query(`DELETE FROM feature_views WHERE name LIKE $1`, [`hv\\_%${id.slice(-8)}%`]);
  await db?.query(`DROP TABLE IF EXISTS ${canary}; DROP FUNCTION IF EXISTS ${writer}()`);
  await harness?.stop();
});

/** The failure chain of a dataset workflow that must fail: types and messages, and the attempts of its activities. */
async function datasetFailure(input: Parameters<Harness['runDataset']>[0]): Promise<string> {
  const error = await harness.runDataset(input).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the workflow fails').toBeDefined();
  let text = '';
  for (let e = error as { message?: string; type?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e)
    text += `${e.type ? `[${e.type}] ` : ''}${e.message}\n`;
  return text;
}

const canaryRows = async () =>
  Number((await harness.services.db.$client.query(`SELECT count(*) AS n FROM ${canary}`)).rows[0].n);

describe('hardening', () => {
  it('fails an ingest at once on a 64 MB field, naming file, line and column', async () => {
    const path = join(harness.workDir, `${id}-prices.csv`);
    const out = createWriteStream(path);
    out.write('id,price\n1,');
    const chunk = Buffer.alloc(1 << 20, 0x37);
    for (let i = 0; i < 64; i++) if (!out.write(chunk)) await once(out, 'drain');
    out.end('\n');
    await once(out, 'finish');
    const started = Date.now();
    const message = await datasetFailure({ dataset: unique('huge'), table: { source: path } });
    expect(message).toContain(`[IngestError] ${path} line 2, column price: field exceeds 4 MiB`);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('reads local files only from the data folders, never the state folder', async () => {
    expect(await datasetFailure({ dataset: unique('passwd'), table: { source: '/etc/passwd' } })).toMatch(
      /\[IngestError\] \/etc\/passwd: not under an allowed data folder \(.*\)/,
    );
    const stack = pathToFileURL(join(loadConfig().stateDir, 'stack.json')).href;
    expect(await datasetFailure({ dataset: unique('stack'), table: { source: stack } })).toMatch(
      /\[IngestError\] .*stack\.json: lies in Flywheel's state folder/,
    );
  });

  it('refuses a dataset name that is a path or SQL before reading anything', async () => {
    const path = join(harness.workDir, `${id}-ok.csv`);
    await writeFile(path, 'a\n1\n');
    expect(await datasetFailure({ dataset: '../../etc/evil', table: { source: path } })).toMatch(
      /\[ConfigError\] dataset: must be 1-128 letters/,
    );
    expect(await datasetFailure({ dataset: "x'; DROP TABLE runs; --", table: { source: path } })).toMatch(
      /\[ConfigError\] dataset: must be 1-128 letters/,
    );
  });

  it('runs SQL sources as one read-only statement: stacked, writing and file-reading queries are refused', async () => {
    const url = loadConfig().databaseUrl;
    const sql = (query: string) => datasetFailure({ dataset: unique('sql'), table: { source: url, query } });
    expect(await sql(`SELECT * FROM ${canary}; DROP TABLE ${canary}`)).toMatch(
      /\[IngestError\] .*the query is refused: more than one statement/,
    );
    expect(await sql(`SELECT pg_read_file('/etc/passwd') AS secret`)).toMatch(
      /\[IngestError\] .*calls pg_read_file\(\)/,
    );
    expect(await sql(`SELECT ${writer}() AS x`)).toMatch(
      /\[IngestError\] .*read-only transaction.*queries run read-only/,
    );
    expect(await sql('SELECT * FROM api_tokens')).toMatch(
      /\[IngestError\] .*permission denied for table api_tokens.*flywheel_reader/,
    );
    expect(await canaryRows()).toBe(2);
    const good = await harness.runDataset({
      dataset: unique('sqlok'),
      table: { source: url, query: `SELECT store_id, units FROM ${canary} ORDER BY store_id;` },
      drift: null,
    });
    expect(good.version.rowCount).toBe(2);
  });

  it('loads feature-view SQL as one read-only statement, never with write access', async () => {
    const view = (name: string, query: string): FeatureView => ({
      name: `hv_${name}_${id}`.slice(0, 41).toLowerCase(),
      entities: ['store_id'],
      timestamp: 'day',
      ttl: '30d',
      source: { query },
      features: { units: 'number' },
      transforms: {},
      onMissing: 'error',
    });
    // Views stored before the definition check (or written straight to the table) are checked again when loaded.
    const load = async (v: FeatureView) => {
      const { row } = await registerFeatureView(harness.services.db, v);
      return loadFeatureSource(harness.services.db, harness.services.store, row).then(
        () => 'loaded',
        (e: Error) => e.message,
      );
    };
    expect(
      await load(
        view(
          'stack',
          `SELECT store_id, day, units FROM ${canary}) src; DROP TABLE ${canary}; INSERT INTO api_tokens SELECT * FROM api_tokens; SELECT * FROM (SELECT 1`,
        ),
      ),
    ).toMatch(/its SQL is refused: (unbalanced parentheses|more than one statement)/);
    expect(await load(view('write', `SELECT store_id, day, units, ${writer}() AS w FROM ${canary}`))).toMatch(
      /read-only/,
    );
    expect(
      await load(view('tokens', 'SELECT name AS store_id, created_at AS day, 1.0 AS units FROM api_tokens')),
    ).toMatch(/permission denied for table api_tokens/);
    expect(await canaryRows()).toBe(2);
    expect(await load(view('good', `SELECT store_id, day, units FROM ${canary} -- a trailing comment`))).toBe('loaded');
    // The pooled connections are healthy afterwards (none was handed back inside an aborted transaction).
    for (let i = 0; i < 10; i++)
      expect((await harness.services.db.$client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  });

  it('passes a 20-row drop from the reference distribution with one warning, and reports a wide header as one error', async () => {
    const dataset = unique('small');
    const path = join(harness.workDir, `${dataset}.csv`);
    const { generateDemand } = await import('../../examples/demand/generate');
    await generateDemand(path, { stores: 3, items: 5, days: 60 });
    const first = await harness.runDataset({
      dataset,
      table: { source: path },
      drift: { columns: [], psiThreshold: 0.25, severity: 'error' },
    });
    const records = parseCsv(await (await import('node:fs/promises')).readFile(path, 'utf8'));
    const lines = records.map((r) => r.fields.join(','));
    const picked = [lines[0]!, ...Array.from({ length: 20 }, (_, i) => lines[1 + ((i * 37) % (lines.length - 1))]!)];
    const ids: string[] = [];
    for (const [name, text] of [
      ['crlf', `\uFEFF${picked.join('\r\n')}\r\n`],
      ['no-newline', picked.join('\n')],
    ] as const) {
      const drop = join(harness.workDir, `${dataset}-${name}.csv`);
      await writeFile(drop, text);
      const result = await harness.runDataset({
        dataset,
        table: { source: drop },
        reference: first.version.datasetVersionId,
        drift: { columns: [], psiThreshold: 0.25, severity: 'error' },
      });
      expect(result.validation.passed, name).toBe(true);
      expect(result.validation.warnings, name).toEqual([
        expect.stringContaining('too few rows (20) for a distribution check'),
      ]);
      ids.push(result.version.datasetVersionId);
    }
    // Same rows, same canonical content: one version, whatever the BOM, line endings or final newline.
    expect(ids[1]).toBe(ids[0]);
    const wide = join(harness.workDir, `${dataset}-wide.csv`);
    const header = Array.from({ length: 10_000 }, (_, i) => `c${i}`);
    await writeFile(wide, `${header.join(',')}\n${header.map(() => '1').join(',')}\n`);
    const message = await datasetFailure({ dataset, table: { source: wide } });
    expect(message).toMatch(
      /\[DataValidationError\] .*\n- header does not match the contract: 10,000 unexpected columns \(c0, c1, c2, c3, c4, … \(9,995 more\)\), 9 missing: (\w+, ){5}… \(4 more\)\n/,
    );
    expect(message).not.toMatch(/and \d+ more/);
  });
});
