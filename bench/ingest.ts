/**
 * bench:ingest — Flywheel's dataset ingest against pandas, on the same generated CSV in the same run.
 *
 * Data: a deterministic 20-column CSV (an integer id, 12 floats with 4 decimals, 4 small integers, 3 low-cardinality
 * strings: city, segment "seg12", channel "ch1"), 1M rows (~130 MB) and 5M rows (~660 MB, the 1M rows five times
 * with shifted ids), generated into a temporary directory (not the repository) and deleted at the end.
 *
 * Flywheel: `ingestTable` (activities/ingest.ts) — one streaming pass that writes canonical CSV, hashes it (sha256)
 * and profiles every column, then the upload to the object store (MinIO) and the version row in Postgres; that is,
 * ingested + versioned + profiled. Each run is a child process (bench/ingestChild.ts) so its peak RSS
 * (process.resourceUsage().maxRSS, whole process) is its own; the time is the ingestTable call alone, connections
 * already open. Every run uses a fresh dataset name so content-hash dedup never short-circuits it (a result with
 * `reused` fails the bench), and its object and rows are deleted afterwards.
 *
 * pandas: `pd.read_csv(path)` + `df.describe(include='all')` (bench/ingest_pandas.py) with Debian's python3-pandas
 * (/usr/bin/python3), a fresh interpreter per run; peak RSS is its ru_maxrss. include='all' covers the numeric and
 * the text columns, as Flywheel's profile does; pandas does no hashing, copy, upload or database write. It is the
 * fairer peer and barely slower than the default describe(), which skips the text columns (describe 0.44 s against
 * 0.36 s after a 1M-row read_csv on the 2-core reference machine), so it is the one measured.
 *
 * Runs: on the 1M file each side runs BENCH_REPEATS (default 3) times, interleaved (F P, P F, F P); rows/s is the
 * best (fastest) run of each side, peak RSS the largest of its runs. Then Flywheel once on the 5M file (memory, and
 * rows/s), and pandas on it too when the time budget allows. About a minute in all on a 2-core machine.
 * Goal: ratio_vs_pandas ≥ 1 and peak RSS that does not grow with rows.
 *
 * Environment: BENCH_ROWS (default 1000000) the base size; BENCH_ROWS_LARGE (default 5 × BENCH_ROWS; 0 skips the
 * large runs); BENCH_REPEATS (default 3); BENCH_BUDGET_S (default 540) the wall-clock budget that decides whether
 * pandas runs on the large file; BENCH_PANDAS_LARGE=0|1 forces that choice; BENCH_PYTHON (default /usr/bin/python3).
 * The JSON keys keep the names *_1m / *_5m for the base and large sizes; rows_1m and rows_5m say what they were.
 * A quick run: BENCH_ROWS=200000 npm run bench:ingest.
 *
 * Last line of stdout: one JSON object with `ratio_vs_pandas` (> 1: faster than pandas), `peak_rss_mb_1m`,
 * `peak_rss_mb_5m`.
 */
import { once } from 'node:events';
import { createWriteStream, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { seededRandom, normal } from '../ml/random';
import { datasets, datasetVersions } from '../schema/datasets';
import { connectDb, migrateDb } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { loadConfig, PROJECT_ROOT } from '../config/env';
import { ensurePythonPeer, intFromEnv, lastJson, runProcess } from './peer';

const ROWS = intFromEnv('BENCH_ROWS', 1_000_000);
const ROWS_LARGE = intFromEnv('BENCH_ROWS_LARGE', 5 * ROWS);
const REPEATS = Math.max(1, intFromEnv('BENCH_REPEATS', 3));
const BUDGET_S = intFromEnv('BENCH_BUDGET_S', 540);
const PYTHON = process.env.BENCH_PYTHON || '/usr/bin/python3';
const PANDAS_LARGE = process.env.BENCH_PANDAS_LARGE;
if (ROWS < 1) throw new Error('BENCH_ROWS must be at least 1');
const benchStarted = performance.now();
const elapsedS = () => (performance.now() - benchStarted) / 1000;

// ---------------------------------------------------------------------------------------------------------------
// Data

const CITIES = [
  'Lisbon',
  'Porto',
  'Madrid',
  'Seville',
  'Valencia',
  'Lyon',
  'Marseille',
  'Toulouse',
  'Milan',
  'Naples',
  'Turin',
  'Munich',
  'Hamburg',
  'Cologne',
  'Vienna',
  'Prague',
  'Krakow',
  'Warsaw',
  'Oslo',
  'Dublin',
  'Leeds',
  'Bristol',
];
const SEGMENTS = Array.from({ length: 40 }, (_, i) => `seg${i}`);
const CHANNELS = Array.from({ length: 6 }, (_, i) => `ch${i}`);
/** Twelve float columns: [mean, spread, normal (else uniform in mean ± spread)]. */
const FLOATS: [number, number, boolean][] = [
  [0, 1, true],
  [10, 2, true],
  [100, 15, true],
  [-5, 3, true],
  [1000, 250, true],
  [0.5, 0.1, true],
  [0.5, 0.5, false],
  [0, 1, false],
  [50, 50, false],
  [250, 10, true],
  [-100, 40, false],
  [3, 1.5, true],
];
const HEADER = [
  'id',
  ...FLOATS.map((_, i) => `f${String(i + 1).padStart(2, '0')}`),
  'qty',
  'age',
  'rating',
  'visits',
  'city',
  'segment',
  'channel',
].join(',');
const FRACTIONS = Array.from({ length: 10_000 }, (_, i) => String(i).padStart(4, '0'));

/** x with exactly four decimals, without toFixed (the generator's hot spot otherwise). */
function fixed4(x: number): string {
  const scaled = Math.round(x * 10_000);
  const abs = scaled < 0 ? -scaled : scaled;
  const text = `${Math.floor(abs / 10_000)}.${FRACTIONS[abs % 10_000]}`;
  return scaled < 0 ? `-${text}` : text;
}

/** Rows [first, first + count) of the block that `random` generates; ids start at `idBase + first`. */
function rowsText(random: () => number, idBase: number, first: number, count: number): string {
  let text = '';
  for (let r = first; r < first + count; r++) {
    let line = String(idBase + r);
    for (const [mean, spread, isNormal] of FLOATS)
      line += ',' + fixed4(isNormal ? mean + spread * normal(random) : mean + spread * (2 * random() - 1));
    line += `,${Math.floor(random() * 10)},${18 + Math.floor(random() * 70)},${1 + Math.floor(random() * 5)},${Math.floor(random() * random() * 1000)}`;
    line += `,${CITIES[Math.floor(random() * CITIES.length)]},${SEGMENTS[Math.floor(random() * SEGMENTS.length)]},${CHANNELS[Math.floor(random() * CHANNELS.length)]}\n`;
    text += line;
  }
  return text;
}

/**
 * Writes `rows` rows: blocks of BLOCK rows, each regenerated from the same seed with ids shifted by the block's
 * start, so a larger file repeats the base file's content under new ids. One header.
 */
async function generateCsv(path: string, rows: number, block: number): Promise<number> {
  const out = createWriteStream(path, { highWaterMark: 4 << 20 });
  const write = async (chunk: string) => {
    if (!out.write(chunk)) await once(out, 'drain');
  };
  const started = performance.now();
  await write(HEADER + '\n');
  const batch = 10_000;
  let nextReport = rows / 5;
  for (let blockStart = 0; blockStart < rows; blockStart += block) {
    const random = seededRandom(20240611);
    const inBlock = Math.min(block, rows - blockStart);
    for (let first = 0; first < inBlock; first += batch) {
      await write(rowsText(random, blockStart + 1, first, Math.min(batch, inBlock - first)));
      if (blockStart + first + batch >= nextReport && blockStart + first + batch < rows) {
        console.error(`  generating ${path}: ${Math.round((100 * (blockStart + first + batch)) / rows)} %`);
        nextReport += rows / 5;
      }
    }
  }
  out.end();
  await once(out, 'close');
  const bytes = statSync(path).size;
  console.error(
    `  generated ${rows.toLocaleString('en')} rows, ${(bytes / 1e6).toFixed(0)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return bytes;
}

// ---------------------------------------------------------------------------------------------------------------
// The two sides

interface Run {
  side: 'flywheel' | 'pandas';
  rows: number;
  seconds: number;
  peakRssKb: number;
  baselineRssKb: number;
  processSeconds: number;
}

const settings = loadConfig();
const db = connectDb(settings.databaseUrl, 2);
const store = new S3ObjectStore(settings.s3);
const runTag = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
let datasetCounter = 0;

/** Deletes everything a run of this dataset may have left: its objects, then its version rows, then the dataset. */
async function removeDataset(dataset: string): Promise<void> {
  for (const key of await store.list(`datasets/${dataset}/`)) await store.remove(key);
  await db.delete(datasetVersions).where(eq(datasetVersions.datasetName, dataset));
  await db.delete(datasets).where(eq(datasets.name, dataset));
}

async function runFlywheel(path: string, rows: number): Promise<Run> {
  const dataset = `bench-ingest-${runTag}-${++datasetCounter}`;
  try {
    const { stdout, seconds: processSeconds } = await runProcess(
      process.execPath,
      ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'ingestChild.ts'), path, dataset],
      { stderr: 'inherit' },
    );
    const result = lastJson<Record<string, unknown>>(stdout);
    if (result.reused !== false)
      throw new Error(
        `flywheel run ${dataset} was answered from an existing version (reused: ${String(result.reused)}); the timing would be meaningless`,
      );
    if (result.rows !== rows)
      throw new Error(`flywheel run ${dataset} ingested ${String(result.rows)} rows, expected ${rows}`);
    if (result.profiled_columns !== 20)
      throw new Error(`flywheel run ${dataset} profiled ${String(result.profiled_columns)} columns, expected 20`);
    return {
      side: 'flywheel',
      rows,
      seconds: result.seconds as number,
      peakRssKb: result.max_rss_kb as number,
      baselineRssKb: result.baseline_rss_kb as number,
      processSeconds,
    };
  } finally {
    await removeDataset(dataset);
  }
}

const PANDAS_DESCRIBE = 'all';

async function runPandas(path: string, rows: number): Promise<Run> {
  const { stdout, seconds: processSeconds } = await runProcess(
    PYTHON,
    [join(PROJECT_ROOT, 'bench', 'ingest_pandas.py'), path, PANDAS_DESCRIBE],
    { stderr: 'inherit' },
  );
  const result = lastJson<Record<string, unknown>>(stdout);
  if (result.rows !== rows) throw new Error(`pandas read ${String(result.rows)} rows, expected ${rows}`);
  return {
    side: 'pandas',
    rows,
    seconds: result.seconds as number,
    peakRssKb: result.peak_rss_kb as number,
    baselineRssKb: result.baseline_rss_kb as number,
    processSeconds,
  };
}

/** pandas from Debian (python3-pandas): its version. */
function ensurePandas(): string {
  return ensurePythonPeer(PYTHON, 'import pandas; print(pandas.__version__)', 'python3-pandas', 'bench:ingest');
}

// ---------------------------------------------------------------------------------------------------------------
// Main

const pandasVersion = ensurePandas();
await migrateDb(db);
await store.ensureBucket();
const dataDir = await mkdtemp(join(tmpdir(), 'flywheel-bench-ingest-'));
let cleaning: Promise<void> | undefined;
/** Removes the generated files and every dataset this run created; once, whether the run ends or is interrupted. */
const cleanup = () =>
  (cleaning ??= (async () => {
    await rm(dataDir, { recursive: true, force: true });
    for (let i = 1; i <= datasetCounter; i++) {
      await removeDataset(`bench-ingest-${runTag}-${i}`).catch((error: Error) =>
        console.error(`  could not remove dataset bench-ingest-${runTag}-${i}: ${error.message}`),
      );
    }
    await db.$client.end();
  })());
const onSignal = (signal: NodeJS.Signals) => {
  console.error(`\n${signal}: removing ${dataDir} and this run's datasets`);
  void cleanup().finally(() => process.exit(130));
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

const fmtRate = (rows: number, seconds: number) => Math.round(rows / seconds);
const mb = (kb: number) => Number((kb / 1024).toFixed(1));
const describeRun = (run: Run) =>
  `  ${run.side.padEnd(8)} ${run.rows.toLocaleString('en').padStart(10)} rows  ${run.seconds.toFixed(2).padStart(7)} s  ${fmtRate(run.rows, run.seconds).toLocaleString('en').padStart(10)} rows/s  peak RSS ${mb(run.peakRssKb).toFixed(0).padStart(5)} MB (process ${run.processSeconds.toFixed(1)} s)`;

try {
  console.error(
    `bench:ingest: ${ROWS.toLocaleString('en')} rows × 20 columns, ${REPEATS} interleaved runs per side; large file ${ROWS_LARGE ? ROWS_LARGE.toLocaleString('en') + ' rows' : 'skipped'}; pandas ${pandasVersion} (${PYTHON})`,
  );
  const basePath = join(dataDir, `table-${ROWS}.csv`);
  const baseBytes = await generateCsv(basePath, ROWS, ROWS);

  const flywheelBase: Run[] = [];
  const pandasBase: Run[] = [];
  for (let round = 0; round < REPEATS; round++) {
    const order = round % 2 === 0 ? (['flywheel', 'pandas'] as const) : (['pandas', 'flywheel'] as const);
    for (const side of order) {
      const run = side === 'flywheel' ? await runFlywheel(basePath, ROWS) : await runPandas(basePath, ROWS);
      (side === 'flywheel' ? flywheelBase : pandasBase).push(run);
      console.error(describeRun(run));
    }
  }
  await rm(basePath, { force: true });

  let flywheelLarge: Run | undefined;
  let pandasLarge: Run | undefined;
  let largeBytes = 0;
  let pandasLargeSkipped = '';
  if (ROWS_LARGE > 0) {
    const largePath = join(dataDir, `table-${ROWS_LARGE}.csv`);
    largeBytes = await generateCsv(largePath, ROWS_LARGE, ROWS);
    flywheelLarge = await runFlywheel(largePath, ROWS_LARGE);
    console.error(describeRun(flywheelLarge));
    // pandas on the large file only when its likely time (scaled from its base runs, with a margin) fits the budget.
    const pandasEstimate = Math.max(...pandasBase.map((run) => run.processSeconds)) * (ROWS_LARGE / ROWS) * 1.3 + 5;
    const wanted =
      PANDAS_LARGE === undefined || PANDAS_LARGE === '' ? elapsedS() + pandasEstimate < BUDGET_S : PANDAS_LARGE !== '0';
    if (wanted) {
      pandasLarge = await runPandas(largePath, ROWS_LARGE);
      console.error(describeRun(pandasLarge));
    } else {
      pandasLargeSkipped =
        PANDAS_LARGE === '0'
          ? 'BENCH_PANDAS_LARGE=0'
          : `~${pandasEstimate.toFixed(0)} s more would pass the ${BUDGET_S} s budget`;
      console.error(`  pandas on ${ROWS_LARGE.toLocaleString('en')} rows skipped: ${pandasLargeSkipped}`);
    }
    await rm(largePath, { force: true });
  }

  const best = (runs: Run[]) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const peak = (runs: Run[]) => Math.max(...runs.map((run) => run.peakRssKb));
  const fBest = best(flywheelBase);
  const pBest = best(pandasBase);
  const flywheelRate = fmtRate(ROWS, fBest.seconds);
  const pandasRate = fmtRate(ROWS, pBest.seconds);
  const ratio = Number((flywheelRate / pandasRate).toFixed(3));

  const rowLabel = (rows: number) => rows.toLocaleString('en');
  const lines = [
    '',
    `bench:ingest — ${rowLabel(ROWS)} rows × 20 columns (${(baseBytes / 1e6).toFixed(0)} MB CSV)${ROWS_LARGE ? ` and ${rowLabel(ROWS_LARGE)} rows (${(largeBytes / 1e6).toFixed(0)} MB)` : ''}; best of ${REPEATS} interleaved runs, peak RSS the largest`,
    `  ${'side'.padEnd(34)} ${'rows'.padStart(10)} ${'seconds'.padStart(8)} ${'rows/s'.padStart(11)} ${'peak RSS MB'.padStart(12)} ${'before MB'.padStart(10)}`,
    ...[
      [`flywheel ingestTable`, ROWS, fBest.seconds, peak(flywheelBase), fBest.baselineRssKb] as const,
      [`pandas read_csv+describe(all)`, ROWS, pBest.seconds, peak(pandasBase), pBest.baselineRssKb] as const,
      ...(flywheelLarge
        ? [
            [
              `flywheel ingestTable`,
              ROWS_LARGE,
              flywheelLarge.seconds,
              flywheelLarge.peakRssKb,
              flywheelLarge.baselineRssKb,
            ] as const,
          ]
        : []),
      ...(pandasLarge
        ? [
            [
              `pandas read_csv+describe(all)`,
              ROWS_LARGE,
              pandasLarge.seconds,
              pandasLarge.peakRssKb,
              pandasLarge.baselineRssKb,
            ] as const,
          ]
        : []),
    ].map(
      ([label, rows, seconds, peakKb, beforeKb]) =>
        `  ${label.padEnd(34)} ${rowLabel(rows).padStart(10)} ${seconds.toFixed(2).padStart(8)} ${fmtRate(rows, seconds).toLocaleString('en').padStart(11)} ${mb(peakKb).toFixed(0).padStart(12)} ${mb(beforeKb).toFixed(0).padStart(10)}`,
    ),
    `  ratio vs pandas (rows/s, ${rowLabel(ROWS)} rows): ${ratio} (> 1: Flywheel faster; goal ≥ 1)`,
    ...(flywheelLarge
      ? [
          `  Flywheel peak RSS ${rowLabel(ROWS)} → ${rowLabel(ROWS_LARGE)} rows: ${mb(peak(flywheelBase)).toFixed(0)} → ${mb(flywheelLarge.peakRssKb).toFixed(0)} MB (goal: flat)`,
        ]
      : []),
    ...(pandasLargeSkipped ? [`  pandas on ${rowLabel(ROWS_LARGE)} rows skipped: ${pandasLargeSkipped}`] : []),
    `  "before MB": RSS of the process just before the timed call (runtime and libraries); total ${elapsedS().toFixed(0)} s`,
    '',
  ];
  console.log(lines.join('\n'));

  const figures = {
    bench: 'ingest',
    rows_1m: ROWS,
    rows_5m: ROWS_LARGE || null,
    columns: 20,
    repeats: REPEATS,
    selection: `best of ${REPEATS} (rows/s), largest peak RSS`,
    flywheel_rows_per_s: flywheelRate,
    pandas_rows_per_s: pandasRate,
    ratio_vs_pandas: ratio,
    flywheel_seconds_1m: Number(fBest.seconds.toFixed(3)),
    pandas_seconds_1m: Number(pBest.seconds.toFixed(3)),
    peak_rss_mb_1m: mb(peak(flywheelBase)),
    peak_rss_mb_5m: flywheelLarge ? mb(flywheelLarge.peakRssKb) : null,
    flywheel_rss_before_ingest_mb: mb(fBest.baselineRssKb),
    pandas_peak_rss_mb_1m: mb(peak(pandasBase)),
    pandas_peak_rss_mb_5m: pandasLarge ? mb(pandasLarge.peakRssKb) : null,
    flywheel_rows_per_s_5m: flywheelLarge ? fmtRate(ROWS_LARGE, flywheelLarge.seconds) : null,
    pandas_rows_per_s_5m: pandasLarge ? fmtRate(ROWS_LARGE, pandasLarge.seconds) : null,
    file_mb_1m: Number((baseBytes / 1e6).toFixed(1)),
    file_mb_5m: largeBytes ? Number((largeBytes / 1e6).toFixed(1)) : null,
    pandas_version: pandasVersion,
    pandas_describe: `describe(include='${PANDAS_DESCRIBE}')`,
    backend: 'node',
    total_s: Number(elapsedS().toFixed(1)),
  };
  console.log(JSON.stringify(figures));
} finally {
  await cleanup();
}
