/**
 * Serving replicas behind a load balancer, on the real stack: three serving processes' model sets (each with its own
 * database pool and HTTP server) on one alias report themselves in Postgres; the deploy activity confirms a release
 * only when every live replica answers with it, names how many did, forgets a stopped replica, and sees a replica
 * whose NOTIFY connection was killed catch up. A serving process that does not register is confirmed over HTTP.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDeployActivities, type DeployResult } from '../../activities/deploy';
import { createReleaseActivities } from '../../activities/release';
import { loadConfig } from '../../config/env';
import { deployments, predictions } from '../../schema/deployments';
import { servingReplicas } from '../../schema/servingReplicas';
import { createServingHandler } from '../../serving/app';
import { ServedModels, type ServedModelsOptions } from '../../serving/models';
import { PredictionLog } from '../../serving/predictionLog';
import { closeDb, connectDb, type Db } from '../../storage/db';
import { recordDatasetVersion } from '../../store/datasets';
import { registerPipelineVersion, SERVING_CHANNEL } from '../../store/registry';
import { createRun } from '../../store/runs';
import { isLiveReplica, listServingReplicas } from '../../store/servingReplicas';
import { loadTf } from '../../training/backend';
import { buildModel, serializeModel } from '../../training/model';
import { fitPreprocessor } from '../../training/preprocess';
import { connectServices, type Services } from '../../workers/wiring';
import { inActivity } from './activityContext';
import { eventually, unique } from './harness';

const suite = unique('replicas');
/** The replicas answer this alias only: the shared database's other deployments stay out of them. */
const alias = suite;
/** Served by a process that does not register (as one older than the replica registry). */
const unregisteredAlias = `${suite}-old`;
const modelName = `${suite}-model`;

interface Replica {
  name: string;
  db: Db;
  models: ServedModels;
  log: PredictionLog;
  server: Server;
  url: string;
  stopped: boolean;
}

let services: Services;
const replicas: Replica[] = [];

/** One serving process's parts, on a pool of its own named `<suite>-<name>` in pg_stat_activity. */
async function startReplica(name: string, options: ServedModelsOptions = {}): Promise<Replica> {
  const databaseUrl = new URL(loadConfig().databaseUrl);
  databaseUrl.searchParams.set('application_name', `${suite}-${name}`);
  const db = connectDb(databaseUrl.toString(), 3);
  const log = new PredictionLog(db, 500, 50);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const models = new ServedModels(db, services.store, { alias, url, beatMs: 500, ...options });
  server.on('request', createServingHandler(models, log));
  await models.start(1_000);
  const replica = { name, db, models, log, server, url, stopped: false };
  replicas.push(replica);
  return replica;
}

async function stopReplica(replica: Replica): Promise<void> {
  if (replica.stopped) return;
  replica.stopped = true;
  await replica.models.stop();
  await new Promise((resolve) => replica.server.close(resolve));
  await replica.log.close();
  await closeDb(replica.db);
}

/** An (untrained) TF.js regressor registered as the model's next version; `seed` makes versions differ. */
async function registerVersion(datasetVersionId: string, seed: number): Promise<number> {
  const { db, store } = services;
  const { tf } = await loadTf();
  const columns = { x: ['1', '2', '3', '4'], c: ['a', 'b', 'a', 'b'], y: ['1', '2', '3', '4'] };
  const pre = fitPreprocessor(columns, [0, 1, 2, 3], {
    task: 'regression',
    target: 'y',
    numeric: ['x'],
    categorical: ['c'],
  });
  const network = buildModel(tf, pre, {
    type: 'mlp',
    hiddenUnits: [4],
    activation: 'relu',
    optimizer: 'adam',
    learningRate: 0.01,
    seed,
  });
  const artifact = JSON.stringify(serializeModel(network, pre));
  network.dispose();
  const run = await createRun(db, { experimentName: suite });
  const prefix = `models/${modelName}/${run.id}/`;
  await store.putBuffer(`${prefix}model.json`, artifact);
  const { version } = await registerPipelineVersion(db, {
    workflowId: unique('wf'),
    modelName,
    task: 'regression',
    runId: run.id,
    datasetVersionId,
    params: {},
    metrics: {},
    artifactKey: `${prefix}model.json`,
    predictionReferenceKey: `${prefix}prediction-reference.json`,
  });
  return version;
}

const deps = () => ({ db: services.db, store: services.store, temporal: services.client, workflowTaskQueue: suite });

/** The deploy activity, run as a worker would: alias move, deployment row, then the wait for serving. */
const deploy = (version: number, target = alias, servingUrl = replicas[0]!.url): Promise<DeployResult> =>
  inActivity(() =>
    createDeployActivities(deps()).deployModelVersion({
      workflowId: unique('deploy'),
      pipelineName: suite,
      modelName,
      version,
      alias: target,
      servingUrl,
      actor: 'test',
      reason: 'replica test',
    }),
  ).result;

/** What a replica answers with, over HTTP: its metadata's version and a prediction's. */
async function answeredVersions(replica: Replica): Promise<{ metadata: string[]; predicted: number }> {
  const metadata = await fetch(`${replica.url}/v2/models/${modelName}`);
  expect(metadata.status, replica.name).toBe(200);
  const predicted = await fetch(`${replica.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: modelName, instances: [{ x: 2.5, c: 'a' }] }),
  });
  expect(predicted.status, replica.name).toBe(200);
  return {
    metadata: ((await metadata.json()) as { versions: string[] }).versions,
    predicted: ((await predicted.json()) as { version: number }).version,
  };
}

const liveReplicas = async () => (await listServingReplicas(services.db, alias)).filter(isLiveReplica);

let v1: number;
let v2: number;

beforeAll(async () => {
  services = await connectServices(loadConfig());
  const datasetVersionId = `${suite}-data@0000000000000000`;
  await recordDatasetVersion(services.db, {
    id: datasetVersionId,
    datasetName: `${suite}-data`,
    contentHash: '0'.repeat(64),
    objectKey: `datasets/${suite}-data/none.csv`,
    sourceUri: 'test',
    rowCount: 4,
    byteSize: 0,
    columns: [],
    profile: [],
  });
  v1 = await registerVersion(datasetVersionId, 1);
  v2 = await registerVersion(datasetVersionId, 2);
  for (const name of ['a', 'b', 'c']) await startReplica(name);
});

afterAll(async () => {
  for (const replica of replicas) await stopReplica(replica);
  if (services) {
    await services.db.delete(deployments).where(inArray(deployments.alias, [alias, unregisteredAlias]));
    await services.db.delete(predictions).where(eq(predictions.modelName, modelName));
    await services.db.delete(servingReplicas).where(inArray(servingReplicas.alias, [alias, unregisteredAlias]));
    await services.close();
  }
});

it('registers each replica with its URL, and confirms a deploy only once all three answer with the version', async () => {
  const registered = await liveReplicas();
  expect(registered.map((r) => r.url).sort()).toEqual(replicas.map((r) => r.url).sort());
  expect(registered.map((r) => r.id).sort()).toEqual(replicas.map((r) => r.models.replicaId).sort());

  const first = await deploy(v1);
  expect(first).toMatchObject({ serving: 'confirmed', replicas: 3 });
  // Confirmed means answering: every replica serves v1 at once, no waiting here.
  for (const replica of replicas) expect(await answeredVersions(replica)).toEqual({ metadata: ['1'], predicted: v1 });

  const second = await deploy(v2);
  expect(second).toMatchObject({ serving: 'confirmed', replicas: 3, previousVersion: v1 });
  for (const replica of replicas) expect(await answeredVersions(replica)).toEqual({ metadata: ['2'], predicted: v2 });
  const rows = await liveReplicas();
  expect(rows.map((r) => r.models[modelName])).toEqual([v2, v2, v2]);
});

it("sets a rollout's traffic route only once every replica serving the model has loaded the candidate", async () => {
  const release = createReleaseActivities(deps());
  const workflowId = unique('rollout');
  await inActivity(() =>
    release.setTrafficRoute({
      modelName,
      mode: 'canary',
      baseVersion: v2,
      candidateVersion: v1,
      weight: 0.5,
      workflowId,
    }),
  ).result;
  for (const replica of replicas) expect(replica.models.route(modelName)?.candidate.version, replica.name).toBe(v1);
  expect((await liveReplicas()).map((r) => r.routes[modelName])).toEqual([v1, v1, v1]);
  await inActivity(() => release.clearTrafficRoute({ modelName, workflowId })).result;
  await eventually(
    async () => (await liveReplicas()).every((r) => r.routes[modelName] === undefined),
    20_000,
    'every replica to drop the route',
  );
});

it('forgets a stopped replica: the next deploy is confirmed by the two left', async () => {
  const [a, b, c] = replicas as [Replica, Replica, Replica];
  await stopReplica(c);
  // A stopped replica removes its row at once; one that crashed would count as gone after 3 missed beats.
  expect((await liveReplicas()).map((r) => r.url).sort()).toEqual([a.url, b.url].sort());
  const result = await deploy(v1);
  expect(result).toMatchObject({ serving: 'confirmed', replicas: 2 });
  for (const replica of [a, b]) expect(await answeredVersions(replica)).toEqual({ metadata: ['1'], predicted: v1 });
});

it('confirms a replica whose NOTIFY connection was killed once it catches up', async () => {
  const b = replicas[1]!;
  const listenerOf = async (replica: Replica) =>
    (
      await services.db.execute<{ pid: number }>(sql`SELECT pid FROM pg_stat_activity
        WHERE application_name = ${`${suite}-${replica.name}`} AND query = ${`LISTEN ${SERVING_CHANNEL}`}`)
    ).rows.map((r) => r.pid);
  const [pid] = await listenerOf(b);
  expect(pid).toBeDefined();
  await services.db.execute(sql`SELECT pg_terminate_backend(${pid!})`);
  await eventually(async () => !b.models.listening, 10_000, 'replica b to notice its listener was killed');

  // b may have no listener when the alias moves: its poll (or the refresh after its next LISTEN) finds the move.
  const result = await deploy(v2);
  expect(result).toMatchObject({ serving: 'confirmed', replicas: 2 });
  for (const replica of replicas.slice(0, 2))
    expect(await answeredVersions(replica)).toEqual({ metadata: ['2'], predicted: v2 });
  await eventually(async () => b.models.listening, 20_000, 'replica b to LISTEN again');
  expect(await listenerOf(b)).not.toContain(pid);
});

it('falls back to asking the serving URL when no replica of the alias is registered', async () => {
  const old = await startReplica('old', { alias: unregisteredAlias, report: false });
  expect(await listServingReplicas(services.db, unregisteredAlias)).toEqual([]);
  const result = await deploy(v1, unregisteredAlias, old.url);
  expect(result.serving).toBe('confirmed');
  expect(result.replicas).toBeUndefined();
  expect(old.models.get(modelName)?.version).toBe(v1);
});
