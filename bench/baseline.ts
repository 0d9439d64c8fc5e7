/**
 * bench:baseline — how good is the model Flywheel trains? Its holdout figures against scikit-learn baselines on the
 * very same train / holdout rows, for the data sets the project ships or generates. No Temporal, MinIO or Postgres.
 *
 * Data sets (all generated into a temporary directory, deterministic, deleted at the end):
 *   demand   the retail demand regression example: examples/demand/generate.ts with its default options
 *            (10 stores × 20 items × 180 days = 36,000 rows), trained with the params of examples/demand/pipeline.yaml
 *            (a `training.sweep` section, if any, is ignored: the base params are used).
 *   churn    a churn-like binary classification table generated here (15,000 rows; 4 numeric and 4 categorical
 *            features; a logit with thresholds, a hinge, interactions and a periodic term, Bernoulli labels plus 3 %
 *            flipped labels; about 33 % churn),
 *            trained with the pipeline's *default* training params (the config a user gets by naming only task,
 *            target and features: mlp [64, 32] relu, 20 epochs, batch 256, lr 0.005, adam, seed 42, holdout 0.2).
 *   tier     a 3-class classification table generated here (12,000 rows; class from a non-linear score with two
 *            thresholds plus noise), pipeline defaults as for churn.
 *
 * Flywheel's side mirrors the pipeline exactly, minus the services: the CSV read as raw string columns; the split of
 * training/split.ts with the dataset's content hash (sha256 of its canonical CSV — these files are written comma / LF /
 * unquoted, so the canonical bytes are the file's bytes, as activities/ingest.ts copies such records verbatim);
 * training/fit.ts `fitModel` on the backend `loadTf()` picks (wasm here); and the holdout evaluation of
 * activities/evaluate.ts (encodeColumns → predictEncoded → decodeRegression → regressionMetrics, or
 * classificationMetrics on the softmax outputs). So Flywheel's figures are the ones the pipeline reports.
 *
 * scikit-learn's side (bench/baseline_sklearn.py, Debian's /usr/bin/python3 with python3-sklearn): the same CSV and
 * the same row indices. Every sklearn model is fitted on `split.train` only — exactly the rows Flywheel's gradient
 * steps see; Flywheel uses `split.validation` only to report val_loss, and so it is unused by both sides (the
 * early-stopping MLP carves its own 10 % out of split.train, like HistGradientBoosting's default early stopping).
 * Preprocessing as Flywheel's: numerics standardised, categoricals one-hot (unknown → all zeros), fitted on the
 * training rows; a regression MLP also gets a standardised target, as Flywheel's does. Baselines: Ridge /
 * LogisticRegression (linear), HistGradientBoosting (strong tabular baseline), MLP with Flywheel's hidden layers,
 * activation, batch size, learning rate and epoch budget (`mlp_same_budget`), and the same MLP with sklearn's usual
 * budget (up to 200 epochs, early stopping on a 10 % slice: `mlp_early_stop`). A constant predictor (train mean /
 * majority class) gives the floor, and the oracle the ceiling: the data is simulated, so each row's true E[y | x] or
 * true class probabilities are known (for demand from the true means examples/demand/generate.ts reports while
 * writing the file) — the best any model can score on these holdout rows, in expectation. The python
 * side also recomputes Flywheel's holdout metrics from its exported predictions with sklearn.metrics (a cross-check
 * of the metric code) and adds ROC-AUC (binary; one-vs-rest macro for 3 classes), which Flywheel's evaluation does
 * not compute.
 *
 * Verdicts: regression — ratio = flywheel_rmse / sklearn_best_rmse; on par when ratio ≤ 1.05.
 * Classification — accuracy gap = sklearn_best_accuracy − flywheel_accuracy; on par when the gap ≤ 0.01 (one point)
 * and Flywheel's log loss is within 10 % of the best sklearn log loss.
 *
 * Diagnostics (BASELINE_DIAGNOSTICS=0 skips them), all on the same split: Flywheel with two more init / shuffle seeds
 * (the run-to-run spread of the reported figure), with a 3× longer fixed epoch budget (under-trained or not?), and
 * with early stopping on val_loss (patience 5, best weights kept, up to 100 epochs — which the pipeline does not
 * offer for a single run today).
 *
 * Environment: BASELINE_PYTHON (default /usr/bin/python3), BASELINE_DIAGNOSTICS (default 1), BASELINE_KEEP=1 keeps
 * the temporary directory.
 * Last line of stdout: one JSON object with every figure and a verdict per data set. About 1.5 minutes on 2 cores
 * (about 40 s without the diagnostics).
 */
import type { Sequential, Tensor } from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePipelineConfig, loadPipelineConfig, type PipelineConfig } from '../config/pipeline';
import { generateDemand } from '../examples/demand/generate';
import { parseCsv } from '../ml/formats/csv';
import { classificationMetrics, regressionMetrics } from '../ml/evaluation/metrics';
import { decodeRegression, encodeColumns, encodeTarget, featureWidth, type RawColumns } from '../training/preprocess';
import { normal, seededRandom } from '../ml/random';
import { splitRows, type Split } from '../training/split';
import { loadTf } from '../training/backend';
import { fitModel, type FitHooks, type TrainingParams } from '../training/fit';
import { outputUnits, predictEncoded } from '../training/model';
import { PROJECT_ROOT } from '../config/env';

const PYTHON = process.env.BASELINE_PYTHON || '/usr/bin/python3';
const DIAGNOSTICS = process.env.BASELINE_DIAGNOSTICS !== '0';
const KEEP = process.env.BASELINE_KEEP === '1';

// ---------------------------------------------------------------------------------------------------------------
// Generators (deterministic; comma / LF / unquoted, so the file is its own canonical CSV). Each also returns the
// oracle: the true conditional distribution of every row's label, known because the data is simulated.

/** Per row: the true E[y | x] (regression) or the true class probabilities in sorted class order (classification). */
type Oracle = number[][];

function writeCsv(path: string, header: string[], rows: (string | number)[][]): void {
  const lines = [header.join(',')];
  for (const row of rows) lines.push(row.join(','));
  writeFileSync(path, lines.join('\n') + '\n');
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Standard normal CDF (erf by Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf =
    1 -
    t *
      (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) *
      Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

function pick<T>(random: () => number, values: readonly T[], weights: readonly number[]): T {
  const total = weights.reduce((a, b) => a + b, 0);
  let u = random() * total;
  for (let i = 0; i < values.length; i++) {
    u -= weights[i]!;
    if (u <= 0) return values[i]!;
  }
  return values[values.length - 1]!;
}

function poisson(random: () => number, lambda: number): number {
  const limit = Math.exp(-lambda);
  let k = 0,
    p = 1;
  do {
    k++;
    p *= random();
  } while (p > limit);
  return k - 1;
}

/**
 * Telecom-style churn: churn rises with month-to-month contracts (more so early in the tenure), support calls above
 * a threshold, charges above what the plan justifies, electronic-check payment on month-to-month; falls with long
 * tenure (log-shaped) and with premium plans that are used heavily. Labels are Bernoulli draws, then 3 % flipped.
 */
function generateChurn(path: string, rows = 15_000, seed = 1234): Oracle {
  const random = seededRandom(seed);
  const header = [
    'customer_id',
    'tenure_months',
    'monthly_charges',
    'support_calls',
    'usage_gb',
    'contract',
    'plan',
    'payment_method',
    'region',
    'churned',
  ];
  const contracts = ['month-to-month', 'one-year', 'two-year'] as const;
  const plans = ['basic', 'standard', 'premium'] as const;
  const payments = ['card', 'bank-transfer', 'electronic-check', 'mailed-check'] as const;
  const regions = ['north', 'south', 'east', 'west', 'central'] as const;
  const regionEffect: Record<string, number> = { north: -0.1, south: 0.15, east: 0, west: 0.25, central: -0.2 };
  const planPrice: Record<string, number> = { basic: 35, standard: 65, premium: 95 };
  const flip = 0.03;
  const out: (string | number)[][] = [];
  const oracle: Oracle = [];
  for (let i = 0; i < rows; i++) {
    const contract = pick(random, contracts, [0.55, 0.25, 0.2]);
    const plan = pick(random, plans, [0.4, 0.4, 0.2]);
    const payment = pick(random, payments, [0.3, 0.25, 0.3, 0.15]);
    const region = pick(random, regions, [1, 1, 1, 1, 1]);
    const tenure = Math.max(
      1,
      Math.min(72, Math.round(contract === 'month-to-month' ? -Math.log(1 - random()) * 14 + 1 : 6 + random() * 66)),
    );
    const charges =
      Math.round(Math.max(15, planPrice[plan]! + normal(random) * 12 + (random() < 0.1 ? 25 : 0)) * 100) / 100;
    const calls = poisson(random, plan === 'basic' ? 1.6 : 1.1);
    const usage =
      Math.round(
        Math.exp(Math.log(plan === 'premium' ? 60 : plan === 'standard' ? 30 : 12) + normal(random) * 0.6) * 10,
      ) / 10;
    const overcharge = (charges - planPrice[plan]!) / 12; // how far above the plan's list price, in σ
    let z = -1.2;
    z += contract === 'month-to-month' ? 1.6 - 0.6 * Math.log(tenure) : contract === 'one-year' ? -0.8 : -2.2;
    z -= 0.2 * Math.log(tenure);
    z += calls > 3 ? 1.4 * (calls - 3) : 0; // threshold effect
    z += 1.5 * Math.max(0, overcharge - 0.5); // hinge
    z += payment === 'electronic-check' && contract === 'month-to-month' ? 1.2 : 0; // interaction
    z += plan === 'premium' ? (usage > 60 ? -1.6 : 1.0) : 0; // interaction with a threshold
    z += regionEffect[region]!;
    z += 1.0 * Math.sin(tenure / 6); // a seasonal renewal wobble
    const p = sigmoid(z);
    let churned = random() < p;
    if (random() < flip) churned = !churned;
    const pYes = (1 - flip) * p + flip * (1 - p);
    oracle.push([1 - pYes, pYes]); // classes sorted: no, yes
    out.push([
      `C${String(i + 1).padStart(6, '0')}`,
      tenure,
      charges.toFixed(2),
      calls,
      usage.toFixed(1),
      contract,
      plan,
      payment,
      region,
      churned ? 'yes' : 'no',
    ]);
  }
  writeCsv(path, header, out);
  return oracle;
}

/**
 * Account tier (bronze / silver / gold) from a non-linear score: a bump in age, a saturating income term, an XOR of
 * two binary-ish signals, a sector × seniority interaction; thresholds cut it into three classes; Gaussian noise on
 * the score and 4 % random labels.
 */
function generateTier(path: string, rows = 12_000, seed = 99): Oracle {
  const random = seededRandom(seed);
  const header = ['age', 'income_k', 'accounts', 'years_customer', 'owns_home', 'sector', 'channel', 'tier'];
  const sectors = ['retail', 'tech', 'health', 'public', 'finance', 'other'] as const;
  const channels = ['web', 'branch', 'phone'] as const;
  const sectorEffect: Record<string, number> = {
    retail: -0.3,
    tech: 0.5,
    health: 0.2,
    public: -0.1,
    finance: 0.7,
    other: 0,
  };
  const noise = 0.45,
    relabel = 0.04;
  const out: (string | number)[][] = [];
  const oracle: Oracle = [];
  for (let i = 0; i < rows; i++) {
    const age = Math.round(18 + random() * 62);
    const income = Math.round(Math.exp(Math.log(55) + normal(random) * 0.5) * 100) / 100;
    const accounts = 1 + poisson(random, 1.5);
    const years = Math.round(random() * Math.min(30, age - 17));
    const ownsHome = random() < sigmoid((age - 40) / 8) ? 1 : 0;
    const sector = pick(random, sectors, [1, 1, 1, 1, 1, 1]);
    const channel = pick(random, channels, [0.5, 0.3, 0.2]);
    let s = 0;
    s += 1.6 * Math.exp(-(((age - 50) / 14) ** 2)); // peak in mid-career
    s += 1.8 * Math.tanh((income - 55) / 30);
    s += accounts >= 3 !== (ownsHome === 1) ? 0.7 : -0.2; // XOR
    s += sectorEffect[sector]! * (years > 10 ? 1.5 : 0.5);
    s += channel === 'branch' ? 0.3 * Math.log1p(years) - 0.4 : 0;
    const pBronze = phi((0.6 - s) / noise);
    const pGold = 1 - phi((1.8 - s) / noise);
    const mix = (p: number) => (1 - relabel) * p + relabel / 3;
    oracle.push([mix(pBronze), mix(pGold), mix(1 - pBronze - pGold)]); // classes sorted: bronze, gold, silver
    s += normal(random) * noise;
    let tier = s < 0.6 ? 'bronze' : s < 1.8 ? 'silver' : 'gold';
    if (random() < relabel) tier = pick(random, ['bronze', 'silver', 'gold'], [1, 1, 1]);
    out.push([age, income.toFixed(2), accounts, years, ownsHome, sector, channel, tier]);
  }
  writeCsv(path, header, out);
  return oracle;
}

/**
 * The demand oracle from each row's true mean m (reported by the generator): units are max(0, round(m + √m·Z)),
 * so E[units] = Σ_k≥1 k·P(round(X) = k) with X ~ N(m, m).
 */
function demandOracle(means: number[]): Oracle {
  return means.map((mean) => {
    const sd = Math.sqrt(mean);
    let e = 0;
    for (let k = 1, top = Math.ceil(mean + 12 * sd); k <= top; k++)
      e += k * (phi((k + 0.5 - mean) / sd) - phi((k - 0.5 - mean) / sd));
    return [e];
  });
}

/**
 * The churn data set as a pipeline config: also the shape a classification example would take. Only task, target
 * and features are set, so training runs with the pipeline's defaults.
 */
function churnConfig(source: string): PipelineConfig {
  return parsePipelineConfig(
    {
      name: 'churn',
      model: 'churn',
      data: { dataset: 'customer-churn', source },
      training: {
        task: 'classification',
        target: 'churned',
        features: {
          numeric: ['tenure_months', 'monthly_charges', 'support_calls', 'usage_gb'],
          categorical: ['contract', 'plan', 'payment_method', 'region'],
        },
      },
      evaluation: { gates: [{ metric: 'accuracy', min: 0.7 }] },
    },
    'churn config',
  );
}

function tierConfig(source: string): PipelineConfig {
  return parsePipelineConfig(
    {
      name: 'tier',
      model: 'tier',
      data: { dataset: 'account-tier', source },
      training: {
        task: 'classification',
        target: 'tier',
        features: {
          numeric: ['age', 'income_k', 'accounts', 'years_customer', 'owns_home'],
          categorical: ['sector', 'channel'],
        },
      },
    },
    'tier config',
  );
}

/** TrainingParams exactly as workflows/pipeline.ts builds them from a config (a sweep is ignored). */
function paramsOf(config: PipelineConfig): TrainingParams {
  const t = config.training;
  return {
    task: t.task,
    target: t.target,
    features: t.features,
    model: t.model,
    epochs: t.epochs,
    batchSize: t.batchSize,
    learningRate: t.learningRate,
    optimizer: t.optimizer,
    seed: t.seed,
    holdoutFraction: t.holdoutFraction,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Flywheel's side

function readColumns(path: string): { columns: RawColumns; rowCount: number; contentHash: string } {
  const bytes = readFileSync(path);
  const records = parseCsv(bytes.toString('utf8'));
  const header = records[0]!.fields;
  const columns: RawColumns = Object.fromEntries(header.map((name) => [name, [] as string[]]));
  for (let r = 1; r < records.length; r++) {
    const fields = records[r]!.fields;
    header.forEach((name, k) => columns[name]!.push(fields[k]!));
  }
  return { columns, rowCount: records.length - 1, contentHash: createHash('sha256').update(bytes).digest('hex') };
}

interface FlywheelResult {
  metrics: Record<string, number>;
  /** Regression: decoded predictions; classification: row-major probabilities. */
  outputs: number[];
  classes?: string[];
  epochs: number;
  /** Early stopping only: the epoch (1-based) whose weights were kept. */
  bestEpoch?: number;
  finalLoss: number;
  lastValLoss?: number;
  trainSeconds: number;
}

/**
 * fitModel, then the holdout evaluation of activities/evaluate.ts. `earlyStop` (diagnostics only; the pipeline has
 * no such option for a single run): stop when val_loss has not improved for `patience` epochs, keep the best weights.
 */
async function trainAndEvaluate(
  columns: RawColumns,
  split: Split,
  params: TrainingParams,
  earlyStop?: { patience: number },
): Promise<FlywheelResult> {
  const { tf } = await loadTf();
  const started = performance.now();
  let lastValLoss: number | undefined;
  let best = { loss: Infinity, epoch: 0, weights: undefined as Tensor[] | undefined };
  const hooks: FitHooks = {
    onEpoch: async (report, model: Sequential) => {
      lastValLoss = report.valLoss;
      if (!earlyStop || report.valLoss === undefined) return;
      if (report.valLoss < best.loss) {
        best.weights?.forEach((w) => w.dispose());
        best = { loss: report.valLoss, epoch: report.epoch + 1, weights: model.getWeights().map((w) => w.clone()) };
      } else if (report.epoch + 1 - best.epoch >= earlyStop.patience) {
        return 'stop';
      }
    },
  };
  const fit = await fitModel(tf, columns, split, params, hooks);
  const { model, pre } = fit;
  if (best.weights) {
    model.setWeights(best.weights);
    best.weights.forEach((w) => w.dispose());
  }
  const trainSeconds = (performance.now() - started) / 1000;
  const common = {
    epochs: fit.epochs,
    bestEpoch: earlyStop ? best.epoch : undefined,
    finalLoss: fit.finalLoss,
    lastValLoss,
    trainSeconds,
  };
  try {
    // activities/evaluate.ts, line for line (minus the store and the database).
    const { holdout } = split;
    const outputs = predictEncoded(tf, model, encodeColumns(pre, columns, holdout), holdout.length, featureWidth(pre));
    const actual = encodeTarget(pre, columns, holdout);
    if (pre.target.task === 'regression') {
      const predictions = Float64Array.from(outputs, (v) => decodeRegression(pre, v));
      const truth = Float64Array.from(actual, (v) => decodeRegression(pre, v));
      return { metrics: regressionMetrics(truth, predictions), outputs: Array.from(predictions), ...common };
    }
    const metrics = classificationMetrics(actual, outputs, outputUnits(pre));
    return { metrics, outputs: Array.from(outputs), classes: pre.target.classes, ...common };
  } finally {
    model.dispose();
  }
}

function round(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, Math.round(v * 1e4) / 1e4]));
}

// ---------------------------------------------------------------------------------------------------------------
// Run

interface DataSet {
  name: string;
  description: string;
  csv: string;
  params: TrainingParams;
  paramsFrom: string;
  oracle?: Oracle;
}

const dir = await mkdtemp(join(tmpdir(), 'flywheel-baseline-'));
const benchStarted = performance.now();
const log = (line: string) => process.stderr.write(`[baseline] ${line}\n`);
try {
  const { backend } = await loadTf();
  const demandCsv = join(dir, 'retail_demand.csv');
  const demandMeans: number[] = [];
  const demandRows = (await generateDemand(demandCsv, {}, (mean) => demandMeans.push(mean))).rows;
  const demandConfig = loadPipelineConfig(join(PROJECT_ROOT, 'examples', 'demand', 'pipeline.yaml'));
  const churnCsv = join(dir, 'churn.csv');
  const tierCsv = join(dir, 'tier.csv');
  const sets: DataSet[] = [
    {
      name: 'demand',
      description: `retail demand regression, generateDemand defaults (${demandRows} rows)`,
      csv: demandCsv,
      params: paramsOf(demandConfig),
      paramsFrom: 'examples/demand/pipeline.yaml',
      oracle: demandOracle(demandMeans),
    },
    {
      name: 'churn',
      description: 'churn-like binary classification (15000 rows, generated here)',
      csv: churnCsv,
      params: paramsOf(churnConfig(churnCsv)),
      paramsFrom: 'pipeline defaults',
      oracle: generateChurn(churnCsv),
    },
    {
      name: 'tier',
      description: '3-class classification (12000 rows, generated here)',
      csv: tierCsv,
      params: paramsOf(tierConfig(tierCsv)),
      paramsFrom: 'pipeline defaults',
      oracle: generateTier(tierCsv),
    },
  ];

  const specs: unknown[] = [];
  for (const set of sets) {
    const { columns, rowCount, contentHash } = readColumns(set.csv);
    const { params } = set;
    const split = splitRows(rowCount, params.holdoutFraction, params.seed, contentHash);
    log(
      `${set.name}: ${rowCount} rows, split train ${split.train.length} / validation ${split.validation.length} / holdout ${split.holdout.length}; Flywheel ${params.model.type} ${JSON.stringify(params.model.hiddenUnits)}, ${params.epochs} epochs …`,
    );
    const flywheel = await trainAndEvaluate(columns, split, params);
    log(`${set.name}: Flywheel ${JSON.stringify(round(flywheel.metrics))} in ${flywheel.trainSeconds.toFixed(1)} s`);
    const diagnostics: Record<string, Omit<FlywheelResult, 'outputs' | 'classes'> & { seed?: number }> = {};
    if (DIAGNOSTICS) {
      const keep = (name: string, result: FlywheelResult, extra: { seed?: number } = {}) => {
        const { outputs: _outputs, classes: _classes, ...summary } = result;
        diagnostics[name] = { ...summary, ...extra };
        log(
          `${set.name}: diagnostic ${name}: ${JSON.stringify(round(result.metrics))}, ${result.epochs} epochs${result.bestEpoch ? ` (best ${result.bestEpoch})` : ''}, ${result.trainSeconds.toFixed(1)} s`,
        );
      };
      // Same split, other init / shuffle seeds: the run-to-run spread of the reported figure.
      for (const seed of [params.seed + 1, params.seed + 2])
        keep(`flywheel_seed_${seed}`, await trainAndEvaluate(columns, split, { ...params, seed }), { seed });
      // A 3× longer fixed budget: under-trained or not?
      const epochs = Math.max(params.epochs * 3, 30);
      keep(`flywheel_epochs_${epochs}`, await trainAndEvaluate(columns, split, { ...params, epochs }));
      // Early stopping on val_loss (patience 5, best weights kept), up to 100 epochs.
      keep('flywheel_early_stop', await trainAndEvaluate(columns, split, { ...params, epochs: 100 }, { patience: 5 }));
    }
    specs.push({
      name: set.name,
      description: set.description,
      csv: set.csv,
      rows: rowCount,
      content_hash: contentHash,
      params_from: set.paramsFrom,
      task: params.task,
      target: params.target,
      numeric: params.features.numeric,
      categorical: params.features.categorical,
      model: params.model,
      epochs: params.epochs,
      batch_size: params.batchSize,
      learning_rate: params.learningRate,
      optimizer: params.optimizer,
      seed: params.seed,
      holdout_fraction: params.holdoutFraction,
      split: {
        train: Array.from(split.train),
        validation: Array.from(split.validation),
        holdout: Array.from(split.holdout),
      },
      flywheel: { backend, ...flywheel },
      oracle: set.oracle ? Array.from(split.holdout, (row) => set.oracle![row]!) : null,
      diagnostics,
    });
  }

  const specPath = join(dir, 'spec.json');
  writeFileSync(specPath, JSON.stringify({ data_sets: specs }));
  log(`scikit-learn baselines (${PYTHON}) …`);
  const py = spawnSync(PYTHON, [join(PROJECT_ROOT, 'bench', 'baseline_sklearn.py'), specPath], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
  if (py.status !== 0)
    throw new Error(
      `${PYTHON} bench/baseline_sklearn.py failed (exit ${py.status}${py.error ? `, ${py.error.message}` : ''}); it needs scikit-learn (Debian: apt-get install python3-sklearn)`,
    );
  const lines = py.stdout.trim().split('\n');
  const report = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  process.stdout.write(lines.slice(0, -1).join('\n') + '\n');
  report.flywheel_backend = backend;
  report.seconds = Math.round((performance.now() - benchStarted) / 100) / 10;
  process.stdout.write(JSON.stringify(report) + '\n');
} finally {
  if (!KEEP) await rm(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
}
