/**
 * bench:drift — Flywheel's drift statistics against scipy + numpy, on the same arrays in the same run: PSI over 10
 * equal-mass quantile bins of the reference and the two-sample Kolmogorov–Smirnov test (D and its asymptotic p-value),
 * per column, BENCH_ROWS reference values against BENCH_ROWS current values (default 1,000,000 each) × BENCH_COLUMNS
 * columns (default 20). No Temporal, MinIO or Postgres.
 *
 * Data: deterministic (ml/random.ts `seededRandom` / `normal`, one seed per column and side), a mix of normal,
 * lognormal, uniform, a two-component mixture and discrete integer columns (Poisson, integers 1..5: ties, and
 * duplicate quantile edges that binReference drops). Half of the columns draw reference and current from the same
 * distribution (no drift: PSI ≈ 0, KS p-value not small); the others shift, rescale, reweight or add outliers to the
 * current sample, some by a lot and some barely (KS sees them, PSI hardly). The columns are written once as raw
 * little-endian float64 files into a temporary directory (deleted at the end, also on SIGINT / SIGTERM); both sides
 * read those very files (numpy: np.fromfile; here: into Float64Arrays) before their timed part, so they get identical
 * numbers. Beyond 20 columns the list repeats with fresh seeds.
 *
 * Flywheel, in this process: per column the functions monitoring and validation use (ml/quality/drift.ts) —
 * `binReference(ref, 10)` (sort a copy, edges = sorted[floor(i·n/10)] with duplicates dropped, reference shares,
 * mean), `psi(reference, cur)` (binCounts of the current sample + psiFromCounts with ε = 1e-4) and `ksTest(ref, cur)`
 * (sorts copies of both, merge for D, asymptotic p-value). Timed: the loop over all columns, from "have the two
 * Float64Arrays" to "have PSI + KS for every column"; the three calls are also timed on their own (phases).
 *
 * scipy (bench/drift_scipy.py, Debian's python3-scipy 1.10 + numpy on /usr/bin/python3, a fresh interpreter per run):
 * the same edges (np.partition at the same order-statistic indices, np.unique; = np.quantile(method='higher') when n is
 * a multiple of 10), counts by np.searchsorted(side='right') + np.bincount, PSI with the same ε smoothing, and
 * scipy.stats.ks_2samp(method='asymp'). Its asymptotic p-value is kstwo.sf(D, round(n·m/(n+m))), Flywheel's is the
 * limiting Kolmogorov distribution with Stephens' correction, so p differs a little; D must be identical. Timed inside
 * the script the same way (perf_counter around the loop over columns; loading the files is not timed).
 *
 * Agreement (checked on every run): the edges, |PSI_flywheel − PSI_scipy|, |D_flywheel − D_scipy| (must be ≤ 1e-12,
 * else the bench fails) and |p_flywheel − p_scipy| per column; the maxima are reported. Once, untimed, the scipy side
 * also computes PSI with np.quantile's default (linear interpolation) edges, to show what the edge definition changes.
 *
 * Runs: BENCH_REPEATS (default 3) rounds, alternating order (F S, S F, F S); each side's figure is its best (fastest)
 * run; rounds stop early when another would pass BENCH_BUDGET_S (default 420). About 45 s on the 2-core
 * reference machine at the default size. Goal: ratio_vs_scipy ≥ 3.
 *
 * Environment: BENCH_ROWS (default 1000000), BENCH_COLUMNS (default 20), BENCH_REPEATS (default 3), BENCH_BUDGET_S
 * (default 420), BENCH_PYTHON (default /usr/bin/python3). A quick run: BENCH_ROWS=100000 BENCH_REPEATS=1 npm run
 * bench:drift.
 *
 * Last line of stdout: one JSON object with `ratio_vs_scipy` (scipy seconds ÷ Flywheel seconds; > 1: Flywheel is
 * faster), `flywheel_seconds`, `scipy_seconds` and the agreement figures.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { binReference, ksTest, psi } from '../ml/quality/drift';
import { normal, seededRandom } from '../ml/random';
import { PROJECT_ROOT } from '../config/env';
import { budgetedRounds, ensurePythonPeer, intFromEnv, lastJson, runProcess } from './peer';

const ROWS = intFromEnv('BENCH_ROWS', 1_000_000);
const COLUMNS = Math.max(1, intFromEnv('BENCH_COLUMNS', 20));
const REPEATS = Math.max(1, intFromEnv('BENCH_REPEATS', 3));
const BUDGET_S = intFromEnv('BENCH_BUDGET_S', 420);
const PYTHON = process.env.BENCH_PYTHON || '/usr/bin/python3';
const BINS = 10;
const GOAL = 3;
const D_TOLERANCE = 1e-12;
if (ROWS < 100) throw new Error('BENCH_ROWS must be at least 100');
if (endianness() !== 'LE')
  throw new Error('bench:drift writes Float64Array bytes as little-endian float64 files; this machine is big-endian');
const benchStarted = performance.now();
const elapsedS = () => (performance.now() - benchStarted) / 1000;

// ---------------------------------------------------------------------------------------------------------------
// Data

type Draw = (random: () => number) => number;
const gaussian =
  (mu: number, sigma: number): Draw =>
  (r) =>
    mu + sigma * normal(r);
const lognormal =
  (mu: number, sigma: number): Draw =>
  (r) =>
    Math.exp(mu + sigma * normal(r));
const uniform =
  (a: number, b: number): Draw =>
  (r) =>
    a + (b - a) * r();
const mixture =
  (weight: number, a: Draw, b: Draw): Draw =>
  (r) =>
    r() < weight ? a(r) : b(r);
/** Poisson(λ) by inversion of its CDF: non-negative integers, many ties. */
const poisson =
  (lambda: number): Draw =>
  (r) => {
    const u = r();
    let k = 0;
    let p = Math.exp(-lambda);
    let cdf = p;
    while (u > cdf && k < 1000) {
      k++;
      p *= lambda / k;
      cdf += p;
    }
    return k;
  };
/** Integers 1..weights.length with the given (normalised) weights. */
const categorical = (weights: number[]): Draw => {
  const total = weights.reduce((a, b) => a + b, 0);
  return (r) => {
    let u = r() * total;
    for (let i = 0; i < weights.length; i++) if ((u -= weights[i]!) < 0) return i + 1;
    return weights.length;
  };
};

interface ColumnSpec {
  name: string;
  drift: string;
  reference: Draw;
  current: Draw;
}
const SPECS: ColumnSpec[] = [
  { name: 'normal', drift: 'none', reference: gaussian(0, 1), current: gaussian(0, 1) },
  { name: 'normal_shift', drift: 'mean +0.25 sd', reference: gaussian(0, 1), current: gaussian(0.25, 1) },
  { name: 'normal_tiny_shift', drift: 'mean +0.02 sd', reference: gaussian(50, 10), current: gaussian(50.2, 10) },
  { name: 'normal_scale', drift: 'sd x1.33', reference: gaussian(100, 15), current: gaussian(100, 20) },
  { name: 'normal_wide', drift: 'none', reference: gaussian(1000, 250), current: gaussian(1000, 250) },
  { name: 'lognormal', drift: 'none', reference: lognormal(0, 0.5), current: lognormal(0, 0.5) },
  { name: 'lognormal_shift', drift: 'log-mean +0.1', reference: lognormal(0, 0.5), current: lognormal(0.1, 0.5) },
  { name: 'lognormal_heavy', drift: 'log-sd 1 -> 1.25', reference: lognormal(3, 1), current: lognormal(3, 1.25) },
  { name: 'uniform', drift: 'none', reference: uniform(0, 1), current: uniform(0, 1) },
  { name: 'uniform_shift', drift: 'range +0.05', reference: uniform(0, 1), current: uniform(0.05, 1.05) },
  { name: 'uniform_wide', drift: 'range x1.3', reference: uniform(-100, 100), current: uniform(-130, 130) },
  { name: 'poisson', drift: 'none (integers)', reference: poisson(3), current: poisson(3) },
  { name: 'poisson_shift', drift: 'lambda 3 -> 3.6', reference: poisson(3), current: poisson(3.6) },
  {
    name: 'int_1_5',
    drift: 'none (5 values)',
    reference: categorical([1, 1, 1, 1, 1]),
    current: categorical([1, 1, 1, 1, 1]),
  },
  {
    name: 'int_1_5_reweighted',
    drift: 'weights change',
    reference: categorical([1, 2, 4, 2, 1]),
    current: categorical([2, 2, 2, 2, 2]),
  },
  {
    name: 'mixture',
    drift: 'weights .7/.3 -> .5/.5',
    reference: mixture(0.7, gaussian(0, 1), gaussian(4, 1)),
    current: mixture(0.5, gaussian(0, 1), gaussian(4, 1)),
  },
  {
    name: 'normal_outliers',
    drift: '+2% outliers',
    reference: gaussian(0, 1),
    current: mixture(0.98, gaussian(0, 1), gaussian(8, 1)),
  },
  { name: 'normal_2', drift: 'none', reference: gaussian(-5, 3), current: gaussian(-5, 3) },
  { name: 'uniform_2', drift: 'none', reference: uniform(10, 20), current: uniform(10, 20) },
  { name: 'lognormal_2', drift: 'none', reference: lognormal(1, 0.25), current: lognormal(1, 0.25) },
];

interface Column {
  name: string;
  drift: string;
  file: string;
  ref: Float64Array;
  cur: Float64Array;
}

function draw(rows: number, seed: number, dist: Draw): Float64Array {
  const random = seededRandom(seed);
  const values = new Float64Array(rows);
  for (let i = 0; i < rows; i++) values[i] = dist(random);
  return values;
}

/** Generates each column, writes it as raw float64 and reads it back: both sides start from the files' bytes. */
function prepareColumns(dir: string): Column[] {
  const meta: { rows: number; bins: number; columns: { name: string; file: string }[] } = {
    rows: ROWS,
    bins: BINS,
    columns: [],
  };
  const specs = Array.from({ length: COLUMNS }, (_, k) => {
    const spec = SPECS[k % SPECS.length]!;
    const round = Math.floor(k / SPECS.length);
    return { ...spec, name: round ? `${spec.name}_r${round + 1}` : spec.name, file: `c${String(k).padStart(3, '0')}` };
  });
  specs.forEach((spec, k) => {
    for (const [side, dist, seed] of [
      ['ref', spec.reference, 1000 + 2 * k],
      ['cur', spec.current, 1001 + 2 * k],
    ] as const) {
      const values = draw(ROWS, seed, dist);
      writeFileSync(
        join(dir, `${spec.file}_${side}.f64`),
        new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      );
    }
    meta.columns.push({ name: spec.name, file: spec.file });
  });
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
  const read = (path: string) => {
    const bytes = readFileSync(path);
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes); // an aligned ArrayBuffer of its own
    return new Float64Array(copy.buffer);
  };
  return specs.map((s) => ({
    name: s.name,
    drift: s.drift,
    file: s.file,
    ref: read(join(dir, `${s.file}_ref.f64`)),
    cur: read(join(dir, `${s.file}_cur.f64`)),
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// The two sides

interface ColumnResult {
  edges: number[];
  psi: number;
  ks_statistic: number;
  ks_pvalue: number;
}
interface SideRun {
  seconds: number;
  phases: { edges: number; psi: number; ks: number };
  columns: ColumnResult[];
}
interface ScipyRun extends SideRun {
  numpy_version: string;
  scipy_version: string;
  rows: number;
  psi_linear_edges?: number[];
}

/** Flywheel: ml/quality/drift.ts as monitoring (binReference + psi) and validation (ksTest) call it. */
function runFlywheel(columns: Column[]): SideRun {
  const results: ColumnResult[] = [];
  const phases = { edges: 0, psi: 0, ks: 0 };
  const started = performance.now();
  for (const column of columns) {
    const t0 = performance.now();
    const reference = binReference(column.ref, BINS);
    const t1 = performance.now();
    const score = psi(reference, column.cur);
    const t2 = performance.now();
    const ks = ksTest(column.ref, column.cur);
    const t3 = performance.now();
    phases.edges += t1 - t0;
    phases.psi += t2 - t1;
    phases.ks += t3 - t2;
    results.push({ edges: reference.edges, psi: score, ks_statistic: ks.statistic, ks_pvalue: ks.pValue });
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    seconds,
    phases: { edges: phases.edges / 1000, psi: phases.psi / 1000, ks: phases.ks / 1000 },
    columns: results,
  };
}

async function runScipy(dir: string, linearEdges: boolean): Promise<ScipyRun> {
  const { stdout, stderr } = await runProcess(PYTHON, [
    join(PROJECT_ROOT, 'bench', 'drift_scipy.py'),
    dir,
    ...(linearEdges ? ['--linear-edges'] : []),
  ]);
  const raw = lastJson<Omit<ScipyRun, 'phases'> & { edges_seconds: number; psi_seconds: number; ks_seconds: number }>(
    stdout,
    'drift_scipy.py',
    stderr,
  );
  return { ...raw, phases: { edges: raw.edges_seconds, psi: raw.psi_seconds, ks: raw.ks_seconds } };
}

// ---------------------------------------------------------------------------------------------------------------
// Agreement

interface Agreement {
  edgesIdentical: number;
  maxPsiDiff: number;
  maxPsiDiffColumn: string;
  maxDDiff: number;
  maxDDiffColumn: string;
  dIdentical: number;
  maxPDiff: number;
  maxPDiffColumn: string;
}

function compare(columns: Column[], ours: ColumnResult[], theirs: ColumnResult[]): Agreement {
  if (theirs.length !== ours.length)
    throw new Error(`scipy returned ${theirs.length} columns, expected ${ours.length}`);
  const a: Agreement = {
    edgesIdentical: 0,
    maxPsiDiff: 0,
    maxPsiDiffColumn: '-',
    maxDDiff: 0,
    maxDDiffColumn: '-',
    dIdentical: 0,
    maxPDiff: 0,
    maxPDiffColumn: '-',
  };
  ours.forEach((o, k) => {
    const t = theirs[k]!;
    const name = columns[k]!.name;
    if (o.edges.length === t.edges.length && o.edges.every((e, i) => e === t.edges[i])) a.edgesIdentical++;
    const dPsi = Math.abs(o.psi - t.psi);
    const dD = Math.abs(o.ks_statistic - t.ks_statistic);
    const dP = Math.abs(o.ks_pvalue - t.ks_pvalue);
    if (dD === 0) a.dIdentical++;
    if (dPsi > a.maxPsiDiff || a.maxPsiDiffColumn === '-') [a.maxPsiDiff, a.maxPsiDiffColumn] = [dPsi, name];
    if (dD > a.maxDDiff || a.maxDDiffColumn === '-') [a.maxDDiff, a.maxDDiffColumn] = [dD, name];
    if (dP > a.maxPDiff || a.maxPDiffColumn === '-') [a.maxPDiff, a.maxPDiffColumn] = [dP, name];
  });
  if (!(a.maxDDiff <= D_TOLERANCE))
    throw new Error(`KS statistics disagree: max |ΔD| ${a.maxDDiff} (column ${a.maxDDiffColumn}) > ${D_TOLERANCE}`);
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
// Main

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const sci = (x: number) => (x === 0 ? '0' : x.toExponential(1));
const fixed = (x: number, digits: number) => Number(x.toFixed(digits));
let dataDir = '';
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  const [numpyVersion = '?', scipyVersion = '?'] = ensurePythonPeer(
    PYTHON,
    'import numpy, scipy.stats; print(numpy.__version__, scipy.__version__)',
    'python3-scipy',
    'bench:drift',
  ).split(/\s+/);
  const cores = availableParallelism();
  console.error(
    `bench:drift: ${fmt(ROWS)} reference + ${fmt(ROWS)} current rows × ${COLUMNS} columns, PSI (${BINS} bins) + KS, ${REPEATS} interleaved rounds; scipy ${scipyVersion} / numpy ${numpyVersion} (${PYTHON}), ${cores} cores`,
  );
  dataDir = await mkdtemp(join(tmpdir(), 'flywheel-bench-drift-'));
  const generated = performance.now();
  const columns = prepareColumns(dataDir);
  console.error(
    `  data: ${COLUMNS} × 2 × ${fmt(ROWS)} float64 (${fmt((COLUMNS * 2 * ROWS * 8) / 2 ** 20)} MiB) generated and written in ${((performance.now() - generated) / 1000).toFixed(1)} s`,
  );

  const flywheelRuns: SideRun[] = [];
  const scipyRuns: ScipyRun[] = [];
  let agreement: Agreement | undefined;
  const { rounds: roundsRun, stopped: roundsStopped } = await budgetedRounds(
    REPEATS,
    BUDGET_S,
    elapsedS,
    async (round) => {
      const order: ('flywheel' | 'scipy')[] = round % 2 === 0 ? ['flywheel', 'scipy'] : ['scipy', 'flywheel'];
      for (const side of order) {
        let run: SideRun;
        if (side === 'flywheel') flywheelRuns.push((run = runFlywheel(columns)));
        else scipyRuns.push((run = await runScipy(dataDir, scipyRuns.length === 0)));
        const p = run.phases;
        console.error(
          `  ${side.padEnd(9)} ${run.seconds.toFixed(2).padStart(6)} s  (edges ${p.edges.toFixed(2)} s, PSI counts ${p.psi.toFixed(2)} s, KS ${p.ks.toFixed(2)} s)`,
        );
      }
      // Every run computes the same numbers; compare this round's pair.
      agreement = compare(columns, flywheelRuns.at(-1)!.columns, scipyRuns.at(-1)!.columns);
    },
  );

  // ------------------------------------------------------------------------------------------------------------
  // Summary

  const best = <T extends SideRun>(runs: T[]) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const fly = best(flywheelRuns);
  const sp = best(scipyRuns);
  const ratio = fixed(sp.seconds / fly.seconds, 3);
  const a = agreement!;
  const ours = flywheelRuns[0]!.columns;
  const theirs = scipyRuns[0]!.columns;
  const linear = scipyRuns[0]!.psi_linear_edges ?? [];
  let maxLinearDiff = 0;
  let maxLinearColumn = '-';
  linear.forEach((v, k) => {
    const d = Math.abs(v - theirs[k]!.psi);
    if (d > maxLinearDiff || maxLinearColumn === '-') [maxLinearDiff, maxLinearColumn] = [d, columns[k]!.name];
  });
  const PSI_FLAG = 0.2;
  const P_FLAG = 0.01;
  const flagged = (r: ColumnResult) => r.psi >= PSI_FLAG || r.ks_pvalue < P_FLAG;
  const falseAlarms = columns.filter((c, k) => c.drift.startsWith('none') && flagged(ours[k]!)).map((c) => c.name);
  const verdictsAgree = ours.every((o, k) => flagged(o) === flagged(theirs[k]!));
  const perColumnMs = (s: number) => ((1000 * s) / COLUMNS).toFixed(0);

  const lines = [
    '',
    `bench:drift — PSI (${BINS} equal-mass bins of the reference) + two-sample KS, ${fmt(ROWS)} reference vs ${fmt(ROWS)} current rows × ${COLUMNS} columns, best of ${roundsRun} interleaved round${roundsRun === 1 ? '' : 's'}`,
    `  ${'column'.padEnd(22)} ${'drift'.padEnd(24)} ${'bins'.padStart(4)} ${'PSI flywheel'.padStart(12)} ${'PSI scipy'.padStart(12)} ${'D flywheel'.padStart(11)} ${'D scipy'.padStart(11)} ${'p flywheel'.padStart(10)} ${'p scipy'.padStart(10)}`,
    ...columns.map((c, k) => {
      const o = ours[k]!;
      const t = theirs[k]!;
      return `  ${c.name.padEnd(22)} ${c.drift.padEnd(24)} ${String(o.edges.length + 1).padStart(4)} ${o.psi.toFixed(6).padStart(12)} ${t.psi.toFixed(6).padStart(12)} ${o.ks_statistic.toFixed(6).padStart(11)} ${t.ks_statistic.toFixed(6).padStart(11)} ${o.ks_pvalue.toPrecision(3).padStart(10)} ${t.ks_pvalue.toPrecision(3).padStart(10)}`;
    }),
    `  agreement: bin edges identical in ${a.edgesIdentical}/${COLUMNS} columns; D identical in ${a.dIdentical}/${COLUMNS} (max |ΔD| ${sci(a.maxDDiff)}); max |ΔPSI| ${sci(a.maxPsiDiff)} (${a.maxPsiDiffColumn});`,
    `  max |Δp| ${sci(a.maxPDiff)} (${a.maxPDiffColumn}; Stephens-corrected Kolmogorov limit vs scipy's kstwo.sf(D, round(en)), both asymptotic);` +
      ` flagged (PSI ≥ ${PSI_FLAG} or p < ${P_FLAG}): ${ours.filter(flagged).length} columns, verdicts ${verdictsAgree ? 'identical' : 'DIFFER'}`,
    ...(falseAlarms.length
      ? [
          `  no-drift column${falseAlarms.length === 1 ? '' : 's'} flagged by chance: ${falseAlarms.join(', ')} (each no-drift column has p < ${P_FLAG} with probability ${P_FLAG}; both sides agree)`,
        ]
      : []),
    ...(linear.length
      ? [
          `  edge definition: np.quantile's default linear-interpolated edges would change scipy's PSI by at most ${sci(maxLinearDiff)} (${maxLinearColumn}); the bench uses binReference's order statistics on both sides`,
        ]
      : []),
    '',
    `  ${'side'.padEnd(34)} ${'seconds'.padStart(8)} ${'ms/column'.padStart(10)} ${'edges'.padStart(7)} ${'PSI'.padStart(7)} ${'KS'.padStart(7)}   runs`,
    `  ${'flywheel ml/quality/drift.ts'.padEnd(34)} ${fly.seconds.toFixed(2).padStart(8)} ${perColumnMs(fly.seconds).padStart(10)} ${fly.phases.edges.toFixed(2).padStart(7)} ${fly.phases.psi.toFixed(2).padStart(7)} ${fly.phases.ks.toFixed(2).padStart(7)}   ${flywheelRuns.map((r) => r.seconds.toFixed(2)).join(', ')}`,
    `  ${`scipy ${sp.scipy_version} / numpy ${sp.numpy_version}`.padEnd(34)} ${sp.seconds.toFixed(2).padStart(8)} ${perColumnMs(sp.seconds).padStart(10)} ${sp.phases.edges.toFixed(2).padStart(7)} ${sp.phases.psi.toFixed(2).padStart(7)} ${sp.phases.ks.toFixed(2).padStart(7)}   ${scipyRuns.map((r) => r.seconds.toFixed(2)).join(', ')}`,
    `  edges: binReference (sort + reference shares + mean) / np.partition + np.unique; PSI: counting the reference and current samples`,
    `  (Flywheel counts the reference inside binReference) + PSI; KS: ksTest / ks_2samp. Both sides single-threaded, file reading not timed.`,
    ...(roundsStopped ? [`  ${roundsStopped}`] : []),
    `  ratio vs scipy: ${ratio} (scipy seconds ÷ Flywheel seconds; > 1: Flywheel faster; goal ≥ ${GOAL}: ${ratio >= GOAL ? 'met' : 'not met'})`,
    `  total ${elapsedS().toFixed(0)} s`,
    '',
  ];
  console.log(lines.join('\n'));

  const figures = {
    bench: 'drift',
    ratio_vs_scipy: ratio,
    goal: GOAL,
    flywheel_seconds: fixed(fly.seconds, 3),
    scipy_seconds: fixed(sp.seconds, 3),
    flywheel_runs_s: flywheelRuns.map((r) => fixed(r.seconds, 3)),
    scipy_runs_s: scipyRuns.map((r) => fixed(r.seconds, 3)),
    flywheel_phases_s: {
      edges: fixed(fly.phases.edges, 3),
      psi: fixed(fly.phases.psi, 3),
      ks: fixed(fly.phases.ks, 3),
    },
    scipy_phases_s: { edges: fixed(sp.phases.edges, 3), psi: fixed(sp.phases.psi, 3), ks: fixed(sp.phases.ks, 3) },
    max_abs_psi_diff: a.maxPsiDiff,
    max_abs_ks_d_diff: a.maxDDiff,
    max_abs_ks_p_diff: a.maxPDiff,
    edges_identical_columns: a.edgesIdentical,
    ks_d_identical_columns: a.dIdentical,
    psi_diff_linear_edges: linear.length ? maxLinearDiff : null,
    flagged_columns: ours.filter(flagged).length,
    verdicts_agree: verdictsAgree,
    rows: ROWS,
    columns: COLUMNS,
    bins: BINS,
    rounds: roundsRun,
    scipy_version: sp.scipy_version,
    numpy_version: sp.numpy_version,
    node_version: process.versions.node,
    cores: availableParallelism(),
    total_s: fixed(elapsedS(), 1),
  };
  console.log(JSON.stringify(figures));
} finally {
  await cleanup();
}
