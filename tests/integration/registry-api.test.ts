/**
 * The model registry over HTTP, through the app in process (no port): MLflow's registry routes and Flywheel's
 * /api/v1/models on the real database — models, versions from runs, search, audited alias moves, scopes and errors.
 * Needs the local stack (`flywheel up --infra-only`).
 */
import { describe, expect, it } from 'vitest';
import { archiveModelVersion, listAliasEvents } from '../../store/registry';
import { createPipelineRun, newRunId } from '../../store/runs';
import { useApiSuite, type Answer } from './apiSuite';
import { unique } from './harness';

const MLFLOW = '/api/2.0/mlflow';
const api = useApiSuite('registry-api');
const { tokens, call } = api;

/** A finished run with metrics, params and a code version, as a pipeline writes it. */
async function finishedRun(): Promise<string> {
  const id = newRunId();
  await createPipelineRun(api.db, {
    id,
    experiment: api.suite,
    status: 'finished',
    params: { learningRate: 0.01 },
    metrics: { rmse: 1.5, r2: 0.8 },
    codeVersion: 'abc1234',
  });
  return id;
}

async function modelWithVersion(options: { runId?: string } = {}): Promise<{ name: string; runId: string }> {
  const name = unique(`${api.suite}-m`);
  const runId = options.runId ?? (await finishedRun());
  expect((await call('POST', `${MLFLOW}/registered-models/create`, tokens.write, { name })).status).toBe(200);
  expect(
    (
      await call('POST', `${MLFLOW}/model-versions/create`, tokens.write, {
        name,
        source: `runs:/${runId}/model`,
        run_id: runId,
      })
    ).status,
  ).toBe(200);
  return { name, runId };
}

describe('the registry over the MLflow API', () => {
  it('creates a model and a version from a run; the version carries the run lineage and MLflow field names', async () => {
    const name = unique(`${api.suite}-m`);
    const runId = await finishedRun();
    const created = await call('POST', `${MLFLOW}/registered-models/create`, tokens.write, {
      name,
      description: 'demand forecaster',
      tags: [{ key: 'team', value: 'ml' }],
    });
    expect(created.status).toBe(200);
    expect(created.body.registered_model).toMatchObject({
      name,
      description: 'demand forecaster',
      tags: [{ key: 'team', value: 'ml' }],
      aliases: [],
      latest_versions: [],
    });
    expect(typeof created.body.registered_model.creation_timestamp).toBe('number');
    expect((await call('POST', `${MLFLOW}/registered-models/create`, tokens.write, { name })).body.error_code).toBe(
      'RESOURCE_ALREADY_EXISTS',
    );

    const version = await call('POST', `${MLFLOW}/model-versions/create`, tokens.write, {
      name,
      source: `runs:/${runId}/model`,
      run_id: runId,
      tags: [{ key: 'stage', value: 'dev' }],
      description: 'first',
      run_link: '',
      model_id: '',
    });
    expect(version.status).toBe(200);
    expect(version.body.model_version).toMatchObject({
      name,
      version: '1',
      run_id: runId,
      source: `runs:/${runId}/model`,
      status: 'READY',
      current_stage: 'None',
      user_id: `${api.suite}-write`,
      description: 'first',
      tags: [{ key: 'stage', value: 'dev' }],
      aliases: [],
    });
    const got = await call('GET', `${MLFLOW}/model-versions/get`, tokens.read, { name, version: '1' });
    expect(got.body.model_version).toEqual(version.body.model_version);
    const download = await call('GET', `${MLFLOW}/model-versions/get-download-uri`, tokens.read, {
      name,
      version: '1',
    });
    expect(download.body.artifact_uri).toMatch(new RegExp(`^mlflow-artifacts:/\\d+/${runId}/artifacts/model$`));
    const model = await call('GET', `${MLFLOW}/registered-models/get`, tokens.read, { name });
    expect(model.body.registered_model.latest_versions.map((v: { version: string }) => v.version)).toEqual(['1']);

    const lineage = await call('GET', `/api/v1/models/${name}/versions/1`, tokens.read);
    expect(lineage.status).toBe(200);
    expect(lineage.body).toMatchObject({
      modelName: name,
      version: 1,
      status: 'active',
      gate: null,
      metrics: { rmse: 1.5, r2: 0.8 },
      params: { learningRate: 0.01 },
      lineage: {
        runId,
        workflowId: null,
        datasetVersionId: null,
        source: `runs:/${runId}/model`,
        codeVersion: 'abc1234',
      },
      evaluation: null,
    });

    const updated = await call('PATCH', `${MLFLOW}/model-versions/update`, tokens.write, {
      name,
      version: '1',
      description: 'the first',
    });
    expect(updated.body.model_version.description).toBe('the first');
    expect(
      (
        await call('POST', `${MLFLOW}/model-versions/set-tag`, tokens.write, {
          name,
          version: '1',
          key: 'owner',
          value: 'ana',
        })
      ).status,
    ).toBe(200);
    expect(
      (await call('DELETE', `${MLFLOW}/model-versions/delete-tag`, tokens.write, { name, version: '1', key: 'stage' }))
        .status,
    ).toBe(200);
    expect(
      (await call('GET', `${MLFLOW}/model-versions/get`, tokens.read, { name, version: 1 })).body.model_version.tags,
    ).toEqual([{ key: 'owner', value: 'ana' }]);
  });

  it('numbers concurrent versions of one model without gaps or duplicates', async () => {
    const { name } = await modelWithVersion();
    const created = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        call('POST', `${MLFLOW}/model-versions/create`, tokens.write, {
          name,
          source: `mlflow-artifacts:/0/outside/${i}`,
        }),
      ),
    );
    expect(created.map((c) => c.status)).toEqual(Array(6).fill(200));
    expect(created.map((c) => Number(c.body.model_version.version)).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it('searches models by name, LIKE and tag with order and page tokens, and versions by run and tag', async () => {
    const prefix = unique(`${api.suite}-s`);
    for (const [suffix, team] of [
      ['a', 'ml'],
      ['b', 'ops'],
      ['c', 'ml'],
    ] as const) {
      await call('POST', `${MLFLOW}/registered-models/create`, tokens.write, {
        name: `${prefix}-${suffix}`,
        tags: [{ key: 'team', value: team }],
      });
    }
    const names = (answer: Answer) => answer.body.registered_models.map((m: { name: string }) => m.name);
    const search = (query: Record<string, unknown>) =>
      call('GET', `${MLFLOW}/registered-models/search`, tokens.read, query);

    expect(names(await search({ filter: `name LIKE '${prefix}%'` }))).toEqual([
      `${prefix}-a`,
      `${prefix}-b`,
      `${prefix}-c`,
    ]);
    expect(names(await search({ filter: `name = '${prefix}-b'` }))).toEqual([`${prefix}-b`]);
    expect(
      names(await search({ filter: `name LIKE '${prefix}%' AND tags.team = 'ml'`, order_by: 'name DESC' })),
    ).toEqual([`${prefix}-c`, `${prefix}-a`]);
    const first = await search({
      filter: `name LIKE '${prefix}%'`,
      max_results: 2,
      order_by: ['last_updated_timestamp ASC', 'name ASC'],
    });
    expect(names(first)).toEqual([`${prefix}-a`, `${prefix}-b`]);
    const second = await search({
      filter: `name LIKE '${prefix}%'`,
      max_results: 2,
      order_by: ['last_updated_timestamp ASC', 'name ASC'],
      page_token: first.body.next_page_token,
    });
    expect(names(second)).toEqual([`${prefix}-c`]);
    expect(second.body.next_page_token).toBeUndefined();
    const bad = await search({ filter: `colour = 'red'` });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({
      error_code: 'INVALID_PARAMETER_VALUE',
      message: expect.stringContaining('filter'),
    });

    const runId = await finishedRun();
    await call('POST', `${MLFLOW}/model-versions/create`, tokens.write, {
      name: `${prefix}-a`,
      source: `runs:/${runId}/model`,
      run_id: runId,
      tags: [{ key: 'stage', value: 'dev' }],
    });
    await call('POST', `${MLFLOW}/model-versions/create`, tokens.write, {
      name: `${prefix}-a`,
      source: 's3://elsewhere/model',
    });
    const versions = (answer: Answer) =>
      answer.body.model_versions.map((v: { name: string; version: string }) => `${v.name}@${v.version}`);
    const searchVersions = (filter: string) => call('GET', `${MLFLOW}/model-versions/search`, tokens.read, { filter });
    expect(versions(await searchVersions(`run_id = '${runId}'`))).toEqual([`${prefix}-a@1`]);
    expect(versions(await searchVersions(`name = '${prefix}-a'`))).toEqual([`${prefix}-a@2`, `${prefix}-a@1`]);
    expect(versions(await searchVersions(`name = '${prefix}-a' AND tags.stage = 'dev'`))).toEqual([`${prefix}-a@1`]);
    expect(versions(await searchVersions(`source_path = 's3://elsewhere/model' AND name LIKE '${prefix}%'`))).toEqual([
      `${prefix}-a@2`,
    ]);
  });

  it('sets, reads and deletes aliases with an audit row for each move, and refuses what would orphan or archive one', async () => {
    const { name, runId } = await modelWithVersion();
    await call('POST', `${MLFLOW}/model-versions/create`, tokens.write, {
      name,
      source: `runs:/${runId}/model`,
      run_id: runId,
    });

    expect(
      (await call('POST', `${MLFLOW}/registered-models/alias`, tokens.admin, { name, alias: 'champion', version: '1' }))
        .status,
    ).toBe(200);
    const byAlias = await call('GET', `${MLFLOW}/registered-models/alias`, tokens.read, { name, alias: 'champion' });
    expect(byAlias.body.model_version).toMatchObject({ name, version: '1', aliases: ['champion'] });
    expect(
      (await call('GET', `${MLFLOW}/registered-models/get`, tokens.read, { name })).body.registered_model.aliases,
    ).toEqual([{ alias: 'champion', version: '1' }]);
    expect(await listAliasEvents(api.db, { modelName: name })).toEqual([
      expect.objectContaining({
        alias: 'champion',
        fromVersion: null,
        toVersion: 1,
        actor: `${api.suite}-admin`,
        reason: 'set over the MLflow API',
      }),
    ]);

    const moved = await call('PUT', `/api/v1/models/${name}/aliases/champion`, tokens.admin, {
      version: 2,
      reason: 'v2 beat v1 offline',
    });
    expect(moved.body).toMatchObject({ fromVersion: 1, toVersion: 2, moved: true, actor: `${api.suite}-admin` });
    const deleteHeld = await call('DELETE', `${MLFLOW}/model-versions/delete`, tokens.admin, { name, version: '2' });
    expect(deleteHeld).toMatchObject({
      status: 409,
      body: { error_code: 'INVALID_STATE', message: expect.stringContaining('@champion') },
    });
    expect((await call('DELETE', `${MLFLOW}/registered-models/delete`, tokens.admin, { name })).body.error_code).toBe(
      'INVALID_STATE',
    );

    await archiveModelVersion(api.db, name, 1);
    const onArchived = await call('POST', `${MLFLOW}/registered-models/alias`, tokens.admin, {
      name,
      alias: 'champion',
      version: '1',
    });
    expect(onArchived).toMatchObject({
      status: 409,
      body: { error_code: 'INVALID_STATE', message: expect.stringContaining('archived') },
    });
    const latest = await call('POST', `${MLFLOW}/registered-models/get-latest-versions`, tokens.read, {
      name,
      stages: ['Archived'],
    });
    expect(latest.body.model_versions).toEqual([expect.objectContaining({ version: '1', current_stage: 'Archived' })]);

    expect(
      (await call('DELETE', `${MLFLOW}/registered-models/alias`, tokens.admin, { name, alias: 'champion' })).status,
    ).toBe(200);
    expect(
      (await call('GET', `${MLFLOW}/registered-models/alias`, tokens.read, { name, alias: 'champion' })).body
        .error_code,
    ).toBe('RESOURCE_DOES_NOT_EXIST');
    // MLflow's deprecated stages: refused with the alias to use instead, and nothing moves.
    const staged = await call('POST', `${MLFLOW}/model-versions/transition-stage`, tokens.write, {
      name,
      version: '1',
      stage: 'Production',
      archive_existing_versions: true,
    });
    expect(staged).toEqual({
      status: 400,
      body: {
        error_code: 'INVALID_PARAMETER_VALUE',
        message: expect.stringContaining(`point an alias at it, e.g. client.set_registered_model_alias("${name}"`),
      },
    });

    const trail = await listAliasEvents(api.db, { modelName: name, oldestFirst: true });
    expect(trail.map((e) => [e.fromVersion, e.toVersion, e.reason])).toEqual([
      [null, 1, 'set over the MLflow API'],
      [1, 2, 'v2 beat v1 offline'],
      [2, null, 'deleted over the MLflow API'],
    ]);

    expect((await call('DELETE', `${MLFLOW}/model-versions/delete`, tokens.admin, { name, version: '2' })).status).toBe(
      200,
    );
    expect((await call('DELETE', `${MLFLOW}/registered-models/delete`, tokens.admin, { name })).status).toBe(200);
    expect((await call('GET', `${MLFLOW}/registered-models/get`, tokens.read, { name })).status).toBe(404);
  });

  it('refuses a read token on create and a write token on alias moves (403), and a request without a token (401)', async () => {
    const { name } = await modelWithVersion();
    const denied = await call('POST', `${MLFLOW}/registered-models/create`, tokens.read, {
      name: unique(`${api.suite}-denied`),
    });
    expect(denied).toMatchObject({
      status: 403,
      body: { error_code: 'PERMISSION_DENIED', message: expect.stringContaining('"write"') },
    });
    const versionDenied = await call('POST', `${MLFLOW}/model-versions/create`, tokens.read, {
      name,
      source: 's3://x/y',
    });
    expect(versionDenied.status).toBe(403);
    const aliasDenied = await call('POST', `${MLFLOW}/registered-models/alias`, tokens.write, {
      name,
      alias: 'champion',
      version: '1',
    });
    expect(aliasDenied).toMatchObject({
      status: 403,
      body: { error_code: 'PERMISSION_DENIED', message: expect.stringContaining('"admin"') },
    });
    const v1Denied = await call('PUT', `/api/v1/models/${name}/aliases/champion`, tokens.write, {
      version: 1,
      reason: 'try',
    });
    expect(v1Denied).toMatchObject({ status: 403, body: { error: { code: 'PERMISSION_DENIED' } } });
    expect((await call('GET', `${MLFLOW}/registered-models/get`, undefined, { name })).status).toBe(401);
    expect(await listAliasEvents(api.db, { modelName: name })).toEqual([]);
  });

  it('answers an unknown model with 404 in each API shape and an unknown field with 400 naming it', async () => {
    const missing = unique(`${api.suite}-missing`);
    const mlflow404 = await call('GET', `${MLFLOW}/registered-models/get`, tokens.read, { name: missing });
    expect(mlflow404).toEqual({
      status: 404,
      body: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: expect.stringContaining(missing) },
    });
    expect(
      (await call('GET', `${MLFLOW}/model-versions/get`, tokens.read, { name: missing, version: '1' })).status,
    ).toBe(404);
    expect(
      (await call('POST', `${MLFLOW}/model-versions/create`, tokens.write, { name: missing, source: 's3://x/y' })).body
        .error_code,
    ).toBe('RESOURCE_DOES_NOT_EXIST');
    const v1404 = await call('GET', `/api/v1/models/${missing}`, tokens.read);
    expect(v1404).toMatchObject({ status: 404, body: { error: { code: 'RESOURCE_DOES_NOT_EXIST' } } });

    const unknownField = await call('POST', `${MLFLOW}/registered-models/create`, tokens.write, {
      name: missing,
      colour: 'red',
    });
    expect(unknownField).toEqual({
      status: 400,
      body: { error_code: 'INVALID_PARAMETER_VALUE', message: expect.stringContaining('"colour"') },
    });
    const badVersion = await call('GET', `${MLFLOW}/model-versions/get`, tokens.read, {
      name: missing,
      version: 'one',
    });
    expect(badVersion.body).toMatchObject({
      error_code: 'INVALID_PARAMETER_VALUE',
      message: expect.stringContaining('version'),
    });
    const v1Unknown = await call('POST', `/api/v1/models/${missing}/versions`, tokens.write, {
      source: 's3://x/y',
      colour: 'red',
    });
    expect(v1Unknown).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_PARAMETER_VALUE', message: expect.stringContaining('"colour"') } },
    });
    const reserved = await call('POST', `${MLFLOW}/registered-models/alias`, tokens.admin, {
      name: missing,
      alias: 'latest',
      version: '1',
    });
    expect(reserved.body).toMatchObject({
      error_code: 'INVALID_PARAMETER_VALUE',
      message: expect.stringContaining('alias'),
    });
  });
});

describe('the registry over /api/v1/models', () => {
  it('registers versions, lists models with aliases and counts, shows versions with gate verdicts, and patches tags', async () => {
    const name = unique(`${api.suite}-v1`);
    const runId = await finishedRun();
    const created = await call('POST', `/api/v1/models/${name}/versions`, tokens.write, {
      runId,
      tags: { gate: 'passed' },
      description: 'from the API',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      modelName: name,
      version: 1,
      gate: 'passed',
      lineage: { runId },
      userId: `${api.suite}-write`,
    });
    await call('POST', `/api/v1/models/${name}/versions`, tokens.write, { source: 's3://elsewhere/model' });
    expect((await call('POST', `/api/v1/models/${name}/versions`, tokens.write, {})).body.error).toMatchObject({
      code: 'INVALID_PARAMETER_VALUE',
      field: 'source',
    });
    await call('PUT', `/api/v1/models/${name}/aliases/champion`, tokens.admin, { version: 1, reason: 'first release' });

    const listed = await call('GET', '/api/v1/models', tokens.read, { filter: `name = '${name}'` });
    expect(listed.body.models).toEqual([
      expect.objectContaining({
        name,
        versionCount: 2,
        latestVersion: 2,
        aliases: [{ alias: 'champion', version: 1 }],
      }),
    ]);
    const shown = await call('GET', `/api/v1/models/${name}`, tokens.read);
    expect(shown.body.versions).toEqual([
      expect.objectContaining({ version: 1, gate: 'passed', aliases: ['champion'], metrics: { rmse: 1.5, r2: 0.8 } }),
      expect.objectContaining({ version: 2, gate: null, aliases: [], source: 's3://elsewhere/model' }),
    ]);
    expect(shown.body.aliasEvents).toEqual([
      expect.objectContaining({
        alias: 'champion',
        fromVersion: null,
        toVersion: 1,
        reason: 'first release',
        actor: `${api.suite}-admin`,
      }),
    ]);

    const patched = await call('PATCH', `/api/v1/models/${name}/versions/1/tags`, tokens.write, {
      tags: { owner: 'ana', gate: null },
    });
    expect(patched.body.tags).toEqual({ owner: 'ana' });
    expect(
      (await call('PATCH', `/api/v1/models/${name}/versions/1/tags`, tokens.read, { tags: { owner: 'bob' } })).status,
    ).toBe(403);

    const removed = await call('DELETE', `/api/v1/models/${name}/aliases/champion`, tokens.admin, {
      reason: 'retired',
    });
    expect(removed.body).toMatchObject({ fromVersion: 1, actor: `${api.suite}-admin` });
    expect(
      (await call('GET', `/api/v1/models/${name}/versions/1`, tokens.read)).body.aliasEvents.map(
        (e: { reason: string }) => e.reason,
      ),
    ).toEqual(['first release', 'retired']);
  });
});
