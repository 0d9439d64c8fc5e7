/**
 * bench:serve's load generator, in a process of its own so that it never shares an event loop with a server under
 * test. bench/serve.ts starts it as `node --import tsx bench/serveLoad.ts <spec.json>` once per phase, for Flywheel
 * and for the Python peer alike (the same generator both times, so the comparison is fair).
 *
 * It speaks HTTP/1.1 on plain keep-alive TCP sockets (node:net; requests written as one pre-built string, responses
 * parsed by status line + content-length), which costs far less CPU per request than node:http's client: on a
 * 2-core machine whatever the generator burns is taken from the server. One request in flight per connection, no
 * pipelining. Every request carries `x-request-id: <prefix><sequence>`.
 *
 * Modes:
 * - closed: `connections` sockets, each sending its next request as soon as the previous answer arrived; finds the
 *   maximum rate. Latency: from write to the last byte of the answer.
 * - open: requests are scheduled at a fixed `rate` (sequence i is due at start + i / rate) whatever the server does;
 *   a due request takes an idle socket, opens a new one (up to `maxConnections`) or waits in a queue. Latency is
 *   measured from the scheduled time, so a stalled server is charged for every request it delayed (no coordinated
 *   omission). The clock is a worker thread sleeping on Atomics.wait (sub-millisecond, no busy loop that would take
 *   a core from the server); how late the generator itself sent (`send_lag_ms`) is reported as its precision.
 * Both run `warmupS` first (not recorded; ids `<prefix>w<n>`), then `durationS` measured (ids `<prefix>m<n>`); at the
 * end of the window nothing new is sent and answers still outstanding are awaited up to `graceS`.
 *
 * Prints one JSON line: counts by status, achieved rate, latency percentiles (ms), the generator's own CPU seconds,
 * and in open mode the sequence numbers of the measured requests answered 200 (bench:serve looks them up in the
 * prediction log).
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { monoUs, type SlowRequest } from './pauseProbe';

/** The open-loop clock (a worker thread): posts n whenever requests 0..n-1 are due, -1 at the end. */
const PACER = `
const { parentPort, workerData: { t0, end, rate } } = require('node:worker_threads');
const cell = new Int32Array(new SharedArrayBuffer(4));
const now = () => performance.timeOrigin + performance.now();
let i = 0;
for (;;) {
  const due = t0 + (1000 * i) / rate;
  if (due >= end) break;
  const wait = due - now();
  if (wait > 0.02) Atomics.wait(cell, 0, 0, wait);
  const t = now();
  while (t0 + (1000 * i) / rate <= t && t0 + (1000 * i) / rate < end) i++;
  parentPort.postMessage(i);
}
parentPort.postMessage(-1);
`;

export interface LoadSpec {
  mode: 'closed' | 'open';
  host: string;
  port: number;
  path: string;
  /** Request bodies (JSON text), used in turn. */
  bodies: string[];
  connections: number;
  /** open mode: requests per second. */
  rate?: number;
  /** open mode: the most sockets it opens. @default 512 */
  maxConnections?: number;
  warmupS: number;
  durationS: number;
  graceS?: number;
  idPrefix: string;
  /** Sent as `authorization: Bearer <key>` when set. */
  apiKey?: string;
  /** Return the sequence numbers of measured requests answered 200. */
  returnOkIds?: boolean;
  /** List measured requests slower than this (ms), with when they were due (epoch ms), up to 300. */
  slowMs?: number;
}

export interface LoadResult {
  mode: 'closed' | 'open';
  /** All requests, warm-up included. */
  sent: number;
  completed: number;
  /** Answered 200, warm-up included (each logs its rows on Flywheel). */
  ok_total: number;
  /** The measured window: requests, and those answered 200. */
  measured: number;
  ok: number;
  /** Status counts of the measured window. */
  statuses: Record<string, number>;
  errors: number;
  unfinished: number;
  seconds: number;
  rps: number;
  latency_ms: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  connections_opened: number;
  generator_cpu_s: number;
  /** open mode: how late the generator itself sent requests that found an idle connection (its precision), ms. */
  send_lag_ms?: { p50: number; p99: number; max: number };
  ok_ids?: number[];
  /**
   * With `slowMs`: measured requests at least that slow, by the epoch ms they were due (or sent), with how late the
   * generator wrote them to their socket (`late_ms`, open mode: a late send is the generator's delay, not the
   * server's), and the parts of their time where the server stamps its responses (bench/pauseProbe.ts).
   */
  slow?: SlowRequest[];
  first_error?: string;
}

interface Pending {
  seq: number;
  measured: boolean;
  due: number;
}

class Connection {
  private chunks: Buffer[] = [];
  private length = 0;
  private headerEnd = -1;
  private bodyLength = -1;
  private status = 0;
  busy = false;
  closed = false;
  current?: { seq: number; measured: boolean; start: number; sent: number; sentUs: number };
  /** The server's stamps of the current response (µs, monotonic) and when the generator had read it all. */
  stamps?: { receivedUs: number; answeredUs: number; readUs: number };

  constructor(
    readonly socket: Socket,
    private readonly onDone: (c: Connection, status: number, error?: string) => void,
    /** The server closed it while idle (its keep-alive timeout): the pool forgets it. */
    private readonly onIdleClose: (c: Connection) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    const fail = (message: string) => {
      if (this.closed) return;
      this.closed = true;
      if (this.busy) {
        this.busy = false;
        this.onDone(this, 0, message);
      } else this.onIdleClose(this);
    };
    socket.on('error', (error) => fail(error.message));
    socket.on('close', () => fail('connection closed'));
  }

  send(text: string, seq: number, measured: boolean, start: number): void {
    this.busy = true;
    this.current = { seq, measured, start, sent: performance.now(), sentUs: monoUs() };
    this.stamps = undefined;
    this.chunks = [];
    this.length = 0;
    this.headerEnd = -1;
    this.bodyLength = -1;
    this.socket.write(text);
  }

  private data(chunk: Buffer): void {
    if (!this.busy) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.headerEnd < 0) {
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [all];
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.headerEnd = end + 4;
      const head = all.toString('latin1', 0, end);
      this.status = Number(head.slice(9, 12));
      const match = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!match) {
        // Every server here answers with a content-length; anything else (chunked) is not supported.
        this.busy = false;
        this.onDone(this, 0, `response without content-length: ${head.slice(0, 200)}`);
        this.socket.destroy();
        return;
      }
      this.bodyLength = Number(match[1]);
      const received = /\r\nx-bench-received:\s*(\d+)/i.exec(head);
      const answered = /\r\nx-bench-answered:\s*(\d+)/i.exec(head);
      if (received && answered)
        this.stamps = { receivedUs: Number(received[1]), answeredUs: Number(answered[1]), readUs: 0 };
    }
    if (this.length >= this.headerEnd + this.bodyLength) {
      if (this.stamps) this.stamps.readUs = monoUs();
      this.busy = false;
      this.onDone(this, this.status);
    }
  }
}

/** A response's time before, inside and after the server's handler, ms (none without the server's stamps). */
function splitTime(sentUs: number, stamps: Connection['stamps']): Partial<SlowRequest> {
  if (!stamps) return {};
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    in_ms: ms(stamps.receivedUs - sentUs),
    handler_ms: ms(stamps.answeredUs - stamps.receivedUs),
    out_ms: ms(stamps.readUs - stamps.answeredUs),
  };
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const cpuStart = process.cpuUsage();
  const bodies = spec.bodies.map((b) => ({ text: b, bytes: Buffer.byteLength(b) }));
  const headBase = `POST ${spec.path} HTTP/1.1\r\nhost: ${spec.host}:${spec.port}\r\ncontent-type: application/json\r\nconnection: keep-alive\r\n${spec.apiKey ? `authorization: Bearer ${spec.apiKey}\r\n` : ''}`;
  const requestText = (seq: number, measured: boolean) => {
    const body = bodies[seq % bodies.length]!;
    return `${headBase}x-request-id: ${spec.idPrefix}${measured ? 'm' : 'w'}${seq}\r\ncontent-length: ${body.bytes}\r\n\r\n${body.text}`;
  };

  const latencies: number[] = [];
  const slow: NonNullable<LoadResult['slow']> = [];
  const sendLag: number[] = [];
  const okIds: number[] = [];
  const statuses: Record<string, number> = {};
  let sent = 0,
    completed = 0,
    okTotal = 0,
    measured = 0,
    ok = 0,
    errors = 0,
    opened = 0;
  let firstError: string | undefined;
  const connections: Connection[] = [];
  const idle: Connection[] = [];
  const queue: Pending[] = [];
  let opening = 0;

  let measureStart = performance.now() + spec.warmupS * 1000;
  let measureEnd = measureStart + spec.durationS * 1000;
  let stopping = false;
  let finished = false;
  let seqWarm = 0,
    seqMeasured = 0;
  let settle: (() => void) | undefined;
  const inFlight = () => connections.filter((c) => c.busy).length + queue.length + opening;

  const nextPending = (due: number): Pending => {
    const measured = due >= measureStart;
    return { seq: measured ? seqMeasured++ : seqWarm++, measured, due };
  };

  const dispatch = (c: Connection, p: Pending) => {
    sent++;
    c.send(requestText(p.seq, p.measured), p.seq, p.measured, spec.mode === 'open' ? p.due : performance.now());
  };

  const onDone = (c: Connection, status: number, error?: string) => {
    if (finished) return;
    const now = performance.now();
    const current = c.current!;
    completed++;
    if (status === 200) okTotal++;
    if (error) {
      errors++;
      firstError ??= error;
    } else if (current.measured) {
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
    if (current.measured) {
      measured++;
      latencies.push(now - current.start);
      if (spec.slowMs !== undefined && now - current.start >= spec.slowMs && slow.length < 300)
        slow.push({
          at: Math.round(performance.timeOrigin + current.start),
          ms: Math.round(now - current.start),
          late_ms: Math.round(current.sent - current.start),
          ...splitTime(current.sentUs, c.stamps),
        });
      if (status === 200) {
        ok++;
        if (spec.returnOkIds) okIds.push(current.seq);
      }
    }
    if (c.closed) {
      const at = connections.indexOf(c);
      if (at >= 0) connections.splice(at, 1);
      if (!stopping && spec.mode === 'closed') open();
      else if (spec.mode === 'open' && queue.length > 0) open(queue.shift());
    } else if (spec.mode === 'closed') {
      if (!stopping && now < measureEnd) dispatch(c, nextPending(now));
    } else {
      const waiting = queue.shift();
      if (waiting) dispatch(c, waiting);
      else idle.push(c);
    }
    if (stopping && inFlight() === 0) settle?.();
  };

  function onIdleClose(c: Connection): void {
    const at = idle.indexOf(c);
    if (at >= 0) idle.splice(at, 1);
    const i = connections.indexOf(c);
    if (i >= 0) connections.splice(i, 1);
  }

  function open(first?: Pending): void {
    opened++;
    opening++;
    let connected = false;
    const socket = connect({ host: spec.host, port: spec.port });
    socket.once('connect', () => {
      connected = true;
      opening--;
      if (finished) return void socket.destroy();
      const c = new Connection(socket, onDone, onIdleClose);
      connections.push(c);
      const p =
        first ?? queue.shift() ?? (spec.mode === 'closed' && !stopping ? nextPending(performance.now()) : undefined);
      if (p) dispatch(c, p);
      else idle.push(c);
    });
    socket.once('error', (error) => {
      if (connected || finished) return; // a connected socket's errors are the Connection's
      opening--;
      errors++;
      firstError ??= `connect: ${error.message}`;
      if (first) {
        completed++;
        if (first.measured) {
          measured++;
          latencies.push(performance.now() - first.due);
        }
      }
      if (stopping && inFlight() === 0) settle?.();
    });
  }

  if (spec.mode === 'closed') {
    for (let i = 0; i < spec.connections; i++) open();
    await new Promise((resolve) => setTimeout(resolve, measureEnd - performance.now()));
  } else {
    const rate = spec.rate!;
    const maxConnections = spec.maxConnections ?? 512;
    for (let i = 0; i < Math.min(spec.connections, maxConnections); i++) open();
    await new Promise((resolve) => setTimeout(resolve, 200)); // sockets connected before the clock starts
    const t0 = performance.now();
    measureStart = t0 + spec.warmupS * 1000;
    measureEnd = measureStart + spec.durationS * 1000;
    // The clock is a worker thread that sleeps (Atomics.wait, sub-millisecond) until the next due time and tells
    // this thread how many requests are due: precise pacing without a busy loop stealing a core from the server.
    const pacer = new Worker(PACER, {
      eval: true,
      workerData: { t0: performance.timeOrigin + t0, end: performance.timeOrigin + measureEnd, rate },
    });
    let index = 0;
    await new Promise<void>((resolve, reject) => {
      pacer.on('error', reject);
      pacer.on('message', (due: number) => {
        if (due < 0) return resolve();
        const now = performance.now();
        for (; index < due; index++) {
          const p = nextPending(t0 + (1000 * index) / rate);
          const c = idle.pop();
          if (c) {
            if (p.measured) sendLag.push(now - p.due);
            dispatch(c, p);
          } else if (connections.length + opening < maxConnections) open(p);
          else queue.push(p);
        }
      });
    });
    await pacer.terminate();
  }

  stopping = true;
  const measuredSeconds = spec.durationS;
  if (inFlight() > 0) {
    await Promise.race([
      new Promise<void>((resolve) => (settle = resolve)),
      new Promise((resolve) => setTimeout(resolve, (spec.graceS ?? 5) * 1000)),
    ]);
  }
  // Whatever is still outstanding is charged its waiting time so far (a lower bound) and counted as unfinished.
  finished = true;
  const now = performance.now();
  let unfinished = 0;
  for (const c of connections) {
    if (c.busy && c.current) {
      unfinished++;
      if (c.current.measured) {
        measured++;
        latencies.push(now - c.current.start);
      }
    }
    c.socket.destroy();
  }
  for (const p of queue) {
    unfinished++;
    if (p.measured) {
      measured++;
      latencies.push(now - p.due);
    }
  }

  const sorted = Float64Array.from(latencies).sort();
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
  const cpu = process.cpuUsage(cpuStart);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    mode: spec.mode,
    sent,
    completed,
    ok_total: okTotal,
    measured,
    ok,
    statuses,
    errors,
    unfinished,
    seconds: measuredSeconds,
    rps: ok / measuredSeconds,
    latency_ms: {
      p50: round(percentile(sorted, 0.5)),
      p90: round(percentile(sorted, 0.9)),
      p99: round(percentile(sorted, 0.99)),
      p999: round(percentile(sorted, 0.999)),
      max: round(sorted.length ? sorted[sorted.length - 1]! : NaN),
      mean: round(mean),
    },
    connections_opened: opened,
    generator_cpu_s: (cpu.user + cpu.system) / 1e6,
    ...(spec.mode === 'open'
      ? (() => {
          const lag = Float64Array.from(sendLag).sort();
          return {
            send_lag_ms: {
              p50: round(percentile(lag, 0.5)),
              p99: round(percentile(lag, 0.99)),
              max: round(lag.length ? lag[lag.length - 1]! : NaN),
            },
          };
        })()
      : {}),
    ...(spec.returnOkIds ? { ok_ids: okIds } : {}),
    ...(spec.slowMs !== undefined ? { slow } : {}),
    ...(firstError ? { first_error: firstError } : {}),
  };
}

if (process.argv[1] && /serveLoad\.[tj]s$/.test(process.argv[1])) {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadSpec;
  const result = await runLoad(spec);
  console.log(JSON.stringify(result));
  process.exit(0);
}
