/**
 * bench:features — Flywheel's feature store against pandas on the same rows in the same run: the point-in-time join
 * that builds a training set (features/sql.ts `pointInTimeJoinSql`, run by Postgres) against
 * `pandas.merge_asof`, and the online lookup (`POST /v2/features`) at a fixed 1,000 requests/s.
 *
 * Data (deterministic: a formula of the row index, no random generator; the same formulas in SQL here and in numpy in
 * bench/features_pandas.py, whose header spells them out): BENCH_FEATURE_ROWS (10,000,000) feature rows for
 * BENCH_KEYS (100,000) entities ('e000123'), BENCH_FEATURE_ROWS / BENCH_KEYS slots per entity, one a day at a
 * hashed second of it, the last slot ending now; 1 row in 20 repeats its predecessor's event time exactly (a tie that
 * only created_ts breaks, the later created being the earlier row about half the time); three numeric features
 * (f_int: integers < 1e6, f_frac: multiples of 1/1024, f_slot: the row's slot j, which names the row a join picked;
 * all sums are exact in float64). BENCH_ENTITY_ROWS (1,000,000) entity rows (k, entity_id, ts): 1 in 50 exactly on an
 * event time (event_ts <= ts must take it), 1 in 50 exactly TTL after one (expired: a value exactly TTL old is not
 * joined, as online), the rest anywhere from 2 days before the first slot to 2 days past the last (no value yet,
 * expired, or fresh). TTL 36h.
 *
 * Flywheel side: a feature view `bench_pit_<tag>` registered with `registerFeatureView` (its offline table
 * fv_bench_pit_<tag>_v1), loaded with INSERT … SELECT … FROM generate_series (one statement per core, the PIT index
 * dropped during the load and rebuilt with createOfflineTableSql's statement, table set UNLOGGED for the load, then
 * VACUUM ANALYZE), and an UNLOGGED entity table. None of this is timed; each step is reported. Timed: Postgres
 * materialising the join as a table, `CREATE UNLOGGED TABLE … AS <pointInTimeJoinSql(…)>` (the result's 1,000,000
 * rows written server-side, as pandas holds its result in memory), entity columns (entity_id, ts, k), on one
 * connection with the server's settings unless BENCH_WORK_MEM / BENCH_PARALLEL_WORKERS set work_mem /
 * max_parallel_workers_per_gather for the session (the values in effect are reported). Postgres may use parallel
 * workers (2 cores here) for part of the plan; pandas uses one core. CPU seconds of both sides are reported
 * (Postgres: every postgres process, parallel workers included; pandas: the interpreter's process time).
 * Peer: bench/features_pandas.py (Debian python3-pandas 1.5.3 on /usr/bin/python3, installed by apt-get when
 * missing and root), data built once in a long-lived interpreter before the rounds; timed per run: sorting the
 * features by (event_ts, created_ts) (np.lexsort + take, its fastest form; the idiomatic
 * sort_values([...]) is timed once and reported beside it), sorting the entity rows by ts, and merge_asof
 * (backward, by entity_id, tolerance TTL - 1 ns: merge_asof's tolerance is inclusive, Flywheel's TTL is not).
 * BENCH_REPEATS (5) interleaved rounds (F P, P F, …), best of each side; no round starts past BENCH_BUDGET_S (420).
 *
 * Correctness (fails the bench): an independent reference computed here from the formulas (per entity, all its rows,
 * latest (event_ts, created_ts) at or before ts and younger than the TTL) gives the expected f_slot of every entity
 * row; Flywheel's table (every round: rows, matched, nulls, sums of each feature and sum f_int * (k mod 997 + 1);
 * once: every row's f_slot) and pandas' result (the same checksums every round, every row once) must equal it. The
 * counts of rows that exercise ties, exact timestamps and the TTL boundary are reported.
 *
 * Variants, once each after the rounds (BENCH_VARIANTS=0 skips them), same checks: the same builder with an id
 * column first (entity columns k, entity_id, ts: the final ORDER BY no longer follows the index, so the lookups
 * come in random key order), the same with the entity rows pre-sorted by (entity key, ts) inside entitySql (the change
 * proposed for pointInTimeJoinSql), that pre-sort on the timed query (it must not cost where the planner already
 * sorted that way), work_mem 256MB (the planner adds a Memoize node), and a sort-merge formulation (window function
 * over a UNION ALL of both sides, running max of a packed array: Postgres has no IGNORE NULLS).
 * The plan of the timed query (EXPLAIN, or EXPLAIN ANALYZE with BENCH_EXPLAIN_ANALYZE=1) goes to stderr.
 *
 * Online: materializeSql over the whole event range into online_features (timed, reported), a serving process
 * (bench/featuresServer.ts: createServingHandler with ServedModels + PredictionLog, a child process), a skew check
 * (64 entities in one request and 8 single ones: the served values must equal the offline table's latest row and the
 * formula's; fails the bench), then bench/serveLoad.ts (the open-loop generator of bench:serve, a child process,
 * latency from each request's scheduled send) at BENCH_RATE (1000) single-entity lookups/s over BENCH_LOOKUP_KEYS
 * (10,000) entities, BENCH_WARMUP_S (2) + BENCH_SECONDS (10) s: p50/p99/p99.9, statuses, server and Postgres CPU.
 * Then the same load again while materializeSql over the whole view runs beside it in a loop (BENCH_KEYS rows written
 * under another ref and deleted again per cycle, as a full re-materialisation does): `online_p99_ms_during_materialize`
 * (and p50, p99.9, max), with the serving process's pauses (bench/pauseProbe.ts: event-loop stalls and whether the
 * process ran meanwhile, GC pauses, pg pool waits), Postgres' waits, checkpoints and autovacuum over the same window
 * (bench/pgWaits.ts), and each request of 10 ms or more lined up with them.
 *
 * The bench's tables, online rows and feature view are removed at the end, also on failure and SIGINT / SIGTERM
 * (BENCH_KEEP=1 keeps them). About 3 minutes on the 2-core reference machine once the stack is up.
 *
 * Environment: BENCH_FEATURE_ROWS (10000000), BENCH_ENTITY_ROWS (1000000), BENCH_KEYS (100000), BENCH_REPEATS (5),
 * BENCH_BUDGET_S (420), BENCH_VARIANTS (1), BENCH_WORK_MEM, BENCH_PARALLEL_WORKERS, BENCH_EXPLAIN_ANALYZE,
 * BENCH_RATE (1000), BENCH_SECONDS (10), BENCH_WARMUP_S (2), BENCH_LOOKUP_KEYS (10000), BENCH_GENERATOR_NICE (10,
 * applied as -10 when root), BENCH_PYTHON (/usr/bin/python3), BENCH_KEEP, BENCH_ANALYZE (1: ANALYZE online_features
 * after each materialisation of ≥ ANALYZE_AFTER_ROWS rows, as materializeWindow does; 0 shows the stale plan).
 * A quick run:
 * BENCH_FEATURE_ROWS=1000000 BENCH_ENTITY_ROWS=100000 BENCH_KEYS=10000 BENCH_REPEATS=1 BENCH_SECONDS=3 npm run
 * bench:features
 *
 * Last line of stdout: one JSON object with `ratio_vs_peer` (pandas seconds ÷ Flywheel seconds for the join; > 1:
 * Flywheel faster), `online_p99_ms` (at BENCH_RATE), `online_p99_ms_during_materialize`, and the figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type pg from 'pg';
import { ANALYZE_AFTER_ROWS, registerFeatureView } from '../features/store';
import { defineFeatureView, entityKey, type FeatureView } from '../features/define';
import { createOfflineTableSql, materializeSql, pointInTimeJoinSql, quote, viewRef } from '../features/sql';
import { closeDb, connectDb, lowerSessionPriority, type Db } from '../storage/db';
import { loadConfig, PROJECT_ROOT } from '../config/env';
import { budgetedRounds, ensurePythonPeer, intFromEnv } from './peer';
import { busyPct, children, machineTicks, openLoopLoad, runLoadPhase, statOf, stopChild, waitUntil } from './processes';
import type { LoadResult, LoadSpec } from './serveLoad';
import { attributeSlow, describePauses, pauseFigures, type PauseReport } from './pauseProbe';
import { describePgWaits, watchPostgres } from './pgWaits';

const FEATURE_ROWS = intFromEnv('BENCH_FEATURE_ROWS', 10_000_000);
const ENTITY_ROWS = intFromEnv('BENCH_ENTITY_ROWS', 1_000_000);
const KEYS = intFromEnv('BENCH_KEYS', 100_000);
const REPEATS = Math.max(1, intFromEnv('BENCH_REPEATS', 5));
const BUDGET_S = intFromEnv('BENCH_BUDGET_S', 420);
const VARIANTS = process.env.BENCH_VARIANTS !== '0';
const WORK_MEM = process.env.BENCH_WORK_MEM || undefined;
const PARALLEL_WORKERS = process.env.BENCH_PARALLEL_WORKERS || undefined;
const EXPLAIN_ANALYZE = process.env.BENCH_EXPLAIN_ANALYZE === '1';
const RATE = Math.max(1, intFromEnv('BENCH_RATE', 1000));
const SECONDS = Math.max(1, intFromEnv('BENCH_SECONDS', 10));
const WARMUP_S = intFromEnv('BENCH_WARMUP_S', 2);
const LOOKUP_KEYS = Math.max(1, intFromEnv('BENCH_LOOKUP_KEYS', 10_000));
const GENERATOR_NICE = -Math.abs(intFromEnv('BENCH_GENERATOR_NICE', 10));
const PYTHON = process.env.BENCH_PYTHON || '/usr/bin/python3';
const KEEP = process.env.BENCH_KEEP === '1';
const ANALYZE = process.env.BENCH_ANALYZE !== '0';

const SLOTS = FEATURE_ROWS / KEYS;
if (!Number.isInteger(SLOTS) || SLOTS < 3)
  throw new Error(
    `BENCH_FEATURE_ROWS (${FEATURE_ROWS}) must be a multiple of BENCH_KEYS (${KEYS}), at least 3 rows per entity`,
  );
if (KEYS > 1_000_000) throw new Error('BENCH_KEYS: at most 1,000,000 (entity ids have 6 digits)');
if (ENTITY_ROWS < 1) throw new Error('BENCH_ENTITY_ROWS must be positive');
const DAY = 86_400_000;
const TTL_H = 36;
const TTL_MS = TTL_H * 3_600_000;
const TIE_EVERY = 20;
const CORES = availableParallelism();
const benchStarted = performance.now();
const elapsedS = () => (performance.now() - benchStarted) / 1000;
const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 3)
  .toString(36)
  .padStart(3, '0')}`;
const VIEW_NAME = `bench_pit_${tag}`;
/** The data's first slot starts here: the last slot ends now, so the online store's latest values are fresh. */
const BASE_MS = Math.floor(Date.now() / 1000) * 1000 - SLOTS * DAY;

// ---------------------------------------------------------------------------------------------------------------
// The formulas (the same in SQL, in numpy and here)

const P = 2147483647;
const A1 = 1103515245;
const A2 = 2146121005;
const B2 = 1013904223;

/** a * b mod P, exact in doubles for a, b < 2^31. */
function mulmod(a: number, b: number): number {
  return (((a * Math.floor(b / 65536)) % P) * 65536 + a * (b % 65536)) % P;
}
function hash(x: number, salt: number): number {
  return (mulmod((mulmod(x, A1) + salt) % P, A2) + B2) % P;
}
/** The same in SQL, for a bigint expression x (no overflow for x < 8e9). */
const hashSql = (x: string, salt: number) => `(((((${x}) * ${A1} + ${salt}) % ${P}) * ${A2} + ${B2}) % ${P})`;
const msSql = (ms: string) => `(timestamptz 'epoch' + (${ms}) * interval '1 millisecond')`;
const entityName = (e: number) => `e${String(e).padStart(6, '0')}`;

/** Feature row i: its entity e, slot j, event and created times (ms), features. */
function featureRow(e: number, j: number) {
  const i = j * KEYS + e;
  const tie = j > 0 && j < SLOTS - 1 && hash(i, 1) % TIE_EVERY === 0;
  const s = tie ? j - 1 : j;
  const event = BASE_MS + s * DAY + (hash(e * SLOTS + s, 2) % DAY);
  return {
    event,
    created: event + (hash(i, 3) % 1_800_000) * 2 + (j % 2),
    fInt: hash(i, 4) % 1_000_000,
    fFrac: (hash(i, 5) % 1_000_000) / 1024,
    tie,
  };
}

function entityRow(k: number): { e: number; ts: number; mode: number } {
  const e = hash(k, 6) % KEYS;
  const mode = hash(k, 7) % 50;
  const s = hash(k, 8) % SLOTS;
  const onEvent = BASE_MS + s * DAY + (hash(e * SLOTS + s, 2) % DAY);
  const ts =
    mode === 0 ? onEvent : mode === 1 ? onEvent + TTL_MS : BASE_MS - 2 * DAY + (hash(k, 9) % ((SLOTS + 4) * DAY));
  return { e, ts, mode };
}

function featureInsertSql(table: string, from: number, to: number): string {
  const s = `CASE WHEN j > 0 AND j < ${SLOTS - 1} AND ${hashSql('i', 1)} % ${TIE_EVERY} = 0 THEN j - 1 ELSE j END`;
  const event = `${BASE_MS}::bigint + s * ${DAY} + ${hashSql(`e * ${SLOTS} + s`, 2)} % ${DAY}`;
  return `INSERT INTO ${quote(table)} (entity_id, event_ts, created_ts, f_int, f_frac, f_slot)
    SELECT 'e' || lpad(e::text, 6, '0'), ${msSql(event)}, ${msSql(`${event} + (${hashSql('i', 3)} % 1800000) * 2 + j % 2`)},
      (${hashSql('i', 4)} % 1000000)::float8, (${hashSql('i', 5)} % 1000000)::float8 / 1024, j::float8
    FROM (SELECT i, e, j, ${s} AS s FROM (SELECT i, i % ${KEYS} AS e, i / ${KEYS} AS j FROM generate_series(${from}::bigint, ${to - 1}::bigint) i) a) b`;
}

function entityInsertSql(table: string, from: number, to: number): string {
  const onEvent = `${BASE_MS}::bigint + s * ${DAY} + ${hashSql(`e * ${SLOTS} + s`, 2)} % ${DAY}`;
  return `INSERT INTO ${quote(table)} (k, entity_id, ts)
    SELECT k, 'e' || lpad(e::text, 6, '0'), ${msSql(`CASE WHEN m = 0 THEN ${onEvent} WHEN m = 1 THEN ${onEvent} + ${TTL_MS} ELSE ${BASE_MS}::bigint - ${2 * DAY} + ${hashSql('k', 9)} % ${(SLOTS + 4) * DAY}::bigint END`)}
    FROM (SELECT k, ${hashSql('k', 6)} % ${KEYS} AS e, ${hashSql('k', 7)} % 50 AS m, ${hashSql('k', 8)} % ${SLOTS} AS s FROM generate_series(${from}::bigint, ${to - 1}::bigint) k) a`;
}

// ---------------------------------------------------------------------------------------------------------------
// The independent reference: every entity row's expected f_slot, from the formulas

interface Checksums {
  rows: number;
  matched: number;
  nulls: number;
  sum_f_int: number;
  sum_f_frac: number;
  sum_f_slot: number;
  weighted_f_int: number;
}
interface Reference {
  slots: Float64Array;
  checksums: Checksums;
  cases: {
    on_event_time: number;
    on_event_time_matched: number;
    ttl_boundary_expired: number;
    tie_resolved: number;
    tie_resolved_to_earlier_row: number;
    expired: number;
    before_first_event: number;
  };
  /** Per entity: the slot j of its latest row (by event_ts, created_ts). */
  latest: Int32Array;
}

function reference(): Reference {
  const started = performance.now();
  // Entity rows grouped by entity (CSR).
  const es = new Int32Array(ENTITY_ROWS);
  const tss = new Float64Array(ENTITY_ROWS);
  const counts = new Int32Array(KEYS + 1);
  for (let k = 0; k < ENTITY_ROWS; k++) {
    const row = entityRow(k);
    es[k] = row.e;
    tss[k] = row.ts;
    counts[row.e + 1]!++;
  }
  for (let e = 0; e < KEYS; e++) counts[e + 1]! += counts[e]!;
  const fill = counts.slice(0, KEYS);
  const byEntity = new Int32Array(ENTITY_ROWS);
  for (let k = 0; k < ENTITY_ROWS; k++) byEntity[fill[es[k]!]!++] = k;

  const slots = new Float64Array(ENTITY_ROWS).fill(NaN);
  const latest = new Int32Array(KEYS);
  const sums: Checksums = {
    rows: ENTITY_ROWS,
    matched: 0,
    nulls: 0,
    sum_f_int: 0,
    sum_f_frac: 0,
    sum_f_slot: 0,
    weighted_f_int: 0,
  };
  const cases = {
    on_event_time: 0,
    on_event_time_matched: 0,
    ttl_boundary_expired: 0,
    tie_resolved: 0,
    tie_resolved_to_earlier_row: 0,
    expired: 0,
    before_first_event: 0,
  };
  const rows = Array.from({ length: SLOTS }, (_, j) => ({ j, event: 0, created: 0, fInt: 0, fFrac: 0 }));
  for (let e = 0; e < KEYS; e++) {
    for (let j = 0; j < SLOTS; j++) Object.assign(rows[j]!, featureRow(e, j));
    const sorted = [...rows].sort((a, b) => a.event - b.event || a.created - b.created);
    latest[e] = sorted[SLOTS - 1]!.j;
    for (let at = counts[e]!; at < counts[e + 1]!; at++) {
      const k = byEntity[at]!;
      const ts = tss[k]!;
      // The last row (in (event, created) order) with event <= ts.
      let lo = 0;
      let hi = SLOTS;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid]!.event <= ts) lo = mid + 1;
        else hi = mid;
      }
      const pick = lo > 0 ? sorted[lo - 1]! : undefined;
      if (sorted.some((r) => r.event === ts)) cases.on_event_time++;
      if (!pick) {
        cases.before_first_event++;
        continue;
      }
      if (pick.event <= ts - TTL_MS) {
        cases.expired++;
        if (pick.event === ts - TTL_MS) cases.ttl_boundary_expired++;
        continue;
      }
      if (pick.event === ts) cases.on_event_time_matched++;
      const partner = lo > 1 && sorted[lo - 2]!.event === pick.event ? sorted[lo - 2]! : undefined;
      if (partner) {
        cases.tie_resolved++;
        if (pick.j < partner.j) cases.tie_resolved_to_earlier_row++;
      }
      slots[k] = pick.j;
      sums.matched++;
      sums.sum_f_int += pick.fInt;
      sums.sum_f_frac += pick.fFrac;
      sums.sum_f_slot += pick.j;
      sums.weighted_f_int += pick.fInt * ((k % 997) + 1);
    }
  }
  sums.nulls = ENTITY_ROWS - sums.matched;
  console.error(
    `  reference from the formulas: ${fmt(sums.matched)} of ${fmt(ENTITY_ROWS)} entity rows get a value (${((performance.now() - started) / 1000).toFixed(1)} s); ` +
      `${fmt(cases.tie_resolved)} picked among two rows with the same event_ts (${fmt(cases.tie_resolved_to_earlier_row)} of them the earlier row, created later), ` +
      `${fmt(cases.on_event_time_matched)} take a row stamped exactly at their ts, ${fmt(cases.ttl_boundary_expired)} expired exactly at the TTL boundary, ` +
      `${fmt(cases.expired)} expired in all, ${fmt(cases.before_first_event)} before their entity's first event`,
  );
  return { slots, checksums: sums, cases, latest };
}

function compareChecksums(side: string, got: Checksums, want: Checksums): void {
  const keys = Object.keys(want) as (keyof Checksums)[];
  const bad = keys.filter((key) => got[key] !== want[key]);
  if (bad.length)
    throw new Error(
      `${side}: the joined result differs from the reference: ${bad.map((key) => `${key} ${got[key]} (expected ${want[key]})`).join(', ')}`,
    );
}

function compareRows(side: string, got: Float64Array, want: Float64Array): number {
  if (got.length !== want.length) throw new Error(`${side}: ${got.length} rows, expected ${want.length}`);
  let mismatches = 0;
  let first = -1;
  for (let k = 0; k < want.length; k++) {
    const a = got[k]!;
    const b = want[k]!;
    if (!(a === b || (Number.isNaN(a) && Number.isNaN(b)))) {
      mismatches++;
      if (first < 0) first = k;
    }
  }
  if (mismatches)
    throw new Error(
      `${side}: ${mismatches} entity rows joined another feature row than the reference (first: k=${first}, got slot ${got[first]}, expected ${want[first]})`,
    );
  return mismatches;
}

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting

/**
 * CPU seconds used so far by Postgres: every live postgres process, plus what the postmaster's reaped children
 * (parallel
 * workers, closed backends) used. undefined when no postgres process runs here (a remote database).
 */
function postgresCpu(): number | undefined {
  const comm = (pid: string | number) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  let total = 0;
  let seen = false;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || comm(entry) !== 'postgres') continue;
    const stat = statOf(entry);
    if (!stat) continue;
    seen = true;
    total += stat.self;
    if (comm(stat.ppid) !== 'postgres') total += stat.children; // the postmaster
  }
  return seen ? total : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes and cleanup

let db: Db | undefined;
let tempDir = '';
let offlineTable = '';
let ref = '';
const scratchTables = new Set<string>();
let cleaned = false;

async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const child of children) await stopChild(child);
  if (db) {
    if (!KEEP) {
      const steps: [string, string, unknown[]][] = [
        ...[...scratchTables].map(
          (t) => [`drop ${t}`, `DROP TABLE IF EXISTS ${quote(t)}`, []] as [string, string, unknown[]],
        ),
        ...(offlineTable
          ? [[`drop ${offlineTable}`, `DROP TABLE IF EXISTS ${quote(offlineTable)}`, []] as [string, string, unknown[]]]
          : []),
        ...(ref
          ? [
              ['delete online rows', 'DELETE FROM online_features WHERE view = $1', [ref]] as [
                string,
                string,
                unknown[],
              ],
            ]
          : []),
        ['delete the materialisation beside the lookups', 'DELETE FROM online_features WHERE view = $1', [BESIDE_REF]],
        ['delete the feature view', 'DELETE FROM feature_views WHERE name = $1', [VIEW_NAME]],
      ];
      let online = 0;
      for (const [what, text, params] of steps) {
        try {
          const result = await db.$client.query(text, params);
          if (what === 'delete online rows') online = result.rowCount ?? 0;
        } catch (error) {
          console.error(`  cleanup: could not ${what}: ${(error as Error).message}`);
        }
      }
      console.error(
        `  cleanup: dropped the bench's tables, ${fmt(online)} online rows and feature view ${VIEW_NAME} (BENCH_KEEP=1 keeps them)`,
      );
    } else {
      console.error(
        `  BENCH_KEEP=1: kept ${[offlineTable, ...scratchTables].join(', ')}, the online rows of ${ref} and feature view ${VIEW_NAME}`,
      );
    }
    // A failure may leave a client checked out (a round's session): pool.end() would wait for it for ever.
    await Promise.race([closeDb(db).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  }
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

/** The pandas peer: one interpreter, one JSON line per command. */
class Peer {
  private readonly child: ChildProcess;
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly lines: string[] = [];
  private exited?: string;

  constructor(spec: object) {
    this.child = spawn(PYTHON, [join(PROJECT_ROOT, 'bench', 'features_pandas.py'), JSON.stringify(spec)], {
      cwd: PROJECT_ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.add(this.child);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const next = this.waiting.shift();
      if (next) next(line);
      else this.lines.push(line);
    });
    this.child.once('exit', (code, signal) => {
      this.exited = `the pandas peer exited (${signal ?? code})`;
      for (const next of this.waiting.splice(0)) next('');
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async next<T>(): Promise<T> {
    const line = this.lines.shift() ?? (await new Promise<string>((resolve) => this.waiting.push(resolve)));
    if (!line) throw new Error(this.exited ?? 'the pandas peer closed its output');
    const parsed = JSON.parse(line) as T & { error?: string };
    if (parsed.error) throw new Error(`pandas peer: ${parsed.error}`);
    return parsed;
  }

  async ask<T>(command: object): Promise<T> {
    if (this.exited) throw new Error(this.exited);
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    return this.next<T>();
  }

  async quit(): Promise<void> {
    if (!this.exited) this.child.stdin!.end(`${JSON.stringify({ op: 'quit' })}\n`);
    await stopChild(this.child, 10_000);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reporting helpers

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (x: number | undefined, digits: number) =>
  x !== undefined && Number.isFinite(x) ? Number(x.toFixed(digits)) : null;
const secs = (ms: number) => ms / 1000;

async function timed<T>(what: string, run: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = performance.now();
  const value = await run();
  const seconds = secs(performance.now() - started);
  console.error(`  ${what}: ${seconds.toFixed(1)} s`);
  return { value, seconds };
}

// ---------------------------------------------------------------------------------------------------------------
// Flywheel's side

interface FlywheelRun {
  seconds: number;
  pg_cpu_s: number | null;
  checksums: Checksums;
}

/** The timed statement: the join materialised server-side. The checksums are read afterwards (not timed). */
async function runJoin(
  client: pg.PoolClient,
  out: string,
  query: string,
  settings: string[] = [],
): Promise<FlywheelRun> {
  scratchTables.add(out);
  await client.query(`DROP TABLE IF EXISTS ${quote(out)}`);
  await client.query('BEGIN');
  try {
    for (const setting of settings) await client.query(setting);
    const cpu0 = postgresCpu();
    const started = performance.now();
    await client.query(`CREATE UNLOGGED TABLE ${quote(out)} AS ${query}`);
    const seconds = secs(performance.now() - started);
    const cpu1 = postgresCpu();
    await client.query('COMMIT');
    const { rows } = await client.query<Record<keyof Checksums, string>>(
      `SELECT count(*) AS rows, count(f_int) AS matched, count(*) - count(f_int) AS nulls, coalesce(sum(f_int), 0) AS sum_f_int, coalesce(sum(f_frac), 0) AS sum_f_frac,
         coalesce(sum(f_slot), 0) AS sum_f_slot, coalesce(sum(f_int * (k % 997 + 1)), 0) AS weighted_f_int FROM ${quote(out)}`,
    );
    const checksums = Object.fromEntries(
      Object.entries(rows[0]!).map(([key, value]) => [key, Number(value)]),
    ) as unknown as Checksums;
    return { seconds, pg_cpu_s: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : null, checksums };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function rowsOf(client: pg.PoolClient, out: string): Promise<Float64Array> {
  const { rows } = await client.query<{ slots: number[] }>(
    `SELECT array_agg(coalesce(f_slot, -1) ORDER BY k) AS slots FROM ${quote(out)}`,
  );
  return Float64Array.from(rows[0]!.slots, (s) => (s < 0 ? NaN : s));
}

/**
 * The sort-merge formulation: both sides in one stream per entity ordered by time (features before entity rows at
 * the same instant, features by created time), a running max of [event µs, created µs, features…] carries the latest
 * feature row to each entity row (Postgres has no IGNORE NULLS), the TTL is checked on the carried event time.
 * Numeric features only (they travel in a float8 array); one view.
 */
function sortMergeSql(entityTable: string, view: FeatureView, table: string): string {
  const features = Object.keys(view.features);
  const us = (expr: string) => `round(date_part('epoch', ${expr}) * 1e6)`;
  const ttlUs = TTL_MS * 1000;
  const fresh = `w.m IS NOT NULL AND w.m[1] > w.ts_us - ${ttlUs}`;
  return `SELECT w.entity_id, w.ts, w.k, ${features.map((f, n) => `CASE WHEN ${fresh} THEN w.m[${n + 3}] END AS ${quote(f)}`).join(', ')}
  FROM (
    SELECT u.*, max(u.packed) OVER (PARTITION BY u.entity_id ORDER BY u.ts_us, u.kind, u.created_us NULLS FIRST ROWS UNBOUNDED PRECEDING) AS m
    FROM (
      SELECT f.entity_id, NULL::timestamptz AS ts, NULL::bigint AS k, 0 AS kind, ${us('f.event_ts')} AS ts_us, ${us('f.created_ts')} AS created_us,
        ARRAY[${us('f.event_ts')}, coalesce(${us('f.created_ts')}, '-infinity'::float8), ${features.map((f) => `f.${quote(f)}::float8`).join(', ')}] AS packed
      FROM ${quote(table)} f
      UNION ALL
      SELECT e.entity_id, e.ts, e.k, 1, ${us('e.ts')}, NULL, NULL FROM ${quote(entityTable)} e
    ) u
  ) w WHERE w.kind = 1 ORDER BY 1, 2, 3`;
}

/** The plan's node lines, costs off. */
async function explain(client: pg.PoolClient, query: string): Promise<string[]> {
  const { rows } = await client.query<{ 'QUERY PLAN': string }>(
    `EXPLAIN (${EXPLAIN_ANALYZE ? 'ANALYZE, BUFFERS, ' : ''}COSTS OFF) ${query}`,
  );
  return rows.map((r) => r['QUERY PLAN']);
}

// ---------------------------------------------------------------------------------------------------------------
// Online

interface Phase extends LoadResult {
  server_cpu_s: number;
  postgres_cpu_s: number | null;
  machine_busy_pct: number;
}

/** Online lookups at RATE per second, open loop: the quiet phase and the one beside materialisations. */
function lookupLoad(port: number, bodies: string[], idPrefix: string): LoadSpec {
  return openLoopLoad({
    host: '127.0.0.1',
    port,
    path: '/v2/features',
    bodies,
    rate: RATE,
    warmupS: WARMUP_S,
    durationS: SECONDS,
    idPrefix,
  });
}

async function runPhase(spec: LoadSpec, serverPid: number | undefined): Promise<Phase> {
  const pg0 = postgresCpu();
  const result = await runLoadPhase(spec, { dir: tempDir, serverPid, nice: GENERATOR_NICE });
  const pg1 = postgresCpu();
  return { ...result, postgres_cpu_s: pg0 !== undefined && pg1 !== undefined ? pg1 - pg0 : null };
}

/** Where the materialisation beside the lookups writes: the same view's rows under a ref no request names. */
const BESIDE_REF = `${VIEW_NAME}_beside@1`;
/** Requests at least this slow are lined up with the server's and Postgres' pauses. */
const SLOW_MS = 10;

/**
 * The open-loop lookups again, while materializeSql over the whole view writes its KEYS online rows beside them (under
 * BESIDE_REF, deleted again after each cycle, as a full re-materialisation does: WAL, dead tuples, autovacuum), in a
 * loop on a connection of its own from before the warm-up until the phase ends. The serving process's pauses
 * (bench/pauseProbe.ts) and Postgres' waits (bench/pgWaits.ts) are recorded over the same window.
 */
async function lookupsDuringMaterialize(
  view: FeatureView,
  port: number,
  bodies: string[],
  workerNice: number,
  serverPid?: number,
) {
  const range = [new Date(BASE_MS - DAY), new Date(BASE_MS + (SLOTS + 1) * DAY)];
  const cycles: { rows: number; from: number; to: number; insertS: number; deleteS: number }[] = [];
  let stop = false;
  const client = await db!.$client.connect();
  // Materialisations run on a worker, whose Postgres sessions run at the worker's niceness (workers/wiring.ts).
  const sessionNiced = workerNice > 0 && lowerSessionPriority(client, workerNice);
  const beside = (async () => {
    try {
      while (!stop) {
        const from = Date.now();
        const { rowCount } = await client.query(materializeSql(view, offlineTable, BESIDE_REF), range);
        if (ANALYZE && (rowCount ?? 0) >= ANALYZE_AFTER_ROWS) await client.query('ANALYZE online_features');
        const inserted = Date.now();
        await client.query('DELETE FROM online_features WHERE view = $1', [BESIDE_REF]);
        const to = Date.now();
        cycles.push({
          rows: rowCount ?? 0,
          from,
          to,
          insertS: (inserted - from) / 1000,
          deleteS: (to - inserted) / 1000,
        });
      }
    } finally {
      client.release();
    }
  })();
  const pauses = `http://127.0.0.1:${port}/bench/pauses`;
  await fetch(`${pauses}?reset=1`);
  const watch = await watchPostgres(db!.$client, ['online_features']);
  const started = Date.now();
  let phase: Phase;
  try {
    phase = await runPhase({ ...lookupLoad(port, bodies, `${tag}-beside-`), slowMs: SLOW_MS }, serverPid);
  } finally {
    stop = true;
  }
  const ended = Date.now();
  const report = (await (await fetch(pauses)).json()) as PauseReport;
  const postgres = await watch.stop();
  await beside;
  if (cycles.some((c) => c.rows !== KEYS))
    throw new Error(
      `materializeSql beside the lookups wrote ${cycles.map((c) => c.rows).join(', ')} rows, expected ${KEYS}`,
    );
  const measuredFrom = started + (ended - started) - SECONDS * 1000;
  const busy = cycles.reduce((sum, c) => sum + Math.max(0, Math.min(c.to, ended) - Math.max(c.from, measuredFrom)), 0);
  const slowCauses = attributeSlow(phase.slow ?? [], report, {
    'autovacuum (no server pause)': postgres.autovacuum.map((a) => ({ from: a.from, to: a.to })),
  });
  return {
    phase,
    cycles,
    covered: busy / Math.max(1, ended - measuredFrom),
    pauses: report,
    postgres,
    slowCauses,
    sessionNice: sessionNiced ? workerNice : 0,
  };
}

async function postJson(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

// ---------------------------------------------------------------------------------------------------------------
// Main

interface PeerRun {
  sort_features_s: number;
  sort_entities_s: number;
  merge_s: number;
  total_s: number;
  cpu_s: number;
  checksums: Checksums;
  rss_mb: number;
}

try {
  const [pandasVersion = '?', numpyVersion = '?'] = ensurePythonPeer(
    PYTHON,
    'import pandas, numpy; print(pandas.__version__, numpy.__version__)',
    'python3-pandas',
    'bench:features',
  ).split(/\s+/);
  const config = loadConfig();
  db = connectDb(config.databaseUrl, 4);
  const idle0 = machineTicks();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const idle1 = machineTicks();
  const busyBefore = busyPct(idle0, idle1);
  console.error(
    `bench:features: point-in-time join of ${fmt(ENTITY_ROWS)} entity rows × ${fmt(FEATURE_ROWS)} feature rows (${fmt(KEYS)} entities, ${SLOTS} rows each, TTL ${TTL_H}h), ` +
      `Flywheel (Postgres) vs pandas ${pandasVersion} / numpy ${numpyVersion} (${PYTHON}); online lookup at ${fmt(RATE)}/s; ${CORES} cores, machine ${busyBefore.toFixed(0)} % busy before`,
  );
  if (busyBefore > 25)
    console.error(
      `  WARNING: the machine is ${busyBefore.toFixed(0)} % busy before the bench starts; other processes will skew the figures`,
    );
  const leftovers = await db.$client.query<{ tablename: string }>(
    "SELECT tablename FROM pg_tables WHERE tablename LIKE 'fv\\_bench\\_pit\\_%' OR tablename LIKE 'bench\\_pit\\_%'",
  );
  if (leftovers.rows.length)
    console.error(
      `  note: ${leftovers.rows.length} table(s) left by an earlier run that did not clean up: ${leftovers.rows
        .map((r) => r.tablename)
        .slice(0, 6)
        .join(', ')}${leftovers.rows.length > 6 ? ', …' : ''}`,
    );

  // The feature view, registered the way `flywheel features apply` does.
  const view = defineFeatureView({
    name: VIEW_NAME,
    description: 'bench:features synthetic view (dropped at the end of the bench)',
    entities: ['entity_id'],
    timestamp: 'event_ts',
    createdTimestamp: 'created_ts',
    ttl: `${TTL_H}h`,
    source: { query: 'SELECT entity_id, event_ts, created_ts, f_int, f_frac, f_slot FROM bench_features_generated' },
    features: { f_int: 'number', f_frac: 'number', f_slot: 'number' },
  });
  const { row } = await registerFeatureView(db, view);
  offlineTable = row.offlineTable;
  ref = viewRef(row.name, row.version);
  const entityTable = `${VIEW_NAME}_entities`;
  scratchTables.add(entityTable);
  const [, createIndex] = createOfflineTableSql(view, offlineTable);
  console.error(`  feature view ${ref}: offline table ${offlineTable}, entity table ${entityTable}`);

  // Load (not timed for the comparison).
  const load = await timed(
    `loaded ${fmt(FEATURE_ROWS)} feature rows (${CORES} INSERT … SELECT … generate_series in parallel, table UNLOGGED, PIT index dropped meanwhile)`,
    async () => {
      await db!.$client.query(`ALTER TABLE ${quote(offlineTable)} SET UNLOGGED`);
      await db!.$client.query(`DROP INDEX IF EXISTS ${quote(`${offlineTable}_pit`)}`);
      const parts = Math.max(1, Math.min(CORES, 4));
      const edges = Array.from({ length: parts + 1 }, (_, p) => Math.round((p * FEATURE_ROWS) / parts));
      await Promise.all(
        edges.slice(0, -1).map((from, p) => db!.$client.query(featureInsertSql(offlineTable, from, edges[p + 1]!))),
      );
    },
  );
  const loadEntities = await timed(`loaded ${fmt(ENTITY_ROWS)} entity rows`, async () => {
    await db!.$client.query(
      `CREATE UNLOGGED TABLE ${quote(entityTable)} (k bigint NOT NULL, entity_id text NOT NULL, ts timestamptz NOT NULL)`,
    );
    await db!.$client.query(entityInsertSql(entityTable, 0, ENTITY_ROWS));
  });
  const index = await timed('built the PIT index (createOfflineTableSql, maintenance_work_mem 1GB)', async () => {
    const client = await db!.$client.connect();
    try {
      await client.query("SET maintenance_work_mem = '1GB'");
      await client.query(createIndex!);
    } finally {
      client.release();
    }
  });
  const vacuum = await timed('VACUUM ANALYZE of both tables', async () => {
    await db!.$client.query(`VACUUM ANALYZE ${quote(offlineTable)}`);
    await db!.$client.query(`VACUUM ANALYZE ${quote(entityTable)}`);
  });
  const sizes = (
    await db.$client.query<{ heap: string; index: string; entities: string }>(
      'SELECT pg_relation_size($1::regclass) AS heap, pg_relation_size($2::regclass) AS index, pg_relation_size($3::regclass) AS entities',
      [quote(offlineTable), quote(`${offlineTable}_pit`), quote(entityTable)],
    )
  ).rows[0]!;
  const mb = (bytes: string) => Number(bytes) / 1048576;
  console.error(
    `  sizes: feature table ${mb(sizes.heap).toFixed(0)} MB, PIT index ${mb(sizes.index).toFixed(0)} MB, entity table ${mb(sizes.entities).toFixed(0)} MB`,
  );

  // The peer builds its data (not timed).
  tempDir = await mkdtemp(join(tmpdir(), 'flywheel-bench-features-'));
  const peer = new Peer({
    entity_rows: ENTITY_ROWS,
    feature_rows: FEATURE_ROWS,
    keys: KEYS,
    base_ms: BASE_MS,
    ttl_ms: TTL_MS,
    tie_every: TIE_EVERY,
  });
  const ready = await peer.next<{ gen_s: number; rss_mb: number; pandas: string; numpy: string; python: string }>();
  console.error(
    `  pandas peer (pid ${peer.pid}, Python ${ready.python}) built the same rows with numpy in ${ready.gen_s.toFixed(1)} s (RSS ${ready.rss_mb.toFixed(0)} MB)`,
  );

  const expected = reference();

  // Rounds.
  const client = await db.$client.connect();
  const sessionSettings: string[] = [];
  if (WORK_MEM) sessionSettings.push(`SET work_mem = '${WORK_MEM.replace(/'/g, '')}'`);
  if (PARALLEL_WORKERS) sessionSettings.push(`SET max_parallel_workers_per_gather = ${Number(PARALLEL_WORKERS)}`);
  for (const setting of sessionSettings) await client.query(setting);
  const show = async (name: string) => (await client.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]!;
  const settings = {
    work_mem: await show('work_mem'),
    max_parallel_workers_per_gather: await show('max_parallel_workers_per_gather'),
    jit: await show('jit'),
    shared_buffers: await show('shared_buffers'),
    effective_cache_size: await show('effective_cache_size'),
    random_page_cost: await show('random_page_cost'),
    // Postgres 16 dropped the lc_collate setting: the database's collation is in pg_database.
    lc_collate: (
      await client.query<{ c: string }>('SELECT datcollate AS c FROM pg_database WHERE datname = current_database()')
    ).rows[0]!.c,
    server_version: await show('server_version'),
    set_by_bench: sessionSettings,
  };
  console.error(
    `  Postgres ${settings.server_version}: work_mem ${settings.work_mem}, max_parallel_workers_per_gather ${settings.max_parallel_workers_per_gather}, jit ${settings.jit}, shared_buffers ${settings.shared_buffers}, collation ${settings.lc_collate}` +
      `${sessionSettings.length ? ` (set for the session: ${sessionSettings.join('; ')})` : ' (server settings, nothing set for the session)'}`,
  );

  const entityColumns = ['entity_id', 'ts', 'k'];
  const joinSql = pointInTimeJoinSql(`SELECT * FROM ${quote(entityTable)}`, entityColumns, 'ts', [
    { view, table: offlineTable },
  ]);
  const outTable = `${VIEW_NAME}_out`;
  console.error(`  timed, Flywheel: CREATE UNLOGGED TABLE ${outTable} AS ${joinSql}`);
  const flywheelRuns: FlywheelRun[] = [];
  const peerRuns: PeerRun[] = [];
  let flywheelRowsChecked = false;
  let peerRowsChecked = false;
  const { rounds, stopped } = await budgetedRounds(REPEATS, BUDGET_S, elapsedS, async (round) => {
    const order = round % 2 === 0 ? ['flywheel', 'pandas'] : ['pandas', 'flywheel'];
    for (const side of order) {
      if (side === 'flywheel') {
        const run = await runJoin(client, outTable, joinSql);
        compareChecksums('flywheel', run.checksums, expected.checksums);
        if (!flywheelRowsChecked) {
          compareRows('flywheel', await rowsOf(client, outTable), expected.slots);
          flywheelRowsChecked = true;
        }
        flywheelRuns.push(run);
        console.error(
          `  round ${round + 1} flywheel ${run.seconds.toFixed(2)} s (postgres CPU ${run.pg_cpu_s?.toFixed(2) ?? '?'} s); ${fmt(run.checksums.matched)} matched, checksums = reference`,
        );
      } else {
        const dump = peerRowsChecked ? undefined : join(tempDir, 'pandas_slots.f64');
        const run = await peer.ask<PeerRun>({ op: 'run', ...(dump ? { dump } : {}) });
        compareChecksums('pandas', run.checksums, expected.checksums);
        if (dump) {
          const bytes = readFileSync(dump);
          const copy = new Uint8Array(bytes.byteLength);
          copy.set(bytes);
          compareRows('pandas', new Float64Array(copy.buffer), expected.slots);
          peerRowsChecked = true;
        }
        peerRuns.push(run);
        console.error(
          `  round ${round + 1} pandas   ${run.total_s.toFixed(2)} s (sort features ${run.sort_features_s.toFixed(2)} + sort entities ${run.sort_entities_s.toFixed(2)} + merge_asof ${run.merge_s.toFixed(2)}; CPU ${run.cpu_s.toFixed(2)} s, RSS ${run.rss_mb.toFixed(0)} MB); checksums = reference`,
        );
      }
    }
  });
  console.error(
    `  row-level check: every entity row's joined feature row is the reference's on both sides (${fmt(ENTITY_ROWS)} rows each)`,
  );

  const plan = await explain(client, joinSql);
  console.error(
    `  Postgres plan of the timed query (EXPLAIN${EXPLAIN_ANALYZE ? ' ANALYZE' : ''}, costs off):\n${plan.map((l) => `    ${l}`).join('\n')}`,
  );

  let idiomatic: { idiomatic_sort_s: number; same_order: boolean } | undefined;
  if (elapsedS() < BUDGET_S) {
    idiomatic = await peer.ask<{ idiomatic_sort_s: number; same_order: boolean }>({ op: 'idiomatic' });
    if (!idiomatic.same_order)
      throw new Error('pandas: sort_values([event_ts, created_ts]) and np.lexsort disagree on the order');
    console.error(
      `  pandas idiomatic features.sort_values(['event_ts', 'created_ts']): ${idiomatic.idiomatic_sort_s.toFixed(2)} s (same order as np.lexsort + take)`,
    );
  }
  await peer.quit();

  // Variants, once each.
  const variants: Record<string, { seconds: number; pg_cpu_s: number | null; what: string } | { skipped: string }> = {};
  if (VARIANTS) {
    const list: [string, string, string, string[]][] = [
      [
        'lateral_id_first',
        'pointInTimeJoinSql as is, entity columns (k, entity_id, ts): an id column first',
        pointInTimeJoinSql(`SELECT * FROM ${quote(entityTable)}`, ['k', 'entity_id', 'ts'], 'ts', [
          { view, table: offlineTable },
        ]),
        [],
      ],
      [
        'lateral_id_first_presorted',
        'the same with entitySql ordered by (entity_id::text, ts): the proposed change',
        pointInTimeJoinSql(
          `SELECT * FROM ${quote(entityTable)} ORDER BY entity_id::text, ts`,
          ['k', 'entity_id', 'ts'],
          'ts',
          [{ view, table: offlineTable }],
        ),
        [],
      ],
      [
        'lateral_presorted',
        'the timed query with entitySql ordered by (entity_id::text, ts): the proposed change where the planner already sorts so',
        pointInTimeJoinSql(`SELECT * FROM ${quote(entityTable)} ORDER BY entity_id::text, ts`, entityColumns, 'ts', [
          { view, table: offlineTable },
        ]),
        [],
      ],
      [
        'lateral_work_mem_256mb',
        'the timed query with SET LOCAL work_mem = 256MB',
        joinSql,
        ["SET LOCAL work_mem = '256MB'"],
      ],
      [
        'sort_merge',
        'window function over a UNION ALL of both sides (running max of a packed array)',
        sortMergeSql(entityTable, view, offlineTable),
        [],
      ],
    ];
    for (const [n, [name, what, query, localSettings]] of list.entries()) {
      if (elapsedS() > BUDGET_S) {
        variants[name] = { skipped: `past BENCH_BUDGET_S=${BUDGET_S}` };
        continue;
      }
      const out = `${VIEW_NAME}_variant${n + 1}`;
      const run = await runJoin(client, out, query, localSettings);
      compareChecksums(name, run.checksums, expected.checksums);
      compareRows(name, await rowsOf(client, out), expected.slots);
      await client.query(`DROP TABLE IF EXISTS ${quote(out)}`);
      variants[name] = { seconds: run.seconds, pg_cpu_s: run.pg_cpu_s, what };
      const top = (await explain(client, query))
        .filter((l) => /Nested Loop|Memoize|Sort Key|WindowAgg|Gather|Index Scan|Seq Scan|Incremental/.test(l))
        .map((l) => l.trim())
        .join(' | ');
      console.error(
        `  variant ${name}: ${run.seconds.toFixed(2)} s (postgres CPU ${run.pg_cpu_s?.toFixed(2) ?? '?'} s), rows = reference — ${what}\n    plan: ${top}`,
      );
    }
  }
  await client.query(`DROP TABLE IF EXISTS ${quote(outTable)}`);
  client.release();

  // Online: materialise, serve, check skew, load.
  const materialized = await timed(
    'materialised the view into online_features (materializeSql over the whole event range)',
    async () => {
      const c = await db!.$client.connect();
      try {
        return (
          (
            await c.query(materializeSql(view, offlineTable, ref), [
              new Date(BASE_MS - DAY),
              new Date(BASE_MS + (SLOTS + 1) * DAY),
            ])
          ).rowCount ?? 0
        );
      } finally {
        c.release();
      }
    },
  );
  // What materializeWindow does after a large window (features/store.ts ANALYZE_AFTER_ROWS); BENCH_ANALYZE=0 skips it
  // to show the lookups on the statistics from before the write.
  if (ANALYZE && materialized.value >= ANALYZE_AFTER_ROWS) await db.$client.query('ANALYZE online_features');
  if (materialized.value !== KEYS)
    throw new Error(`materializeSql wrote ${materialized.value} online rows, expected ${KEYS}`);

  const server = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'featuresServer.ts')], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(server);
  let serverOut = '';
  server.stdout!.setEncoding('utf8').on('data', (text: string) => (serverOut += text));
  let port = 0;
  await waitUntil(
    'serving process',
    async () => {
      const line = serverOut.split('\n').find((l) => l.startsWith('{"port"'));
      if (line) port = (JSON.parse(line) as { port: number }).port;
      return port > 0 && (await fetch(`http://127.0.0.1:${port}/v2/health/live`)).ok;
    },
    60_000,
    server,
  );
  const url = `http://127.0.0.1:${port}/v2/features`;

  // Skew: what the server answers = the offline table's latest row = the formula's latest row.
  const skewEntities = Array.from({ length: 64 }, (_, n) => hash(n, 10) % KEYS);
  const offlineLatest = new Map(
    (
      await db.$client.query<{ entity_id: string; f_int: number; f_frac: number; f_slot: number }>(
        `SELECT DISTINCT ON (entity_id) entity_id, f_int, f_frac, f_slot FROM ${quote(offlineTable)} WHERE entity_id = ANY($1) ORDER BY entity_id, event_ts DESC, created_ts DESC NULLS LAST`,
        [skewEntities.map(entityName)],
      )
    ).rows.map((r) => [r.entity_id, r]),
  );
  let skewChecked = 0;
  const skewProblems: string[] = [];
  const checkServed = (e: number, served: Record<string, unknown> | undefined) => {
    const name = entityName(e);
    const j = expected.latest[e]!;
    const formula = featureRow(e, j);
    const want = { f_int: formula.fInt, f_frac: formula.fFrac, f_slot: j };
    const offline = offlineLatest.get(name);
    for (const f of ['f_int', 'f_frac', 'f_slot'] as const) {
      if (served?.[f] !== want[f])
        skewProblems.push(`${name}.${f}: served ${JSON.stringify(served?.[f])}, formula ${want[f]}`);
      if (offline?.[f] !== want[f])
        skewProblems.push(`${name}.${f}: offline latest ${offline?.[f]}, formula ${want[f]}`);
    }
    if (served?.entity_id !== name) skewProblems.push(`${name}: served entity_id ${JSON.stringify(served?.entity_id)}`);
    skewChecked++;
  };
  const batch = await postJson(url, { view: ref, entities: skewEntities.map((e) => ({ entity_id: entityName(e) })) });
  if (batch.status !== 200)
    throw new Error(`POST /v2/features answered ${batch.status}: ${JSON.stringify(batch.json)}`);
  const served = batch.json.features as Record<string, unknown>[];
  skewEntities.forEach((e, n) => checkServed(e, served[n]));
  for (const e of skewEntities.slice(0, 8)) {
    const single = await postJson(url, { view: ref, entities: [{ entity_id: entityName(e) }] });
    if (single.status !== 200)
      throw new Error(`POST /v2/features answered ${single.status}: ${JSON.stringify(single.json)}`);
    checkServed(e, (single.json.features as Record<string, unknown>[])[0]);
  }
  if (skewProblems.length)
    throw new Error(
      `online/offline skew: ${skewProblems.slice(0, 5).join('; ')}${skewProblems.length > 5 ? ` (and ${skewProblems.length - 5} more)` : ''}`,
    );
  console.error(
    `  skew check: ${skewChecked} lookups (64 entities in one request, 8 single) = the offline table's latest row = the formula's; online key = entityKey([id]) = ${JSON.stringify(entityKey([entityName(skewEntities[0]!)]))}`,
  );

  const bodies = Array.from({ length: Math.min(LOOKUP_KEYS, KEYS) }, (_, n) =>
    JSON.stringify({ view: ref, entities: [{ entity_id: entityName(hash(n, 11) % KEYS) }] }),
  );
  // Right after the bulk write: how one lookup runs (plan, buffers), and what Postgres did during the quiet phase.
  const lookupPlan = (
    await db.$client.query<{ 'QUERY PLAN': string }>(
      'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT entity_key, values FROM online_features WHERE view = $1 AND entity_key = ANY($2)',
      [ref, [entityName(hash(1, 11) % KEYS)]],
    )
  ).rows.map((r) => r['QUERY PLAN'].trim());
  console.error(`  one lookup right after materialising: ${lookupPlan.join(' | ')}`);
  const quietWatch = await watchPostgres(db.$client, ['online_features']);
  const phase = await runPhase(lookupLoad(port, bodies, `${tag}-`), server.pid);
  const quietPostgres = await quietWatch.stop();
  console.error(`  during the quiet phase, ${describePgWaits(quietPostgres)}`);
  const notOk = phase.measured - phase.ok;
  console.error(
    `  online lookup at ${fmt(RATE)}/s (open loop, ${SECONDS} s after ${WARMUP_S} s warm-up, ${bodies.length} entities): achieved ${fmt(phase.rps)}/s, ` +
      `p50 ${phase.latency_ms.p50.toFixed(2)} ms, p90 ${phase.latency_ms.p90.toFixed(2)} ms, p99 ${phase.latency_ms.p99.toFixed(2)} ms, p99.9 ${phase.latency_ms.p999.toFixed(2)} ms, max ${phase.latency_ms.max.toFixed(1)} ms; ` +
      `not 200: ${notOk} ${JSON.stringify(phase.statuses)}, errors ${phase.errors}${phase.first_error ? ` (${phase.first_error})` : ''}, unfinished ${phase.unfinished}; generator send lag p99 ${phase.send_lag_ms?.p99?.toFixed(2)} ms; ` +
      `server CPU ${((1e6 * phase.server_cpu_s) / Math.max(1, phase.completed)).toFixed(0)} µs/req${phase.postgres_cpu_s !== null ? ` + postgres ${((1e6 * phase.postgres_cpu_s) / Math.max(1, phase.completed)).toFixed(0)} µs/req` : ''}, machine ${phase.machine_busy_pct.toFixed(0)} % busy`,
  );
  if (phase.ok === 0)
    throw new Error(
      `the serving process answered no lookup with 200 (${JSON.stringify(phase.statuses)}; ${phase.first_error ?? ''})`,
    );

  // The same lookups while a materialisation of the whole view runs beside them (issue: pauses under background work).
  const during = await lookupsDuringMaterialize(view, port, bodies, config.workerNice, server.pid);
  const dp = during.phase;
  console.error(
    `  online lookup at ${fmt(RATE)}/s during materialisation (${during.cycles.length} cycles of ${fmt(KEYS)} rows written + deleted beside it by a session at nice ${during.sessionNice}, ${fmt(100 * during.covered)} % of the window): ` +
      `p50 ${dp.latency_ms.p50.toFixed(2)} ms, p99 ${dp.latency_ms.p99.toFixed(2)} ms, p99.9 ${dp.latency_ms.p999.toFixed(2)} ms, max ${dp.latency_ms.max.toFixed(1)} ms; achieved ${fmt(dp.rps)}/s, ` +
      `not 200 ${dp.measured - dp.ok}, errors ${dp.errors}; machine ${dp.machine_busy_pct.toFixed(0)} % busy, load average ${loadavg()[0]!.toFixed(1)}\n` +
      `    server: ${describePauses(during.pauses)}\n    ${describePgWaits(during.postgres)}\n` +
      `    requests ≥ ${SLOW_MS} ms: ${dp.slow?.length ?? 0}, overlapping ${JSON.stringify(during.slowCauses)}`,
  );
  await stopChild(server);

  // Summary.
  const bestF = flywheelRuns.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const bestP = peerRuns.reduce((a, b) => (b.total_s < a.total_s ? b : a));
  const ratio = bestP.total_s / bestF.seconds;
  const idiomaticTotal = idiomatic ? idiomatic.idiomatic_sort_s + bestP.sort_entities_s + bestP.merge_s : undefined;
  const variantLine = (name: string) => {
    const v = variants[name];
    return v && 'seconds' in v ? `${v.seconds.toFixed(2)} s` : v ? `skipped (${v.skipped})` : '-';
  };
  const lines = [
    '',
    `bench:features — point-in-time join, ${fmt(ENTITY_ROWS)} entity rows × ${fmt(FEATURE_ROWS)} feature rows (${fmt(KEYS)} entities, TTL ${TTL_H}h), ${CORES} cores, best of ${rounds} round${rounds === 1 ? '' : 's'}`,
    `  flywheel  CREATE UNLOGGED TABLE … AS pointInTimeJoinSql   ${bestF.seconds.toFixed(2).padStart(6)} s   (postgres CPU ${bestF.pg_cpu_s?.toFixed(2) ?? '?'} s; runs ${flywheelRuns.map((r) => r.seconds.toFixed(2)).join(', ')})`,
    `  pandas    lexsort + sort entities + merge_asof          ${bestP.total_s.toFixed(2).padStart(6)} s   (${bestP.sort_features_s.toFixed(2)} + ${bestP.sort_entities_s.toFixed(2)} + ${bestP.merge_s.toFixed(2)}; CPU ${bestP.cpu_s.toFixed(2)} s; runs ${peerRuns.map((r) => r.total_s.toFixed(2)).join(', ')})`,
    ...(idiomaticTotal !== undefined
      ? [
          `  pandas    with sort_values([event_ts, created_ts])       ${idiomaticTotal.toFixed(2).padStart(6)} s   (the sort alone ${idiomatic!.idiomatic_sort_s.toFixed(2)} s, once)`,
        ]
      : []),
    `  ratio vs pandas: ${ratio.toFixed(2)} (> 1: Flywheel faster)${idiomaticTotal !== undefined ? `; vs pandas' idiomatic sort ${(idiomaticTotal / bestF.seconds).toFixed(2)}` : ''}`,
    `  results: ${fmt(expected.checksums.matched)} matched, ${fmt(expected.checksums.nulls)} null, identical row by row on both sides and to the reference (ties ${fmt(expected.cases.tie_resolved)}, exact-ts ${fmt(expected.cases.on_event_time_matched)}, TTL boundary ${fmt(expected.cases.ttl_boundary_expired)})`,
    ...(VARIANTS
      ? [
          `  variants: id column first ${variantLine('lateral_id_first')}, id first + entity rows pre-sorted ${variantLine('lateral_id_first_presorted')}, timed query + pre-sort ${variantLine('lateral_presorted')}, work_mem 256MB ${variantLine('lateral_work_mem_256mb')}, sort-merge ${variantLine('sort_merge')}`,
        ]
      : []),
    `  not timed: load ${(load.seconds + loadEntities.seconds).toFixed(1)} s, PIT index ${index.seconds.toFixed(1)} s, vacuum analyze ${vacuum.seconds.toFixed(1)} s; pandas data ${ready.gen_s.toFixed(1)} s; materialise ${fmt(materialized.value)} online rows ${materialized.seconds.toFixed(1)} s`,
    `  online POST /v2/features at ${fmt(RATE)}/s: p50 ${phase.latency_ms.p50.toFixed(2)} ms, p99 ${phase.latency_ms.p99.toFixed(2)} ms, p99.9 ${phase.latency_ms.p999.toFixed(2)} ms, achieved ${fmt(phase.rps)}/s, not 200 ${notOk}, errors ${phase.errors}; skew check ${skewChecked} lookups, 0 mismatches`,
    `  during a materialisation of ${fmt(KEYS)} rows: p50 ${dp.latency_ms.p50.toFixed(2)} ms, p99 ${dp.latency_ms.p99.toFixed(2)} ms, max ${dp.latency_ms.max.toFixed(1)} ms, achieved ${fmt(dp.rps)}/s, not 200 ${dp.measured - dp.ok} (load average ${loadavg()[0]!.toFixed(1)})`,
    ...(stopped ? [`  ${stopped}`] : []),
    `  total ${elapsedS().toFixed(0)} s`,
    '',
  ];
  console.log(lines.join('\n'));

  const figures = {
    bench: 'features',
    ratio_vs_peer: fixed(ratio, 3),
    online_p99_ms: phase.latency_ms.p99,
    flywheel_pit_s: fixed(bestF.seconds, 3),
    peer_pit_s: fixed(bestP.total_s, 3),
    peer_sort_features_s: fixed(bestP.sort_features_s, 3),
    peer_sort_entities_s: fixed(bestP.sort_entities_s, 3),
    peer_merge_s: fixed(bestP.merge_s, 3),
    peer_idiomatic_sort_s: fixed(idiomatic?.idiomatic_sort_s, 3),
    ratio_vs_peer_idiomatic_sort: idiomaticTotal !== undefined ? fixed(idiomaticTotal / bestF.seconds, 3) : null,
    flywheel_pg_cpu_s: fixed(bestF.pg_cpu_s ?? undefined, 2),
    peer_cpu_s: fixed(bestP.cpu_s, 2),
    peer_rss_mb: fixed(bestP.rss_mb, 0),
    flywheel_runs_s: flywheelRuns.map((r) => fixed(r.seconds, 3)),
    peer_runs_s: peerRuns.map((r) => fixed(r.total_s, 3)),
    rounds,
    timed_flywheel: 'CREATE UNLOGGED TABLE … AS pointInTimeJoinSql(entity table, [entity_id, ts, k], ts, [view])',
    timed_peer:
      'np.lexsort((created_ts, event_ts)) + take; entities.sort_values(ts); merge_asof(backward, by entity_id, tolerance ttl - 1ns)',
    variants: Object.fromEntries(
      Object.entries(variants).map(([k, v]) => [
        k,
        'seconds' in v ? { seconds: fixed(v.seconds, 3), pg_cpu_s: fixed(v.pg_cpu_s ?? undefined, 2) } : v,
      ]),
    ),
    correctness: {
      ...expected.checksums,
      ...expected.cases,
      row_mismatches: 0,
      sides_checked: ['flywheel', 'pandas', ...Object.keys(variants).filter((k) => 'seconds' in variants[k]!)],
    },
    postgres: settings,
    plan,
    online_p99_ms_during_materialize: dp.latency_ms.p99,
    online_p50_ms_during_materialize: dp.latency_ms.p50,
    online_p999_ms_during_materialize: dp.latency_ms.p999,
    online_max_ms_during_materialize: dp.latency_ms.max,
    online_during_materialize: {
      achieved_rps: fixed(dp.rps, 1),
      not_ok: dp.measured - dp.ok,
      errors: dp.errors,
      materialize_cycles: during.cycles.map((c) => ({
        rows: c.rows,
        insert_s: fixed(c.insertS, 2),
        delete_s: fixed(c.deleteS, 2),
      })),
      materialize_window_covered: fixed(during.covered, 2),
      materialize_session_nice: during.sessionNice,
      machine_busy_pct: fixed(dp.machine_busy_pct, 0),
      load_average: fixed(loadavg()[0], 2),
      ...pauseFigures(dp.slow, during.slowCauses, during.pauses),
      postgres_waits: during.postgres.waits,
      postgres_checkpoints: during.postgres.checkpoints,
      postgres_tables: during.postgres.tables,
      postgres_autovacuum: during.postgres.autovacuum.map((a) => ({
        query: a.query,
        seconds: fixed((a.to - a.from) / 1000, 1),
      })),
    },
    online_postgres_waits: quietPostgres.waits,
    online_postgres_autovacuum: quietPostgres.autovacuum.map((a) => a.query),
    online_lookup_plan_after_materialize: lookupPlan,
    online_p50_ms: phase.latency_ms.p50,
    online_p90_ms: phase.latency_ms.p90,
    online_p999_ms: phase.latency_ms.p999,
    online_max_ms: phase.latency_ms.max,
    online_achieved_rps: fixed(phase.rps, 1),
    online_rate: RATE,
    online_seconds: SECONDS,
    online_ok: phase.ok,
    online_not_ok: notOk,
    online_statuses: phase.statuses,
    online_errors: phase.errors,
    online_unfinished: phase.unfinished,
    online_send_lag_p99_ms: phase.send_lag_ms?.p99 ?? null,
    online_server_cpu_us_per_request: fixed((1e6 * phase.server_cpu_s) / Math.max(1, phase.completed), 0),
    online_postgres_cpu_us_per_request:
      phase.postgres_cpu_s !== null ? fixed((1e6 * phase.postgres_cpu_s) / Math.max(1, phase.completed), 0) : null,
    online_lookup_entities: bodies.length,
    skew_checked: skewChecked,
    skew_mismatches: 0,
    materialize_s: fixed(materialized.seconds, 2),
    online_rows: materialized.value,
    load_features_s: fixed(load.seconds, 1),
    load_entities_s: fixed(loadEntities.seconds, 1),
    index_s: fixed(index.seconds, 1),
    vacuum_analyze_s: fixed(vacuum.seconds, 1),
    peer_data_s: fixed(ready.gen_s, 1),
    feature_table_mb: fixed(mb(sizes.heap), 0),
    pit_index_mb: fixed(mb(sizes.index), 0),
    entity_rows: ENTITY_ROWS,
    feature_rows: FEATURE_ROWS,
    keys: KEYS,
    ttl: `${TTL_H}h`,
    cores: CORES,
    machine_busy_pct_before: fixed(busyBefore, 0),
    pandas: ready.pandas,
    numpy: ready.numpy,
    python: ready.python,
    node_version: process.versions.node,
    total_s: fixed(elapsedS(), 1),
  };
  await cleanup();
  console.log(JSON.stringify(figures));
} finally {
  await cleanup();
}
