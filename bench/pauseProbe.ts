/**
 * Where a server's pauses come from, measured inside its process for the latency benches: event-loop delay (a
 * histogram, and each stall over `stallMs` with its wall-clock time), every GC pause (kind, duration, time) and the pg
 * pool's queue (requests waiting for a connection, sampled every `sampleMs`). Times are epoch milliseconds, so a bench
 * can line them up with its slow requests, its background work and Postgres' own log.
 */
import { constants, monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';
import { Server, ServerResponse } from 'node:http';
import type pg from 'pg';

export interface PauseReport {
  window_s: number;
  /** The probe's `stallMs`: stalls and GC pauses at least this long are listed. */
  stall_ms: number;
  /** Event-loop delay over the window (perf_hooks histogram, 1 ms resolution), ms. */
  loop_delay_ms: { p50: number; p99: number; max: number };
  /**
   * Each time the loop was blocked longer than `stallMs` (a 5 ms timer that fired late), up to 1,000, with the CPU the
   * process used meanwhile: near `ms`, its own work blocked the loop; far below, the kernel ran something else.
   */
  stalls: { at: number; ms: number; cpu_ms: number }[];
  gc: {
    count: number;
    total_ms: number;
    max_ms: number;
    /** Pauses by kind (scavenge, mark-sweep-compact, incremental, weak-callbacks): count and longest, ms. */
    by_kind: Record<string, { count: number; max_ms: number; total_ms: number }>;
    /** Pauses over `stallMs`, up to 1,000. */
    long: { at: number; ms: number; kind: string }[];
  };
  /** Per pool: the most requests ever waiting for a connection, and samples (of all) that saw one waiting. */
  pools: Record<string, { max: number; max_waiting: number; waiting_samples: number; samples: number }>;
  /** Samples with a request waiting for a connection (time, waiting, pool), up to 1,000. */
  pool_waits: { at: number; waiting: number; pool: string }[];
}

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-sweep-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
};
const KEEP = 1000;

/** CLOCK_MONOTONIC in µs: one clock for every process of the machine (process.hrtime), unlike performance.now(). */
export const monoUs = () => Number(process.hrtime.bigint() / 1000n);

const RECEIVED = Symbol('bench.received');

/**
 * A request at least a bench's `slowMs` slow (bench/serveLoad.ts): due at `at` (epoch ms), answered `ms` later,
 * written to its socket `late_ms` after it was due. Where the server stamps its responses (`stampResponses`), its
 * time in three parts on the machine's monotonic clock: from the generator's write until the server's handler got
 * the request (`in_ms`: the kernel, the server waiting for a CPU, HTTP parsing), inside the handler (`handler_ms`),
 * and from the response's head until the generator read it all (`out_ms`: the kernel, the generator waiting for a
 * CPU).
 */
export interface SlowRequest {
  at: number;
  ms: number;
  late_ms: number;
  in_ms?: number;
  handler_ms?: number;
  out_ms?: number;
}

/**
 * Stamps every response of this process's HTTP servers with when the server handed its request to the handler and
 * when the handler wrote the response's head (`x-bench-received`, `x-bench-answered`: monoUs), so the load generator
 * (bench/serveLoad.ts) can tell a slow request's time in the handler from its time in the kernel or waiting for a CPU
 * on either side. Patches node:http's prototypes: for the benches' probed servers only.
 */
export function stampResponses(): void {
  const emit = Server.prototype.emit;
  Server.prototype.emit = function (this: Server, event: string | symbol, ...args: unknown[]) {
    if (event === 'request') (args[1] as Record<symbol, number>)[RECEIVED] = monoUs();
    return (emit as (...a: unknown[]) => boolean).call(this, event, ...args);
  } as typeof emit;
  const writeHead = ServerResponse.prototype.writeHead;
  ServerResponse.prototype.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    const received = (this as unknown as Record<symbol, number | undefined>)[RECEIVED];
    if (received !== undefined && !this.headersSent) {
      this.setHeader('x-bench-received', received);
      this.setHeader('x-bench-answered', monoUs());
    }
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof writeHead;
}

export class PauseProbe {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 1 });
  private readonly observer: PerformanceObserver;
  private readonly timer: NodeJS.Timeout;
  private started = Date.now();
  private report!: Omit<PauseReport, 'window_s' | 'stall_ms' | 'loop_delay_ms'>;
  private last = performance.now();
  private lastCpu = process.cpuUsage();

  constructor(
    /** The pools to watch, by name (a function: a process may open pools after the probe starts). */
    private readonly pools: () => Record<string, pg.Pool>,
    /** As long as the benches' slow requests (10 ms), so a stall that made one shows up beside it. */
    private readonly stallMs = 10,
    sampleMs = 5,
  ) {
    this.reset();
    this.histogram.enable();
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) this.gcPause(entry);
    });
    this.observer.observe({ entryTypes: ['gc'] });
    this.timer = setInterval(() => this.sample(sampleMs), sampleMs);
    this.timer.unref();
  }

  private gcPause(entry: PerformanceEntry): void {
    const kind = GC_KINDS[(entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
    const gc = this.report.gc;
    const ms = entry.duration;
    gc.count++;
    gc.total_ms += ms;
    gc.max_ms = Math.max(gc.max_ms, ms);
    const k = (gc.by_kind[kind] ??= { count: 0, max_ms: 0, total_ms: 0 });
    k.count++;
    k.total_ms += ms;
    k.max_ms = Math.max(k.max_ms, ms);
    if (ms >= this.stallMs && gc.long.length < KEEP)
      gc.long.push({ at: Math.round(performance.timeOrigin + entry.startTime), ms: round(ms), kind });
  }

  private sample(sampleMs: number): void {
    const now = performance.now();
    const late = now - this.last - sampleMs;
    this.last = now;
    const cpu = process.cpuUsage();
    const cpuMs = (cpu.user + cpu.system - this.lastCpu.user - this.lastCpu.system) / 1000;
    this.lastCpu = cpu;
    if (late >= this.stallMs && this.report.stalls.length < KEEP)
      this.report.stalls.push({
        at: Math.round(performance.timeOrigin + now - late),
        ms: round(late),
        cpu_ms: round(Math.max(0, cpuMs)),
      });
    for (const [name, pool] of Object.entries(this.pools())) {
      const seen = (this.report.pools[name] ??= {
        max: pool.options.max ?? 10,
        max_waiting: 0,
        waiting_samples: 0,
        samples: 0,
      });
      seen.samples++;
      if (pool.waitingCount > 0) {
        seen.waiting_samples++;
        seen.max_waiting = Math.max(seen.max_waiting, pool.waitingCount);
        if (this.report.pool_waits.length < KEEP)
          this.report.pool_waits.push({ at: Date.now(), waiting: pool.waitingCount, pool: name });
      }
    }
  }

  /** Starts a new window. */
  reset(): void {
    this.started = Date.now();
    this.histogram.reset();
    this.report = {
      stalls: [],
      gc: { count: 0, total_ms: 0, max_ms: 0, by_kind: {}, long: [] },
      pools: {},
      pool_waits: [],
    };
  }

  /** The window so far. */
  snapshot(): PauseReport {
    const ms = (ns: number) => round(ns / 1e6);
    return {
      window_s: round((Date.now() - this.started) / 1000),
      stall_ms: this.stallMs,
      loop_delay_ms: {
        p50: ms(this.histogram.percentile(50)),
        p99: ms(this.histogram.percentile(99)),
        max: ms(this.histogram.max),
      },
      ...this.report,
      gc: { ...this.report.gc, total_ms: round(this.report.gc.total_ms), max_ms: round(this.report.gc.max_ms) },
    };
  }

  stop(): void {
    clearInterval(this.timer);
    this.observer.disconnect();
    this.histogram.disable();
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

/** One line for a bench's stderr: what the process paused for over the window. */
export function describePauses(report: PauseReport): string {
  const kinds = Object.entries(report.gc.by_kind)
    .map(([kind, k]) => `${kind} ${k.count}× max ${k.max_ms.toFixed(1)} ms`)
    .join(', ');
  const pools = Object.entries(report.pools)
    .map(
      ([name, p]) =>
        `${name} (max ${p.max}): waited in ${p.waiting_samples} of ${p.samples} samples, most ${p.max_waiting}`,
    )
    .join('; ');
  return (
    `event loop delay p50 ${report.loop_delay_ms.p50} ms, p99 ${report.loop_delay_ms.p99} ms, max ${report.loop_delay_ms.max} ms; ` +
    `${report.stalls.length} stalls ≥ ${report.stall_ms} ms${report.stalls.length ? ` (longest ${Math.max(...report.stalls.map((s) => s.ms)).toFixed(0)} ms; the process ran for ${report.stalls.reduce((a, s) => a + s.cpu_ms, 0).toFixed(0)} of their ${report.stalls.reduce((a, s) => a + s.ms, 0).toFixed(0)} ms)` : ''}; ` +
    `GC ${report.gc.count} pauses, ${report.gc.total_ms.toFixed(0)} ms in all, longest ${report.gc.max_ms.toFixed(1)} ms (${kinds || 'none'}); ` +
    `pg pool ${pools || 'none'}`
  );
}

/** A phase's slow requests, what they overlapped and the serving process's pauses, as the benches' JSON has them. */
export function pauseFigures(
  slow: readonly SlowRequest[] | undefined,
  causes: ReturnType<typeof attributeSlow>,
  report: PauseReport,
) {
  const total = (part: 'in_ms' | 'handler_ms' | 'out_ms') =>
    Math.round((slow ?? []).reduce((sum, request) => sum + (request[part] ?? 0), 0));
  return {
    slow_requests: slow?.length ?? 0,
    slow_request_causes: causes,
    // Where the server stamped its responses: the slow requests' time before, in and after its handler, summed.
    ...(slow?.some((request) => request.handler_ms !== undefined)
      ? {
          slow_request_time_ms: {
            before_handler: total('in_ms'),
            in_handler: total('handler_ms'),
            after_handler: total('out_ms'),
          },
        }
      : {}),
    server_loop_delay_ms: report.loop_delay_ms,
    server_stalls: report.stalls.length,
    server_gc: { count: report.gc.count, max_ms: report.gc.max_ms, by_kind: report.gc.by_kind },
    server_pools: report.pools,
  };
}

/**
 * What each slow request (due at `at`, answered `ms` later) overlapped: a send the generator made late by half its
 * latency or more (the harness waited for a CPU), a server stall or a long GC pause (the event loop could not
 * answer), a sample with requests waiting for a pool connection, one of `others`' spans; else, where the server
 * stamped its responses (`stampResponses`), the part of its time that took half or more: after the handler (the
 * generator read it late), in the handler (its queries) or before it (the kernel, the server not running); or none
 * of those. Counts by cause, each request counted once, in that order of precedence.
 */
export function attributeSlow(
  slow: readonly SlowRequest[],
  report: PauseReport,
  others: Record<string, readonly { from: number; to: number }[]> = {},
): Record<string, number> {
  const overlaps = (a: SlowRequest, from: number, to: number) => from <= a.at + a.ms && to >= a.at;
  const causeOf = (request: SlowRequest): string => {
    if (request.late_ms >= request.ms / 2) return 'sent late by the load generator (it waited for a CPU)';
    if (report.gc.long.some((g) => overlaps(request, g.at, g.at + g.ms))) return 'gc pause';
    const stalls = report.stalls.filter((s) => overlaps(request, s.at, s.at + s.ms));
    if (stalls.some((s) => s.cpu_ms >= s.ms / 2)) return 'event-loop stall, process busy';
    if (stalls.length) return 'event-loop stall, process not running (CPU taken by others)';
    if (report.pool_waits.some((w) => overlaps(request, w.at - 5, w.at))) return 'pool wait';
    const other = Object.entries(others).find(([, spans]) => spans.some((s) => overlaps(request, s.from, s.to)));
    if (other) return other[0];
    if ((request.out_ms ?? 0) >= request.ms / 2) return 'answered in time, read late by the load generator';
    if ((request.handler_ms ?? 0) >= request.ms / 2) return 'in the handler (awaiting its queries)';
    if ((request.in_ms ?? 0) >= request.ms / 2) return 'before the handler (kernel, the server waiting for a CPU)';
    if (request.handler_ms !== undefined) return 'no part half of it (before, in, after the handler)';
    return 'none seen in the server (postgres / kernel)';
  };
  const counts: Record<string, number> = {};
  for (const request of slow) {
    const cause = causeOf(request);
    counts[cause] = (counts[cause] ?? 0) + 1;
  }
  return counts;
}

/**
 * Every pg.Pool the process uses, named by the order of their first connection and their size: a probe can watch a
 * process's pools without the process handing them over (serving/main.ts opens its own).
 */
export function trackPools(pgModule: { Pool: { prototype: pg.Pool } }): () => Record<string, pg.Pool> {
  const pools = new Map<pg.Pool, string>();
  const proto = pgModule.Pool.prototype as pg.Pool & { connect: (...args: unknown[]) => unknown };
  const connect = proto.connect;
  proto.connect = function (this: pg.Pool, ...args: unknown[]) {
    if (!pools.has(this)) pools.set(this, `pool${pools.size + 1}`);
    return (connect as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof proto.connect;
  return () => Object.fromEntries([...pools].map(([pool, name]) => [name, pool]));
}
