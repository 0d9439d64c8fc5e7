/**
 * A local data source from the CLI, through the API: `flywheel run` uploads a CSV that lies outside every data root
 * (`PUT /api/v1/uploads/{sha256}`) and the pipeline ingests the s3:// copy; the same file is stored once; a wrong hash,
 * a body that breaks off, one over the limit and a read token leave nothing in the bucket. Real Temporal, Postgres,
 * MinIO; needs `flywheel up --infra-only`.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { eq } from 'drizzle-orm';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../config/pipeline';
import { datasetVersions } from '../../schema/datasets';
import { createApp } from '../../server/app';
import { INCOMING_PREFIX, uploadKey } from '../../server/api/uploads';
import { loadConfig } from '../../config/env';
import type { PipelineInput } from '../../workflows/pipeline';
import { startCliServer, type CliServer } from './cliServer';
import { cli, demandPipeline, startHarness, unique, type Harness } from './harness';

let harness: Harness;
let server: CliServer;
/** A folder under no data root: the workers could not read a file here as a local path. */
let outside: string;
let pipeline: PipelineConfig;
let configFile: string;
let csv: Buffer;
let sha256: string;

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** PUT /api/v1/uploads/{hash}?name= on the suite's server. */
function put(hash: string, name: string, body: Buffer, token = server.tokens.write) {
  return fetch(`${server.url}/api/v1/uploads/${hash}?name=${encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(body),
  });
}

/** Every key of an upload: in place, or still being received. */
async function keysOf(hash: string): Promise<string[]> {
  const store = harness.services.store;
  return [...(await store.list(`uploads/${hash}/`)), ...(await store.list(`${INCOMING_PREFIX}${hash}`))];
}

beforeAll(async () => {
  harness = await startHarness();
  server = await startCliServer(harness);
  outside = await mkdtemp(join(tmpdir(), 'flywheel-upload-'));
  expect(loadConfig().dataRoots.filter((root) => !relative(root, outside).startsWith('..'))).toEqual([]);
  // A seed of its own: this run's file, and so its content hash, is no other run's.
  pipeline = await demandPipeline(outside, {
    data: { seed: Math.floor(Math.random() * 2 ** 31) },
    config: { evaluation: { gates: [] }, deploy: { enabled: false }, monitor: { enabled: false } },
  });
  csv = await readFile(pipeline.data.source);
  sha256 = sha(csv);
  // As a user writes it: the CSV beside the config, named relative to it.
  configFile = join(outside, 'pipeline.yaml');
  await writeFile(
    configFile,
    JSON.stringify({ ...pipeline, data: { ...pipeline.data, source: `./${basename(pipeline.data.source)}` } }),
  );
});

afterAll(async () => {
  for (const key of sha256 ? await keysOf(sha256) : []) await harness.services.store.remove(key);
  await server?.close();
  await harness?.stop();
  if (outside) await rm(outside, { recursive: true, force: true });
});

describe('a local data source through the API', () => {
  it('flywheel run uploads a CSV from outside every data root and the pipeline ingests the s3:// copy', async () => {
    const run = await cli(harness, ['run', configFile, '--wait'], server.env());
    expect(run.code, run.stderr).toBe(0);
    const source = `s3://${loadConfig().s3.bucket}/${uploadKey(sha256, basename(pipeline.data.source))}`;
    expect(run.stderr).toContain(`uploaded ${pipeline.data.source} (${(csv.length / 1000).toFixed(1)} kB) → ${source}`);
    expect(run.stdout).toMatch(/^started \S+\n/);
    const versionId = /dataset version +(\S+)/.exec(run.stdout)?.[1];
    expect(versionId, run.stdout).toBeDefined();
    const [version] = await harness.services.db
      .select()
      .from(datasetVersions)
      .where(eq(datasetVersions.id, versionId!));
    expect(version).toMatchObject({ datasetName: pipeline.data.dataset, sourceUri: source, format: 'csv' });
    expect(await harness.services.store.sizeOf(uploadKey(sha256, basename(pipeline.data.source)))).toBe(csv.length);
  });

  it('stores the same file once: a second upload and `schedule create` find it in place', async () => {
    const key = uploadKey(sha256, basename(pipeline.data.source));
    const before = await harness.services.store.list(`uploads/${sha256}/`);
    expect(before).toEqual([key]);
    const again = await put(sha256, basename(pipeline.data.source), csv);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ uploaded: false, bytes: csv.length, sha256 });

    const scheduleId = unique('upload-schedule');
    const created = await cli(
      harness,
      ['schedule', 'create', configFile, '--cron', '0 3 1 1 *', '--id', scheduleId, '--paused'],
      server.env(),
    );
    try {
      expect(created.code, created.stderr).toBe(0);
      expect(created.stderr).toMatch(new RegExp(`is already uploaded → s3://\\S+/${key}`));
      const described = await harness.services.client.schedule.getHandle(scheduleId).describe();
      const input = (described.action as { args: PipelineInput[] }).args[0]!;
      expect(input.config.data.source).toBe(`s3://${loadConfig().s3.bucket}/${key}`);
    } finally {
      await cli(harness, ['schedule', 'delete', scheduleId], server.env());
    }
    expect(await keysOf(sha256)).toEqual([key]);
  });

  it('refuses a body whose SHA-256 is not the one named, and keeps nothing of it', async () => {
    const body = Buffer.from('date,units_sold\n2026-01-01,3\n');
    const claimed = sha('something else');
    const answer = await put(claimed, 'wrong.csv', body);
    expect(answer.status).toBe(400);
    const { error } = (await answer.json()) as { error: { message: string } };
    expect(error.message).toBe(
      `contentHash: wrong.csv: the body's SHA-256 is ${sha(body)}, not ${claimed} (the file changed or was corrupted on the way); nothing was stored`,
    );
    expect(await keysOf(claimed)).toEqual([]);
  });

  it('needs a write token: a read token gets 403 and stores nothing', async () => {
    const body = Buffer.from(`read-only ${unique('x')}\n`);
    const answer = await put(sha(body), 'read.csv', body, server.tokens.read);
    expect(answer.status).toBe(403);
    expect(await keysOf(sha(body))).toEqual([]);
    const run = await cli(harness, ['run', configFile], server.env(server.tokens.read));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/scope/);
  });

  it('refuses bad names, a body that breaks off and one over the limit, keeping nothing', async () => {
    const body = Buffer.from(`partial ${unique('x')}\n`.repeat(4096));
    const hash = sha(body);
    expect((await put(hash, 'a/b.csv', body)).status).toBe(400);
    expect((await put(hash, '..', body)).status).toBe(400);

    // In process, so the handler has finished (and cleaned up) when the answer arrives.
    const config = loadConfig({ ...process.env, FLYWHEEL_SERVER_MAX_UPLOAD_BYTES: String(body.length) });
    const app: Hono = createApp({
      db: harness.services.db,
      objects: harness.services.store,
      config,
      temporal: () => Promise.resolve(harness.services.client),
    });
    const request = (name: string, size: number, stream: ReadableStream<Uint8Array>) =>
      app.request(`/api/v1/uploads/${hash}?name=${name}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${server.tokens.write}`, 'content-length': String(size) },
        body: stream,
        duplex: 'half',
      } as RequestInit);
    const breaksOff = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(body.subarray(0, body.length >> 1));
        controller.error(new Error('client hung up'));
      },
    });
    const broken = await request('partial.csv', body.length, breaksOff);
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: { message: string } }).error.message).toMatch(
      /partial\.csv: upload incomplete \(client hung up\); nothing was stored/,
    );
    const short = await request(
      'partial.csv',
      body.length,
      new ReadableStream({
        start: (c) => {
          c.enqueue(body.subarray(0, 10));
          c.close();
        },
      }),
    );
    expect(((await short.json()) as { error: { message: string } }).error.message).toContain(
      `body ended after 10 of ${body.length} bytes`,
    );
    const over = await request('partial.csv', body.length + 1, new ReadableStream({ start: (c) => c.close() }));
    expect(over.status).toBe(413);
    expect(await keysOf(hash)).toEqual([]);
    // The same file whole goes through, within the limit exactly.
    const whole = await request(
      'partial.csv',
      body.length,
      new ReadableStream({
        start: (c) => {
          c.enqueue(body);
          c.close();
        },
      }),
    );
    expect(await whole.json()).toMatchObject({ uploaded: true, bytes: body.length });
    expect(await keysOf(hash)).toEqual([uploadKey(hash, 'partial.csv')]);
    await harness.services.store.remove(uploadKey(hash, 'partial.csv'));
  });
});
