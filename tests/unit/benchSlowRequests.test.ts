/**
 * The latency benches' account of a slow request: the server's stamps (bench/pauseProbe.ts `stampResponses`) read
 * back by the load generator (bench/serveLoad.ts), and the cause `attributeSlow` gives it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attributeSlow, stampResponses, type PauseReport } from '../../bench/pauseProbe';
import { runLoad } from '../../bench/serveLoad';

const quiet: PauseReport = {
  window_s: 1,
  stall_ms: 10,
  loop_delay_ms: { p50: 1, p99: 1, max: 1 },
  stalls: [],
  gc: { count: 0, total_ms: 0, max_ms: 0, by_kind: {}, long: [] },
  pools: {},
  pool_waits: [],
};

describe('slow requests split at the server handler', () => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    stampResponses();
    // Every request waits 30 ms in its handler, as a slow query would, then answers.
    server = createServer((_request, response) => {
      setTimeout(() => {
        const text = '{}';
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': text.length }).end(text);
      }, 30);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('charges a request that waited in its handler to the handler', async () => {
    const result = await runLoad({
      mode: 'closed',
      host: '127.0.0.1',
      port,
      path: '/',
      bodies: ['{}'],
      connections: 2,
      warmupS: 0,
      durationS: 0.5,
      idPrefix: 't',
      slowMs: 10,
    });
    expect(result.ok).toBeGreaterThan(0);
    expect(result.slow!.length).toBe(result.measured);
    for (const request of result.slow!) {
      expect(request.handler_ms).toBeGreaterThanOrEqual(29);
      expect(request.in_ms).toBeGreaterThanOrEqual(0);
      expect(request.out_ms).toBeGreaterThanOrEqual(0);
      expect(request.in_ms! + request.handler_ms! + request.out_ms!).toBeLessThanOrEqual(request.ms + 1);
    }
    expect(attributeSlow(result.slow!, quiet)).toEqual({
      'in the handler (awaiting its queries)': result.slow!.length,
    });
  });
});

describe('attributeSlow', () => {
  const at = 1_000_000;
  it('names the part of a request that took half its time or more, after the pauses it overlapped', () => {
    const causes = attributeSlow(
      [
        { at, ms: 20, late_ms: 0, in_ms: 1, handler_ms: 1, out_ms: 18 },
        { at, ms: 20, late_ms: 0, in_ms: 15, handler_ms: 2, out_ms: 3 },
        { at, ms: 20, late_ms: 0, in_ms: 7, handler_ms: 7, out_ms: 6 },
        { at, ms: 20, late_ms: 12, in_ms: 1, handler_ms: 1, out_ms: 6 },
        { at, ms: 20, late_ms: 0 },
        { at: at + 500, ms: 20, late_ms: 0, in_ms: 1, handler_ms: 18, out_ms: 1 },
      ],
      { ...quiet, gc: { ...quiet.gc, long: [{ at: at + 505, ms: 12, kind: 'scavenge' }] } },
    );
    expect(causes).toEqual({
      'answered in time, read late by the load generator': 1,
      'before the handler (kernel, the server waiting for a CPU)': 1,
      'no part half of it (before, in, after the handler)': 1,
      'sent late by the load generator (it waited for a CPU)': 1,
      'none seen in the server (postgres / kernel)': 1,
      'gc pause': 1,
    });
  });
});
