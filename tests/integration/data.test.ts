/**
 * The data stage on the real stack: sources and formats, content-addressed versions, validation that stops a
 * changed upstream feed before training, and bad input that fails clearly without leaving anything behind.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { parquetWriteBuffer } from 'hyparquet-writer';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestTable } from '../../activities/ingest';
import { csvField } from '../../ml/formats/csv';
import { datasetAliases, datasets, datasetVersions, validationReports } from '../../schema/datasets';
import { modelVersions } from '../../schema/models';
import { runs } from '../../schema/runs';
import { loadConfig } from '../../config/env';
import { startCliServer, type CliServer } from './cliServer';
import { cli as flywheel, demandPipeline, failureOf, startHarness, unique, type Harness } from './harness';

let harness: Harness;
let server: CliServer;
let http: Server;
let httpBase = '';
const served = new Map<string, Buffer>();

beforeAll(async () => {
  harness = await startHarness();
  server = await startCliServer(harness.queues.main);
  http = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    res.writeHead(body ? 200 : 404).end(body ?? 'not found');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => http?.close(() => resolve()));
  await server?.close();
  await harness?.stop();
});

async function versionsOf(dataset: string) {
  return harness.services.db.select().from(datasetVersions).where(eq(datasetVersions.datasetName, dataset));
}

async function latestOf(dataset: string): Promise<string | undefined> {
  const [row] = await harness.services.db
    .select()
    .from(datasetAliases)
    .where(and(eq(datasetAliases.datasetName, dataset), eq(datasetAliases.alias, 'latest')));
  return row?.versionId;
}

interface Row {
  id: number;
  name: string;
  price: number;
  flag: boolean;
  note: string | null;
}
const rows: Row[] = Array.from({ length: 300 }, (_, i) => ({
  id: i + 1,
  name: i % 7 === 0 ? `item "${i}", special` : `item ${i}`,
  price: Math.round((3 + (i % 40) * 0.37) * 100) / 100,
  flag: i % 3 === 0,
  note: i % 5 === 0 ? null : `n${i % 4}`,
}));
const columns = ['id', 'name', 'price', 'flag', 'note'] as const;

describe('dataset versions from every source and format', () => {
  it('gives one version to one table, whatever the format, delimiter, quoting, line endings or source', async () => {
    const dataset = unique('table');
    const dir = harness.workDir;
    const text = (r: Row) => [r.id, r.name, r.price, r.flag, r.note];

    const plain = join(dir, `${dataset}.csv`);
    await writeFile(
      plain,
      [
        columns.join(','),
        ...rows.map((r) =>
          text(r)
            .map((v) => csvField(v))
            .join(','),
        ),
      ].join('\n') + '\n',
    );
    const quoteAll = (v: unknown) => `'${String(v ?? '').replace(/'/g, "''")}'`;
    const semicolons = join(dir, `${dataset}-semicolon.txt`);
    await writeFile(
      semicolons,
      '\uFEFF' +
        [
          columns.map(quoteAll).join(';'),
          ...rows.map((r) =>
            text(r)
              .map((v) => (v === null ? '' : quoteAll(v)))
              .join(';'),
          ),
        ].join('\r\n'),
    );
    // No delimiter configured: a semicolon export (CRLF, BOM) and a TSV are read by the delimiter of their first line.
    const separated = async (name: string, delimiter: string, prefix = '') => {
      const lines = [columns, ...rows.map(text)].map((cells) =>
        cells.map((v) => csvField(v, delimiter)).join(delimiter),
      );
      await writeFile(join(dir, name), prefix + lines.join('\r\n') + '\r\n');
      return join(dir, name);
    };
    const semicolonsDetected = await separated(`${dataset}-semicolon.csv`, ';', '\uFEFF');
    const tabs = await separated(`${dataset}.tsv`, '\t');
    const jsonl = join(dir, `${dataset}.jsonl`);
    await writeFile(jsonl, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const parquet = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: Int32Array.from(rows.map((r) => r.id)), type: 'INT32', nullable: false },
        { name: 'name', data: rows.map((r) => r.name), type: 'STRING', nullable: false },
        { name: 'price', data: Float64Array.from(rows.map((r) => r.price)), type: 'DOUBLE', nullable: false },
        { name: 'flag', data: rows.map((r) => r.flag), type: 'BOOLEAN', nullable: false },
        { name: 'note', data: rows.map((r) => r.note), type: 'STRING', nullable: true },
      ],
      rowGroupSize: 64,
    });
    const parquetKey = `test-sources/${dataset}.parquet`;
    await harness.services.store.putBuffer(parquetKey, Buffer.from(parquet));
    served.set(`/${dataset}.csv`, await readFile(plain));

    const databaseUrl = loadConfig().databaseUrl;
    const table = dataset.replace(/-/g, '_');
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query(
        `CREATE TABLE ${table} (id integer, name text, price double precision, flag boolean, note text)`,
      );
      for (const r of rows)
        await client.query(`INSERT INTO ${table} VALUES ($1, $2, $3, $4, $5)`, [r.id, r.name, r.price, r.flag, r.note]);

      const first = await harness.runDataset({ dataset, table: { source: plain } });
      expect(first.version).toMatchObject({ rowCount: 300, format: 'csv', reused: false });
      expect(first.validation).toMatchObject({ passed: true, contract: 'inferred', reference: null });
      const spellings = [
        { source: semicolons, format: 'csv' as const, delimiter: ';', quote: "'" },
        { source: semicolonsDetected },
        { source: tabs },
        { source: jsonl },
        { source: `s3://${harness.services.store.bucket}/${parquetKey}` },
        { source: `${httpBase}/${dataset}.csv` },
        { source: databaseUrl, query: `SELECT id, name, price, flag, note FROM ${table} ORDER BY id` },
      ];
      for (const spelling of spellings) {
        const again = await harness.runDataset({ dataset, table: spelling });
        expect({ spelling: spelling.source, id: again.version.datasetVersionId, reused: again.version.reused }).toEqual(
          { spelling: spelling.source, id: first.version.datasetVersionId, reused: true },
        );
        // Said only when it was detected and is not a comma.
        const detected = { [semicolonsDetected]: ';', [tabs]: '\t' }[spelling.source];
        expect(again.version.delimiter).toBe(detected);
      }
    } finally {
      await client.query(`DROP TABLE IF EXISTS ${table}`);
      await client.end();
    }

    const versions = await versionsOf(dataset);
    expect(versions).toHaveLength(1);
    expect(await harness.services.store.list(`datasets/${dataset}/`)).toEqual([versions[0]!.objectKey]);
    const stored = (await harness.services.store.getBuffer(versions[0]!.objectKey)).toString();
    expect(stored).toBe(await readFile(plain, 'utf8'));
    expect(await latestOf(dataset)).toBe(versions[0]!.id);

    const profile = Object.fromEntries(versions[0]!.profile.map((p) => [p.name, p]));
    expect(profile.id).toMatchObject({
      type: 'integer',
      count: 300,
      nulls: 0,
      distinct: 300,
      min: 1,
      max: 300,
      mean: 150.5,
    });
    expect(profile.price!.quantiles!.p50).toBeGreaterThan(3);
    expect(profile.flag).toMatchObject({ type: 'boolean', distinct: 2 });
    expect(profile.note).toMatchObject({ type: 'string', nulls: 60, distinct: 4 });
    const [info] = await harness.services.db.select().from(datasets).where(eq(datasets.name, dataset));
    expect(info!.inferredFrom).toBe(versions[0]!.id);
    expect(info!.inferredContract!.columns.note).toEqual({
      type: 'string',
      nullable: true,
      allowed: ['n0', 'n1', 'n2', 'n3'],
    });
  });
});

describe('flywheel datasets add, through the API', () => {
  it('ingests and validates a file as a new version while the CLI follows it; a ragged row fails naming file and line; a read token writes nothing', async () => {
    const dataset = unique('added');
    const file = join(harness.workDir, `${dataset}.csv`);
    await writeFile(
      file,
      [
        columns.join(','),
        ...rows.map((r) => [r.id, r.name, r.price, r.flag, r.note].map((v) => csvField(v)).join(',')),
      ].join('\n') + '\n',
    );
    const added = await flywheel(harness, ['datasets', 'add', dataset, file], server.env());
    expect(added.code, added.stderr).toBe(0);
    const [version] = await versionsOf(dataset);
    expect(added.stdout).toMatch(new RegExp(`^started dataset-${dataset}-\\w+\\n  http\\S+\\n`));
    expect(added.stdout).toContain(`${version!.id}: 300 rows from csv\n  validation passed (inferred contract)\n`);
    expect(await latestOf(dataset)).toBe(version!.id);

    // A semicolon export: the summary says how it was read, and it is the same table.
    const semicolons = join(harness.workDir, `${dataset}-semicolons.csv`);
    await writeFile(
      semicolons,
      [
        columns.join(';'),
        ...rows.map((r) => [r.id, r.name, r.price, r.flag, r.note].map((v) => csvField(v, ';')).join(';')),
      ].join('\n') + '\n',
    );
    const detected = await flywheel(harness, ['datasets', 'add', dataset, semicolons], server.env());
    expect(detected.code, detected.stderr).toBe(0);
    expect(detected.stdout).toContain(
      `${version!.id}: 300 rows from csv (';'-separated, detected from the first line) (same content`,
    );

    const ragged = join(harness.workDir, `${dataset}-ragged.csv`);
    await writeFile(ragged, `${columns.join(',')}\n1,a,2.5,true,x\n2,b,3.5,false,y,extra\n`);
    const failed = await flywheel(harness, ['datasets', 'add', dataset, ragged], server.env());
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain(`dataset ${dataset}: ${ragged}: line 3 has 6 fields, the header has 5`);
    expect(await versionsOf(dataset)).toHaveLength(1);

    const other = unique('refused');
    const refused = await flywheel(harness, ['datasets', 'add', other, file], server.env(server.tokens.read));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/has scope "read"; this route needs "write"/);
    expect(await harness.services.db.select().from(datasets).where(eq(datasets.name, other))).toEqual([]);
  });
});

describe('large files: profiled on worker threads', () => {
  async function bigCsv(name: string, rows: number, ragged?: number): Promise<string> {
    const path = join(harness.workDir, `${name}.csv`);
    const lines = ['id,x,label,flag'];
    for (let i = 1; i <= rows; i++)
      lines.push(i === ragged ? `${i},1.5,a,true,extra` : `${i},${((i * 7919) % 1000) / 8},L${i % 37},${i % 2 === 0}`);
    await writeFile(path, lines.join('\n') + '\n');
    return path;
  }
  const deps = () => ({ db: harness.services.db, store: harness.services.store });

  it('gives the same version and the same profile as one thread', async () => {
    const source = await bigCsv(unique('big'), 400_000);
    const one = await ingestTable(
      deps(),
      { workflowId: unique('w'), dataset: unique('one'), table: { source } },
      undefined,
      { profileThreads: 0 },
    );
    const two = await ingestTable(
      deps(),
      { workflowId: unique('w'), dataset: unique('two'), table: { source } },
      undefined,
      { profileThreads: 2 },
    );
    expect(two.contentHash).toBe(one.contentHash);
    expect(two.profile).toEqual(one.profile);
    expect(two.rowCount).toBe(400_000);
  });

  it('names the line of a ragged row that a profiling thread finds, and stores nothing', async () => {
    const dataset = unique('ragged');
    const source = await bigCsv(dataset, 400_000, 300_000);
    const error = await ingestTable(deps(), { workflowId: unique('w'), dataset, table: { source } }, undefined, {
      profileThreads: 2,
    }).catch((e: Error) => e);
    expect((error as Error).message).toBe(`${source}: line 300001 has 5 fields, the header has 4`);
    expect(await versionsOf(dataset)).toHaveLength(0);
    expect(await harness.services.store.list(`datasets/${dataset}/`)).toHaveLength(0);
  });
});

describe('the seed story: a changed upstream feed is stopped at validation', () => {
  it('stops price ×100, a renamed column and a changed type with the inferred contract; nothing is trained or registered', async () => {
    const config = await demandPipeline(harness.workDir, { config: { schema: undefined, deploy: { enabled: false } } });
    const source = config.data.source;
    const good = await (await harness.runPipeline(config)).result;
    expect(good.validation).toMatchObject({ contract: 'inferred', reference: null });
    const latest = await latestOf(config.data.dataset);
    expect(latest).toBe(good.datasetVersionId);

    const original = await readFile(source, 'utf8');
    const { generateDemand } = await import('../../examples/demand/generate');
    await generateDemand(source, { stores: 3, items: 5, days: 60, priceScale: 100 });
    const header = original.slice(0, original.indexOf('\n')).split(',');
    const promo = header.indexOf('promo');
    const drops: { what: string; write: () => Promise<void>; expect: RegExp; column: string; check: string }[] = [
      {
        what: 'price in cents',
        write: async () => undefined,
        expect:
          /column "price": distribution shifted from reference .*PSI [\d.]+ ≥ 0.25; mean [\d.]+ → [\d.]+ \(×100\)/,
        column: 'price',
        check: 'drift',
      },
      {
        what: 'renamed column',
        write: () => writeFile(source, original.replace('price', 'unit_price')),
        expect: /column "price" is declared in the schema but missing from the data/,
        column: 'price',
        check: 'missing_column',
      },
      {
        what: 'type change',
        column: 'promo',
        check: 'type',
        expect: /column "promo": \d+ of 900 rows are not an integer \(row 1: "(yes|no)"/,
        write: () =>
          writeFile(
            source,
            original
              .split('\n')
              .map((line, i) => {
                if (i === 0 || !line) return line;
                const cells = line.split(',');
                cells[promo] = cells[promo] === '1' ? 'yes' : 'no';
                return cells.join(',');
              })
              .join('\n'),
          ),
      },
    ];
    const rejected: string[] = [];
    for (const drop of drops) {
      await drop.write();
      const { workflowId, result } = await harness.runPipeline(config);
      const message = await failureOf(result);
      expect(message, drop.what).toMatch(drop.expect);
      expect(message).toContain('DataValidationError');
      const description = await harness.services.client.workflow.getHandle(workflowId).describe();
      expect(description.status.name).toBe('FAILED');
      expect(await harness.services.db.select().from(runs).where(eq(runs.workflowId, workflowId))).toHaveLength(0);
      expect(
        await harness.services.db.select().from(modelVersions).where(eq(modelVersions.modelName, config.model)),
      ).toHaveLength(1);
      expect(await latestOf(config.data.dataset)).toBe(latest);
      const [report] = await harness.services.db
        .select()
        .from(validationReports)
        .where(eq(validationReports.workflowId, workflowId));
      expect(report).toMatchObject({ passed: false });
      const stored = await harness.services.store.getJson<{
        issues: { column: string; check: string; severity: string }[];
      }>(report!.reportKey);
      expect(stored.issues).toContainEqual(
        expect.objectContaining({ column: drop.column, check: drop.check, severity: 'error' }),
      );
      rejected.push(report!.datasetVersionId);
    }

    // The CLI shows the story: verdicts per version, lineage, the diff that explains the rejection, aliases, the
    // contract.
    const dataset = config.data.dataset;
    const cli = async (...args: string[]) => {
      const out = await flywheel(harness, ['datasets', ...args], server.env());
      expect(out.code, out.stderr).toBe(0);
      return out.stdout;
    };
    const list = await cli('list', dataset);
    expect(list).toMatch(new RegExp(`${latest}\\s.*passed\\s+latest`));
    expect(list.match(/FAILED/g)).toHaveLength(3);
    expect(await cli('show', dataset)).toMatch(
      new RegExp(`run ${good.runId}  finished[\\s\\S]*model ${config.model} v1`),
    );
    expect(await cli('diff', dataset, rejected[0]!)).toMatch(
      /\n\s+price\s+0%\s+\d+ → \d+\s+[\d.]+ → [\d.]+\s+.*\s(\d+\.\d+)\s/,
    );
    expect(await cli('diff', dataset, rejected[1]!)).toMatch(
      /- removed {2}price \(number\)\n\s+\+ added {4}unit_price \(number\)/,
    );
    expect(await cli('diff', dataset, rejected[2]!)).toContain('~ type     promo: integer → string');
    expect(await cli('alias', rejected[0]!, 'cents', '--force')).toContain(`${dataset}@cents → ${rejected[0]}`);
    expect(await cli('show', `${dataset}@cents`)).toContain('(@cents)');
    expect(await cli('schema', dataset)).toContain('price: { type: number, nullable: false }');
  }, 600_000); // four pipelines, then eight CLI processes: minutes on a busy machine

  it('stops price in cents with a pinned contract (max 100) and names example rows', async () => {
    const config = await demandPipeline(harness.workDir, { data: { priceScale: 100 } });
    const { workflowId, result } = await harness.runPipeline(config);
    const message = await failureOf(result);
    expect(message).toMatch(/column "price": \d+ of 900 rows are above the maximum 100 \(row 1: "\d+(\.\d+)?"; row 2/);
    expect(await harness.services.db.select().from(runs).where(eq(runs.workflowId, workflowId))).toHaveLength(0);
    expect(await latestOf(config.data.dataset)).toBeUndefined();
  });
});

describe('bad input fails clearly, leaves nothing behind, and the worker stays up', () => {
  const header = 'date,store_id,item_id,day_of_week,month,is_holiday,promo,price,units_sold';
  const row = (price = '9.5') => `2026-01-01,S01,I001,3,1,0,0,${price},12`;
  const cases: {
    what: string;
    body?: Buffer | string;
    source?: () => string;
    data?: Record<string, unknown>;
    expect: RegExp;
    leaves?: 'version';
  }[] = [
    {
      what: 'ragged row',
      body: [header, row(), `${row()},extra`].join('\n'),
      expect: /\.csv: line 3 has 10 fields, the header has 9/,
    },
    {
      what: 'broken quoting',
      body: [header, row(), '2026-01-02,"S01,I001,3,1,0,0,9.5,12'].join('\n'),
      expect: /\.csv: line 3: unterminated quoted field/,
    },
    {
      what: 'stray quote',
      body: [header, row(), '2026-01-02,S"01,I001,3,1,0,0,9.5,12'].join('\n'),
      expect: /\.csv: line 3: unexpected quote inside unquoted field 2/,
    },
    {
      what: 'invalid UTF-8',
      body: Buffer.concat([
        Buffer.from(`${header}\n${row()}\n2026-01-02,S`),
        Buffer.from([0xff, 0xfe]),
        Buffer.from(',I001,3,1,0,0,9.5,12\n'),
      ]),
      expect: /\.csv: line 3 is not valid UTF-8/,
    },
    { what: 'empty file', body: '', expect: /\.csv: the file is empty/ },
    { what: 'header without rows', body: `${header}\n`, expect: /\.csv: the file has a header but no data rows/ },
    {
      what: 'duplicate column names',
      body: `${header},price\n${row()},1\n`,
      expect: /duplicate column name "price" in the header \(columns 8 and 10\)/,
    },
    {
      what: 'NaN in a numeric column',
      body: [header, row(), row('NaN'), row('Infinity'), row('')].join('\n'),
      leaves: 'version',
      expect:
        /column "price": 2 of 4 rows are not a number \(row 2: "NaN"; row 3: "Infinity"\)[\s\S]*column "price": 1 of 4 rows are empty but the column is not nullable \(row 4: ""\)/,
    },
    {
      what: 'unreachable URL',
      source: () => 'http://flywheel-no-such-host.invalid/data.csv',
      expect: /flywheel-no-such-host\.invalid\/data\.csv: host not found/,
    },
    { what: 'HTTP 404', source: () => `${httpBase}/missing.csv`, expect: /missing\.csv: HTTP 404/ },
    {
      what: 'missing S3 key',
      source: () => `s3://${harness.services.store.bucket}/no/such/key.csv`,
      expect: /no such S3 object \(bucket "[^"]+", key "no\/such\/key\.csv"\)/,
    },
    {
      what: 'SQL error',
      source: () => loadConfig().databaseUrl,
      data: { query: 'SELECT price FROM no_such_table' },
      expect: /SQL error 42P01 at character 19: relation "no_such_table" does not exist/,
    },
    {
      what: 'broken JSON line',
      body: '{"price": 1}\n{"price": 2\n',
      data: { format: 'jsonl' },
      expect: /\.csv: line 2 is not valid JSON/,
    },
    {
      what: 'not Parquet',
      body: 'this is not parquet',
      data: { format: 'parquet' },
      expect: /not a readable Parquet file/,
    },
  ];

  for (const testCase of cases) {
    it(`${testCase.what}`, async () => {
      const config = await demandPipeline(harness.workDir, { config: { deploy: { enabled: false } } });
      if (testCase.body !== undefined) await writeFile(config.data.source, testCase.body);
      if (testCase.source) config.data.source = testCase.source();
      Object.assign(config.data, testCase.data);
      const { workflowId, result } = await harness.runPipeline(config);
      const message = await failureOf(result);
      expect(message).toMatch(testCase.expect);
      expect(message).toMatch(testCase.leaves ? /DataValidationError/ : /IngestError/);
      // Non-retryable: the failing stage ran once.
      const history = await harness.services.client.workflow.getHandle(workflowId).fetchHistory();
      const attempts = history
        .events!.filter((e) => e.activityTaskStartedEventAttributes)
        .map((e) => e.activityTaskStartedEventAttributes!.attempt);
      expect(attempts.every((a) => a === 1)).toBe(true);
      expect(await versionsOf(config.data.dataset)).toHaveLength(testCase.leaves ? 1 : 0);
      expect(await harness.services.store.list(`datasets/${config.data.dataset}/`)).toHaveLength(
        testCase.leaves ? 1 : 0,
      );
      expect(await harness.services.db.select().from(runs).where(eq(runs.workflowId, workflowId))).toHaveLength(0);
    });
  }

  it('still serves a healthy pipeline after all of that', async () => {
    const config = await demandPipeline(harness.workDir, { config: { deploy: { enabled: false } } });
    const outcome = await (await harness.runPipeline(config)).result;
    expect(outcome.model?.version).toBe(1);
    expect(await latestOf(config.data.dataset)).toBe(outcome.datasetVersionId);
  });
});
