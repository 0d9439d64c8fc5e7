/**
 * The cluster topology under failure: a Temporal cluster (four services on Postgres, mTLS) on a bridge, 3 main and 2
 * training workers on 3 network hosts (namespaces), 50 pipelines started at once; one host is cut off
 * (`ip link set … down`) and one worker SIGKILLed mid-run. All 50 finish, each with one dataset version, one run and
 * one model version, and no activity ran to completion twice (counted from every worker's own log, not the server's).
 */
import { type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inArray } from 'drizzle-orm';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../config/env';
import { generateDemand } from '../../examples/demand/generate';
import { datasetVersions } from '../../schema/datasets';
import { modelVersions } from '../../schema/models';
import { runs } from '../../schema/runs';
import { clientTls, startCluster, stopCluster, type ClusterState } from '../../scripts/cluster';
import {
  canCreateHosts,
  completedActivities,
  type CompletedActivity,
  createHostNetwork,
  forwardPort,
  startWorker,
  type HostNetwork,
  type WorkerProcess,
} from '../../scripts/topology';
import { connectDb, closeDb, type Db } from '../../storage/db';
import type { PipelineInput, PipelineResult } from '../../workflows/pipeline';
import { demandPipeline, eventually, unique } from './harness';

const PIPELINES = 50;
const cannot = canCreateHosts();
const config = loadConfig();
let network: HostNetwork | undefined;
let cluster: ClusterState | undefined;
let client: Client | undefined;
let db: Db | undefined;
const forwarders: { close(): void }[] = [];
// Ends the test's waits on workflow results before the connection closes (a failed test leaves them long-polling).
const waits = new AbortController();
const workers: WorkerProcess[] = [];
let workDir = '';
const queues = { main: unique('cluster-main'), trainCpu: '', trainGpu: '' };
queues.trainCpu = `${queues.main}-train-cpu`;
queues.trainGpu = `${queues.main}-train-gpu`;

beforeAll(async () => {
  if (cannot) return;
  workDir = await mkdtemp(join(tmpdir(), 'flywheel-cluster-'));
  network = createHostNetwork('fwc', 3, 213);
  const database = new URL(config.databaseUrl);
  cluster = await startCluster({
    dir: join(config.stateDir, 'test-cluster'),
    databaseUrl: config.databaseUrl,
    databasePrefix: `${database.pathname.slice(1)}_test_temporal`,
    ip: network.gatewayIp,
    mtls: true,
    cacheDir: config.cacheDir,
    log: () => undefined,
  });
  // Postgres and MinIO listen on loopback: the hosts reach them through the bridge, like any network service.
  forwarders.push(await forwardPort(network.gatewayIp, Number(database.port || 5432)));
  forwarders.push(await forwardPort(network.gatewayIp, config.s3.port));
  const hostDatabase = new URL(config.databaseUrl);
  hostDatabase.hostname = network.gatewayIp;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: cluster.address,
    TEMPORAL_TLS_CLIENT_CERT_PATH: cluster.tls!.clientCertFile,
    TEMPORAL_TLS_CLIENT_KEY_PATH: cluster.tls!.clientKeyFile,
    TEMPORAL_TLS_SERVER_CA_PATH: cluster.tls!.caFile,
    TEMPORAL_TLS_SERVER_NAME: cluster.tls!.serverName,
    DATABASE_URL: hostDatabase.toString(),
    FLYWHEEL_S3_ENDPOINT: `http://${network.gatewayIp}:${config.s3.port}`,
    FLYWHEEL_S3_ACCESS_KEY: config.s3.accessKey,
    FLYWHEEL_S3_SECRET_KEY: config.s3.secretKey,
    FLYWHEEL_S3_BUCKET: config.s3.bucket,
    FLYWHEEL_TASK_QUEUE: queues.main,
    FLYWHEEL_TRAIN_CPU_QUEUE: queues.trainCpu,
    FLYWHEEL_TRAIN_GPU_QUEUE: queues.trainGpu,
    FLYWHEEL_DATA_ROOTS: workDir,
  };
  const [host1, host2, host3] = network.hosts as [NonNullable<HostNetwork['hosts'][0]>, ...HostNetwork['hosts']];
  // Host 2 runs one main worker alone: cutting it off strands workflow tasks and stage activities, not training.
  const layout: [WorkerProcess['kind'], typeof host1][] = [
    ['main', host1],
    ['train', host1],
    ['main', host2!],
    ['main', host3!],
    ['train', host3!],
  ];
  for (const [index, [kind, host]] of layout.entries()) {
    workers.push(
      await startWorker(kind, {
        host,
        env: { ...env, FLYWHEEL_WORKER_METRICS_HOST: host.ip },
        logFile: join(workDir, `worker-${index + 1}-${kind}-${host.name}.log`),
      }),
    );
  }
  const connection = await Connection.connect({ address: cluster.address, tls: clientTls(cluster.tls) });
  client = new Client({ connection, namespace: 'default' });
  db = connectDb(config.databaseUrl, 2);
}, 900_000);

afterAll(async () => {
  // Workers first: a cut-off host reconnecting would finish its stale attempts (Temporal refuses their results).
  await Promise.all(
    workers.map(async (worker) => {
      worker.child.kill('SIGTERM');
      const timer = setTimeout(() => worker.child.kill('SIGKILL'), 15_000);
      await worker.exited;
      clearTimeout(timer);
    }),
  );
  for (const host of network?.hosts ?? []) network!.restore(host);
  forwarders.forEach((forwarder) => forwarder.close());
  waits.abort();
  await client?.connection.close();
  await stopCluster(cluster);
  network?.destroy();
  if (db) await closeDb(db);
}, 120_000);

/** Activities a worker's log shows started and not (yet) completed or failed. */
async function inFlight(logFile: string): Promise<CompletedActivity[]> {
  const ended = new Set((await completedActivities(logFile, /"Activity (completed|failed)/)).map(key));
  return (await completedActivities(logFile, /"Activity started"/)).filter((a) => !ended.has(key(a)));
}

const key = (a: CompletedActivity) => `${a.workflowId}/${a.activityId}/${a.attempt}`;

function kill(child: ChildProcess): Promise<unknown> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  return exited;
}

it.skipIf(Boolean(cannot))(
  `runs ${PIPELINES} pipelines at once on 5 workers across 3 hosts; a host is cut off and a worker SIGKILLed`,
  async () => {
    const source = join(workDir, 'demand.csv');
    await generateDemand(source, { stores: 3, items: 5, days: 60 });
    const configs = await Promise.all(
      Array.from({ length: PIPELINES }, () =>
        demandPipeline(workDir, { source, config: { deploy: { enabled: false } } }),
      ),
    );
    const started = await Promise.all(
      configs.map(async (pipeline) => {
        const input: PipelineInput = {
          config: pipeline,
          trigger: { kind: 'test' },
          queues: { trainCpu: queues.trainCpu, trainGpu: queues.trainGpu },
        };
        const handle = await client!.workflow.start('pipelineWorkflow', {
          workflowId: unique(pipeline.name),
          taskQueue: queues.main,
          args: [input],
        });
        const result = client!.withAbortSignal(waits.signal, () => handle.result()) as Promise<PipelineResult>;
        result.catch(() => undefined); // read below; aborted in afterAll when a start failed
        return { pipeline, handle, result };
      }),
    );
    const workflowIds = started.map((s) => s.handle.workflowId);
    // Outcomes are collected as they come, so a failure is reported with its pipeline rather than as a timeout.
    const outcomes = started.map(({ result }) =>
      result.then(
        (value) => ({ value }),
        (error: Error) => ({ error }),
      ),
    );

    // Mid-run: some pipelines trained, most not yet.
    await eventually(
      async () => {
        const trained = await db!.select().from(runs).where(inArray(runs.workflowId, workflowIds));
        return trained.filter((run) => run.status === 'finished').length >= 5;
      },
      600_000,
      'five trained pipelines',
    );
    const [, train1, main2] = workers as [WorkerProcess, WorkerProcess, WorkerProcess];
    // Cut host 2 off while its worker is in the middle of a stage (when one comes within a minute).
    await eventually(async () => (await inFlight(main2.logFile)).length > 0, 60_000, 'a stage on host 2').catch(
      () => undefined,
    );
    network!.cut(main2.host!);
    const cutAt = Date.now();
    // SIGKILL host 1's training worker in the middle of a training run.
    await eventually(async () => (await inFlight(train1.logFile)).length > 0, 120_000, 'a training run on host 1');
    await kill(train1.child);
    const killedMidRun = await inFlight(train1.logFile);
    expect(killedMidRun.length).toBeGreaterThan(0);

    const settled = await Promise.all(outcomes);
    const failed = settled
      .map((outcome, i) => ('error' in outcome ? `${workflowIds[i]}: ${outcome.error.message}` : undefined))
      .filter(Boolean);
    expect(failed).toEqual([]);
    for (const outcome of settled) expect('value' in outcome && outcome.value.model?.version).toBe(1);

    // One dataset version, one run, one model version per pipeline.
    const versions = await db!
      .select()
      .from(datasetVersions)
      .where(
        inArray(
          datasetVersions.datasetName,
          configs.map((c) => c.data.dataset),
        ),
      );
    expect(versions).toHaveLength(PIPELINES);
    expect(new Set(versions.map((v) => v.datasetName)).size).toBe(PIPELINES);
    const trained = await db!.select().from(runs).where(inArray(runs.workflowId, workflowIds));
    expect(trained).toHaveLength(PIPELINES);
    expect(trained.every((run) => run.status === 'finished')).toBe(true);
    const registered = await db!
      .select()
      .from(modelVersions)
      .where(
        inArray(
          modelVersions.modelName,
          configs.map((c) => c.model),
        ),
      );
    expect(registered).toHaveLength(PIPELINES);

    // No activity ran to completion twice on connected workers (the cut-off host's logs are on this machine's disk).
    // A stage the cut-off host finished after the cut never reached Temporal (its result is refused): it was run again
    // elsewhere, and its effect is still once (the counts above). Those are counted apart.
    const completed = (await Promise.all(workers.map((w) => completedActivities(w.logFile)))).flat();
    const stranded = (c: CompletedActivity) => c.logFile === main2.logFile && c.at >= cutAt;
    const ours = completed.filter((c) => workflowIds.some((id) => c.workflowId.startsWith(id)) && !stranded(c));
    const byActivity = new Map<string, number>();
    for (const c of ours)
      byActivity.set(`${c.workflowId}/${c.activityId}`, (byActivity.get(`${c.workflowId}/${c.activityId}`) ?? 0) + 1);
    const twice = [...byActivity].filter(([, count]) => count > 1).map(([key]) => key);
    expect(twice).toEqual([]);
    // Every pipeline's stages ran: each workflow completed its training activity exactly once.
    for (const id of workflowIds)
      expect(ours.filter((c) => c.workflowId.startsWith(id) && c.activityType === 'trainModel')).toHaveLength(1);
    // The training run the SIGKILL interrupted was finished by the other training worker, on a later attempt.
    for (const lost of killedMidRun) {
      const finished = ours.find((c) => c.workflowId === lost.workflowId && c.activityId === lost.activityId);
      expect(finished?.logFile).toBe(workers[4]!.logFile);
      expect(finished?.attempt).toBeGreaterThan(lost.attempt);
    }
    // Every worker did some of the work before its failure, the survivors the rest.
    for (const worker of workers) expect(ours.some((c) => c.logFile === worker.logFile)).toBe(true);
  },
  1_500_000,
);
