/**
 * Datasets over HTTP, through the app in process (no port): datasets and their versions with verdicts and aliases,
 * one version with its profile, reports and lineage, a diff, the inferred contract, aliases refused on a version that
 * FAILED validation unless forced, scopes and errors; a model version's lineage; schedules' errors. Needs the local
 * stack (`flywheel up --infra-only`).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ProfileBuilder } from '../../ml/profiling/profile';
import { eq } from 'drizzle-orm';
import { datasetAliases, datasets, datasetVersions, validationReports } from '../../schema/datasets';
import { featureViews } from '../../schema/features';
import { createModelVersion } from '../../store/registry';
import { createPipelineRun, newRunId } from '../../store/runs';
import { useApiSuite } from './apiSuite';
import { unique } from './harness';

const api = useApiSuite('datasets-api');
const { tokens, call } = api;

/** Profiles of small tables, as ingestion builds them. */
function profileOf(header: string[], rows: string[][]) {
  const builder = new ProfileBuilder(header);
  for (const row of rows) builder.addRow(row);
  return builder.finish();
}

interface Fixture {
  name: string;
  passed: string;
  failed: string;
}

/**
 * A dataset with two versions: the first passed validation and holds @latest; the second (price in cents, a column
 * renamed) FAILED. A run trained on the first and a model version was registered from it.
 */
async function datasetWithVersions(): Promise<Fixture & { runId: string; model: string }> {
  const name = unique(`${api.suite}-d`);
  const passed = `${name}@00aa11bb22cc33dd`,
    failed = `${name}@ff99ee88dd77cc66`;
  const rows = Array.from({ length: 200 }, (_, i) => [String(i % 5), (3 + (i % 40) * 0.37).toFixed(2), `s${i % 3}`]);
  const good = profileOf(['promo', 'price', 'store'], rows);
  const bad = profileOf(
    ['promo', 'price', 'shop'],
    rows.map(([promo, price, store]) => [promo!, String(Number(price) * 100), store!]),
  );
  await api.db.insert(datasets).values({ name });
  const version = (id: string, profile: typeof good, createdAt: Date) => ({
    id,
    datasetName: name,
    contentHash: id.slice(-16).padEnd(64, '0'),
    objectKey: `datasets/${name}/${id.slice(-16)}.csv`,
    sourceUri: `/data/${name}.csv`,
    format: 'csv',
    rowCount: 200,
    byteSize: 4000,
    columns: profile.map((p) => ({ name: p.name, type: p.type })),
    profile,
    createdAt,
  });
  await api.db
    .insert(datasetVersions)
    .values([version(passed, good, new Date(Date.now() - 60_000)), version(failed, bad, new Date())]);
  await api.db.insert(validationReports).values([
    {
      id: `${passed}/wf-1`,
      datasetVersionId: passed,
      workflowId: `${name}-wf-1`,
      passed: true,
      errorCount: 0,
      warningCount: 1,
      reportKey: 'reports/1.json',
      summary: [],
    },
    {
      id: `${failed}/wf-2`,
      datasetVersionId: failed,
      workflowId: `${name}-wf-2`,
      passed: false,
      errorCount: 2,
      warningCount: 0,
      reportKey: 'reports/2.json',
      summary: [
        {
          column: 'price',
          check: 'max',
          severity: 'error',
          message: 'column "price": 200 of 200 rows are above the maximum 100',
        },
      ] as never,
    },
  ]);
  await api.db
    .insert(datasetAliases)
    .values({ datasetName: name, alias: 'latest', versionId: passed, updatedBy: 'test' });
  const runId = newRunId();
  await createPipelineRun(api.db, {
    id: runId,
    experiment: api.suite,
    status: 'finished',
    pipelineName: `${name}-pipeline`,
    datasetVersionId: passed,
    params: {},
    metrics: { rmse: 1.5 },
  });
  const model = unique(`${api.suite}-m`);
  await createModelVersion(api.db, { modelName: model, runId, createModel: true });
  return { name, passed, failed, runId, model };
}

let fixture: Awaited<ReturnType<typeof datasetWithVersions>>;
beforeAll(async () => {
  fixture = await datasetWithVersions();
});

describe('datasets and versions', () => {
  it('lists datasets with their version count and where @latest points', async () => {
    const answer = await call('GET', '/api/v1/datasets', tokens.read);
    expect(answer.status).toBe(200);
    const mine = answer.body.datasets.find((d: { name: string }) => d.name === fixture.name);
    expect(mine).toMatchObject({
      versionCount: 2,
      latestVersionId: fixture.passed,
      latestRowCount: 200,
      lastVersionAt: expect.stringMatching(/^20\d\d-/),
    });
  });

  it("lists a dataset's versions newest first, each with its verdict and aliases", async () => {
    const answer = await call('GET', `/api/v1/datasets/${fixture.name}/versions`, tokens.read);
    expect(answer.status).toBe(200);
    expect(answer.body.versions).toMatchObject([
      { id: fixture.failed, columnCount: 3, aliases: [], validation: { passed: false, errorCount: 2 } },
      { id: fixture.passed, columnCount: 3, aliases: ['latest'], validation: { passed: true, warningCount: 1 } },
    ]);
  });

  it('shows a version by name, alias or hash prefix, with its profile, reports and what was built from it', async () => {
    const bare = await call('GET', `/api/v1/datasets/${fixture.name}`, tokens.read);
    expect(bare.status).toBe(200);
    expect(bare.body).toMatchObject({
      id: fixture.passed,
      aliases: ['latest'],
      storedUri: expect.stringMatching(/^s3:\/\/.+\/datasets\//),
      validationReports: [{ passed: true, workflowId: `${fixture.name}-wf-1` }],
      lineage: {
        runs: [{ id: fixture.runId, status: 'finished', pipelineName: `${fixture.name}-pipeline` }],
        modelVersions: [{ modelName: fixture.model, version: 1, runId: fixture.runId }],
      },
    });
    expect(bare.body.profile.map((p: { name: string }) => p.name)).toEqual(['promo', 'price', 'store']);
    expect(
      (await call('GET', `/api/v1/datasets/${encodeURIComponent(`${fixture.name}@latest`)}`, tokens.read)).body.id,
    ).toBe(fixture.passed);
    const byPrefix = await call('GET', `/api/v1/datasets/${fixture.name}@ff99`, tokens.read);
    expect(byPrefix.body).toMatchObject({
      id: fixture.failed,
      validationReports: [{ passed: false, issues: [{ column: 'price', severity: 'error' }] }],
      lineage: { runs: [], modelVersions: [] },
    });
  });

  it('diffs two versions from their profiles: schema changes, statistics, PSI', async () => {
    const answer = await call('GET', `/api/v1/datasets/${fixture.name}/diff/${fixture.name}@ff99`, tokens.read);
    expect(answer.status).toBe(200);
    expect(answer.body.a).toEqual({ id: fixture.passed, rowCount: 200 });
    expect(answer.body.schemaChanges).toEqual([
      { change: 'removed', column: 'store', type: 'string' },
      { change: 'added', column: 'shop', type: 'string' },
    ]);
    const price = answer.body.columns.find((c: { column: string }) => c.column === 'price');
    expect(price.b.max).toBeGreaterThan(100 * price.a.max - 1);
    expect(price.psi).toBeGreaterThan(0.25);
    expect(price.shape.a).toHaveLength(12);
  });

  it('answers the contract inferred from a version, columns in the data order', async () => {
    const answer = await call('GET', `/api/v1/datasets/${fixture.name}/schema`, tokens.read);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      datasetVersionId: fixture.passed,
      inUse: false,
      contract: { allowExtraColumns: false, minRows: 1 },
    });
    expect(Object.keys(answer.body.contract.columns)).toEqual(['promo', 'price', 'store']);
    expect(answer.body.contract.columns.price).toEqual({ type: 'number', nullable: false });
  });

  it("answers a model version's lineage back to its dataset version", async () => {
    const answer = await call('GET', `/api/v1/models/${fixture.model}/versions/1/lineage`, tokens.read);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      modelName: fixture.model,
      version: 1,
      trigger: 'cli',
      alert: null,
      servedLineage: null,
      run: { id: fixture.runId, status: 'finished' },
      dataset: { id: fixture.passed, rowCount: 200, sourceUri: `/data/${fixture.name}.csv` },
      aliasMoves: [],
    });
    expect((await call('GET', `/api/v1/models/${fixture.model}/versions/7/lineage`, tokens.read)).status).toBe(404);
  });
});

describe('aliases', () => {
  it('refuses an alias on a version whose validation FAILED unless forced, and says why', async () => {
    const path = `/api/v1/datasets/${fixture.name}/aliases/golden`;
    const refused = await call('PUT', path, tokens.write, { version: 'ff99' });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringMatching(new RegExp(`^${fixture.failed} FAILED validation \\(2 errors, .*needs force`)),
    });
    const forced = await call('PUT', path, tokens.write, { version: fixture.failed, force: true });
    expect(forced.status).toBe(200);
    expect(forced.body).toEqual({
      datasetName: fixture.name,
      alias: 'golden',
      versionId: fixture.failed,
      previousVersionId: null,
    });
    const moved = await call('PUT', path, tokens.write, { version: 'latest' });
    expect(moved.body).toMatchObject({ versionId: fixture.passed, previousVersionId: fixture.failed });
    expect((await call('GET', `/api/v1/datasets/${fixture.name}@golden`, tokens.read)).body.aliases).toEqual([
      'golden',
      'latest',
    ]);
  });

  it('refuses a read token (403), a version of another dataset and a malformed alias (400)', async () => {
    const path = `/api/v1/datasets/${fixture.name}/aliases/golden`;
    const forbidden = await call('PUT', path, tokens.read, { version: fixture.passed });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('PERMISSION_DENIED');
    const other = await call('PUT', path, tokens.write, { version: 'someone-else@00aa' });
    expect(other.status).toBe(400);
    expect(other.body.error.message).toContain(`not "${fixture.name}"`);
    const malformed = await call(
      'PUT',
      `/api/v1/datasets/${fixture.name}/aliases/${encodeURIComponent('no spaces')}`,
      tokens.write,
      { version: fixture.passed },
    );
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.message).toContain('alias "no spaces" must be');
  });
});

describe('errors', () => {
  it('answers 404 naming an unknown dataset, whichever route asks', async () => {
    const name = unique(`${api.suite}-missing`);
    for (const [method, path] of [
      ['GET', `/api/v1/datasets/${name}`],
      ['GET', `/api/v1/datasets/${name}/versions`],
      ['GET', `/api/v1/datasets/${name}/schema`],
      ['PUT', `/api/v1/datasets/${name}/aliases/golden`],
    ] as const) {
      const answer = await call(method, path, tokens.write, method === 'PUT' ? { version: 'latest' } : undefined);
      expect(answer.status, path).toBe(404);
      expect(answer.body.error).toMatchObject({
        code: 'RESOURCE_DOES_NOT_EXIST',
        message: `dataset "${name}" does not exist`,
      });
    }
    const version = await call('GET', `/api/v1/datasets/${fixture.name}@0123456789`, tokens.read);
    expect(version.status).toBe(404);
    expect(version.body.error.message).toContain(`no alias or version hash of "${fixture.name}" matches "0123456789"`);
  });

  it('answers 400 naming the field for a malformed ref', async () => {
    for (const ref of ['bad name', `${fixture.name}@a@b`, `${fixture.name}@`, '@latest']) {
      const answer = await call('GET', `/api/v1/datasets/${encodeURIComponent(ref)}`, tokens.read);
      expect(answer.status, ref).toBe(400);
      expect(answer.body.error).toMatchObject({
        code: 'INVALID_PARAMETER_VALUE',
        message: expect.stringMatching(/^ref: ".*" must be a dataset name, name@alias or name@version-hash/),
      });
    }
    const diff = await call('GET', `/api/v1/datasets/${fixture.name}/diff/${encodeURIComponent('x y')}`, tokens.read);
    expect(diff.status).toBe(400);
    expect(diff.body.error.message).toMatch(/^b: /);
  });

  it('answers 404 naming an unknown schedule, and 403 to a read token that would pause one', async () => {
    const id = unique(`${api.suite}-schedule`);
    const missing = await call('GET', `/api/v1/schedules/${id}`, tokens.read);
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toBe(`schedule "${id}" does not exist`);
    expect((await call('POST', `/api/v1/schedules/${id}/pause`, tokens.write)).status).toBe(404);
    expect((await call('POST', `/api/v1/schedules/${id}/pause`, tokens.read)).status).toBe(403);
    expect((await call('GET', '/api/v1/schedules', tokens.read)).status).toBe(200);
  });
});

describe('writes need a write token, and name what is wrong', () => {
  const view = (name: string, overrides: Record<string, unknown> = {}) => ({
    name,
    entities: ['store_id'],
    timestamp: 'day',
    ttl: '3d',
    source: { query: 'SELECT store_id, day, units FROM somewhere' },
    features: { units: 'number' },
    ...overrides,
  });
  const viewName = () => unique('ro').replace(/-/g, '_').toLowerCase();

  it('refuses a read token that would add a dataset version or register a feature view (403); nothing is written', async () => {
    const name = unique(`${api.suite}-ro`);
    const ingest = await call('POST', `/api/v1/datasets/${name}/ingests`, tokens.read, { source: '/data/x.csv' });
    expect(ingest.status).toBe(403);
    expect(ingest.body.error).toMatchObject({
      code: 'PERMISSION_DENIED',
      message: expect.stringMatching(/has scope "read"; this route needs "write"/),
    });
    expect(await api.db.select().from(datasets).where(eq(datasets.name, name))).toEqual([]);

    const viewNamed = viewName();
    const registered = await call('POST', '/api/v1/features', tokens.read, { views: [view(viewNamed)] });
    expect(registered.status).toBe(403);
    expect(await api.db.select().from(featureViews).where(eq(featureViews.name, viewNamed))).toEqual([]);
    for (const path of [
      `/api/v1/features/${viewNamed}/load`,
      `/api/v1/features/${viewNamed}/materialize`,
      `/api/v1/features/${viewNamed}/schedules`,
    ]) {
      expect(
        (await call('POST', path, tokens.read, path.endsWith('schedules') ? { every: '1h' } : {})).status,
        path,
      ).toBe(403);
    }
    expect((await call('POST', '/api/v1/features', undefined, { views: [view(viewNamed)] })).status).toBe(401);
  });

  it('answers 400 naming the field of a bad ingest or view, before anything starts', async () => {
    const name = unique(`${api.suite}-bad`);
    const relative = await call('POST', `/api/v1/datasets/${name}/ingests`, tokens.write, { source: 'data/x.csv' });
    expect(relative.status).toBe(400);
    expect(relative.body.error).toMatchObject({
      field: 'body.source',
      message: expect.stringContaining('"data/x.csv" is a relative path on your machine'),
    });
    const badName = await call('POST', `/api/v1/datasets/${encodeURIComponent('../etc')}/ingests`, tokens.write, {
      source: '/data/x.csv',
    });
    expect(badName.status).toBe(400);
    expect(badName.body.error.message).toMatch(/^name: "\.\.\/etc" is not a dataset name/);
    const unknownField = await call('POST', `/api/v1/datasets/${name}/ingests`, tokens.write, {
      source: '/data/x.csv',
      configDir: '/',
    });
    expect(unknownField.body.error).toMatchObject({ field: 'body', message: 'body: unknown field "configDir"' });
    expect(await api.db.select().from(datasets).where(eq(datasets.name, name))).toEqual([]);

    const viewNamed = viewName();
    const ttl = await call('POST', '/api/v1/features', tokens.write, {
      views: [view(viewNamed), view(`${viewNamed}_b`, { ttl: '0d' })],
    });
    expect(ttl.status).toBe(400);
    expect(ttl.body.error).toMatchObject({
      field: 'body.views[1].ttl',
      message: expect.stringContaining('must be a positive duration'),
    });
    const stacked = await call('POST', '/api/v1/features', tokens.write, {
      views: [view(viewNamed, { source: { query: 'SELECT 1; DROP TABLE runs' } })],
    });
    expect(stacked.body.error).toMatchObject({
      field: 'body.views[0].source.query',
      message: expect.stringContaining('more than one statement'),
    });
    expect(await api.db.select().from(featureViews).where(eq(featureViews.name, viewNamed))).toEqual([]);

    const missing = await call('GET', `/api/v1/features/${viewNamed}`, tokens.read);
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toBe(
      `no feature view ${viewNamed} (register it with \`flywheel features apply <file.ts>\`)`,
    );
    const malformed = await call('GET', `/api/v1/features/${encodeURIComponent(`${viewNamed}@x`)}`, tokens.read);
    expect(malformed.body.error).toMatchObject({
      field: 'path.view',
      message: expect.stringContaining('must be a feature view name or name@version'),
    });
  });
});
