/**
 * `run --wait` follows a pipeline through the API: a real local HTTP server plays the Flywheel server answering 503
 * (Temporal restarting), then not at all (the server restarting), then the pipeline's end. Only a real failure fails.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pollUntil } from '../../cli/api';
import { followPipeline, PipelineFailedError, type PipelineStatus } from '../../cli/pipelines';
import { temporalOutage } from '../../server/temporalOutage';
import type { PipelineResult, StageStatus } from '../../workflows/pipeline';

type Answer = { status: number; body: unknown } | 'close';
let server: Server;
let port: number;
let answers: Answer[];
const seen: { path: string; auth?: string }[] = [];
const saved = { url: process.env.FLYWHEEL_URL, token: process.env.FLYWHEEL_TOKEN };

function handle(request: IncomingMessage, response: ServerResponse): void {
  seen.push({ path: request.url!, auth: request.headers.authorization });
  const next = answers.length > 1 ? answers.shift()! : answers[0]!;
  if (next === 'close') {
    request.socket.destroy();
    return;
  }
  response.writeHead(next.status, { 'content-type': 'application/json' }).end(JSON.stringify(next.body));
}

async function listen(on = 0): Promise<void> {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(on, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
}

beforeEach(async () => {
  answers = [];
  seen.length = 0;
  await listen();
  process.env.FLYWHEEL_URL = `http://127.0.0.1:${port}`;
  process.env.FLYWHEEL_TOKEN = 'fw_read_unit';
});

afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
  process.env.FLYWHEEL_URL = saved.url;
  process.env.FLYWHEEL_TOKEN = saved.token;
  if (saved.url === undefined) delete process.env.FLYWHEEL_URL;
  if (saved.token === undefined) delete process.env.FLYWHEEL_TOKEN;
});

const stage = (name: StageStatus['name'], status: StageStatus['status'], summary?: string): StageStatus => ({
  name,
  status,
  summary,
  startedAt: 1_000,
  endedAt: status === 'running' ? undefined : 2_500,
});
const pipeline = (status: string, stages: StageStatus[], extra: Partial<PipelineStatus> = {}): PipelineStatus => ({
  workflowId: 'wf-1',
  status,
  startedAt: '2026-12-01T00:00:00Z',
  closedAt: null,
  model: 'm',
  pipeline: 'p',
  stages,
  uiUrl: 'http://ui/wf-1',
  ...extra,
});
const unavailable = {
  status: 503,
  body: {
    error: {
      code: 'TEMPORARILY_UNAVAILABLE',
      message: 'Temporal is unavailable (14 UNAVAILABLE: No connection established); try again shortly',
    },
  },
};
const result = {
  datasetVersionId: 'd1',
  datasetReused: false,
  runId: 'run-1',
  backend: 'cpu',
  trainingQueue: 'q',
  metrics: { r2: 0.9 },
  model: null,
  deployment: null,
  stages: [stage('ingest', 'done'), stage('train', 'done', 'r2 0.9')],
} as unknown as PipelineResult;

describe('following a pipeline through the API', () => {
  it('waits through 503s and a server that does not answer, printing each stage once, and returns the result', async () => {
    answers = [
      { status: 200, body: pipeline('RUNNING', [stage('ingest', 'running')]) },
      unavailable,
      unavailable,
      {
        status: 200,
        body: pipeline('RUNNING', [stage('ingest', 'done'), stage('train', 'running')], {
          training: { epoch: 2, loss: 0.5 },
        }),
      },
      'close',
      'close',
      { status: 200, body: pipeline('COMPLETED', [], { result }) },
    ];
    const lines: string[] = [];
    const notes: string[] = [];
    const outcome = await followPipeline('wf-1', (line) => lines.push(line), {
      intervalMs: 5,
      note: (line) => notes.push(line),
    });
    expect(outcome.runId).toBe('run-1');
    expect(lines.filter((l) => /ingest/.test(l))).toEqual([
      expect.stringMatching(/▶ ingest/),
      expect.stringMatching(/✓ ingest +1\.5s/),
    ]);
    expect(lines).toContain('      epoch 2: loss 0.5000');
    expect(lines[lines.length - 1]).toMatch(/✓ train +1\.5s {2}r2 0\.9/);
    // One note when each outage starts, one when it ends: the 503 names Temporal.
    expect(notes).toEqual([
      expect.stringMatching(/Temporal is unavailable \(14 UNAVAILABLE.*still waiting, for up to 30 min/),
      '  (the server answers again)',
      expect.stringMatching(/the Flywheel server .* still waiting/),
      '  (the server answers again)',
    ]);
    expect(seen.every((s) => s.path === '/api/v1/pipelines/wf-1' && s.auth === 'Bearer fw_read_unit')).toBe(true);
  });

  it('waits while the server is down and comes back on the same port', async () => {
    answers = [{ status: 200, body: pipeline('RUNNING', [stage('ingest', 'running')]) }];
    const lines: string[] = [];
    const notes: string[] = [];
    const following = followPipeline('wf-1', (line) => lines.push(line), {
      intervalMs: 5,
      note: (line) => notes.push(line),
    });
    while (!seen.length) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    const before = seen.length;
    while (!notes.length) await new Promise((resolve) => setTimeout(resolve, 5));
    answers = [{ status: 200, body: pipeline('COMPLETED', [], { result }) }];
    await listen(port);
    expect((await following).runId).toBe('run-1');
    expect(seen.length).toBeGreaterThan(before);
    expect(notes[0]).toMatch(/cannot reach the Flywheel server at http:\/\/127\.0\.0\.1:\d+ .*still waiting/);
  });

  it("fails on a real failure with the pipeline's own message, after printing the stage that failed", async () => {
    answers = [
      {
        status: 200,
        body: pipeline('FAILED', [stage('ingest', 'done'), stage('validate', 'failed', 'price: 12 % nulls')], {
          failure: 'validation failed: price has 12 % nulls (at most 1 %)',
        }),
      },
    ];
    const lines: string[] = [];
    const error = await followPipeline('wf-1', (line) => lines.push(line), { intervalMs: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PipelineFailedError);
    expect((error as PipelineFailedError).failure).toBe('validation failed: price has 12 % nulls (at most 1 %)');
    expect(lines[lines.length - 1]).toMatch(/✗ validate .*price: 12 % nulls/);
  });

  it('does not wait through answers that will not change: a 404 or a 403 ends the wait at once', async () => {
    answers = [
      { status: 404, body: { error: { code: 'RESOURCE_DOES_NOT_EXIST', message: 'pipeline wf-1 does not exist' } } },
    ];
    await expect(followPipeline('wf-1', () => undefined, { intervalMs: 5 })).rejects.toThrow(
      'pipeline wf-1 does not exist',
    );
    expect(seen).toHaveLength(1);
  });

  it('gives up when the outage outlasts its deadline, saying so', async () => {
    answers = [unavailable];
    await expect(
      pollUntil(
        '/api/v1/pipelines/wf-1',
        () => false,
        () => undefined,
        { intervalMs: 5, outageMs: 50, note: () => undefined },
      ),
    ).rejects.toThrow(/^gave up after \d+ s without an answer: Temporal is unavailable/);
  });
});

describe('the server names a Temporal outage', () => {
  it("as a retryable 503, for what the client throws when nothing answers at Temporal's address", async () => {
    const client = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1', connectTimeout: '1s' }) });
    // The client retries UNAVAILABLE for a while; a deadline ends that sooner (DEADLINE_EXCEEDED is an outage too).
    const error = await client
      .withDeadline(Date.now() + 1_500, () => client.workflow.getHandle('wf-1').describe())
      .catch((e: unknown) => e);
    const outage = temporalOutage(error);
    expect(outage).toMatchObject({ code: 'TEMPORARILY_UNAVAILABLE', status: 503 });
    expect(outage!.message).toMatch(/^Temporal is unavailable \(.+\); try again shortly$/);
    const refused = await Connection.connect({ address: '127.0.0.1:1', connectTimeout: '500ms' }).catch(
      (e: unknown) => e,
    );
    expect(temporalOutage(refused)).toMatchObject({ status: 503 });
    // storage/temporal.ts names the address and keeps the transport's error as the cause.
    const named = new Error('cannot connect to Temporal at 127.0.0.1:1 (namespace default, no TLS)', {
      cause: refused,
    });
    expect(temporalOutage(named)).toMatchObject({ status: 503 });
    expect(temporalOutage(new Error('workflow failed: bad config'))).toBeUndefined();
  });
});
