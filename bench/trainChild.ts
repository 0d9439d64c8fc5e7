/**
 * bench:train, one TF.js backend in a process of its own (a TF.js backend is per process). bench/train.ts starts it
 * as `node --import tsx bench/trainChild.ts <backend> <rows> <epochs>`, backend one of tensorflow-gpu | tensorflow |
 * wasm | cpu (passed to loadTf as `pin`).
 *
 * Untimed: process start, loading the backend, generating the table (bench/trainData.ts) and the split (splitRows).
 * Timed: the whole `fitModel` call (training/fit.ts), which includes its preprocessing (fitPreprocessor, encoding
 * the raw strings into tensors), building and compiling the model, and per epoch the seeded shuffle (a gather), the
 * `model.fit` pass over the training rows and the validation loss. The hooks split that time: `restore` runs after
 * the preprocessing and model build, right before the first epoch, and `onEpoch` after each epoch, so
 * `setup_seconds` + Σ `epoch_seconds` = `fit_seconds` (up to the return).
 *
 * With a fourth argument `diagnose` it does not run fitModel but looks at where one training step's time goes,
 * untimed by the parent: the same preprocessing, Flywheel's buildModel, a warm-up epoch, then the wall time per batch
 * of one `model.fit` epoch (as fitModel calls it, without the shuffle and validation), `tf.profile` of model.fit over
 * 20 batches (kernels per step, Σ kernel time by op), the 8 matMuls of one step of this MLP as training calls them (5
 * of them with a
 * transposed operand: the gradients) against the same products with the operands transposed beforehand, and the
 * cost of dispatching one tiny op.
 *
 * Prints one JSON line on stdout. When loadTf falls back to another backend than the one asked for (a native
 * package that does not install), it prints `{ "unavailable": true, "loaded": <what it got> }` instead of training.
 */
import type { Tensor } from '@tensorflow/tfjs';
import { encodeColumns, encodeTarget, featureWidth, fitPreprocessor } from '../training/preprocess';
import { loadTf, type BackendName, type TfModule } from '../training/backend';
import { fitModel, type TrainingParams } from '../training/fit';
import { buildModel } from '../training/model';
import type { Split } from '../training/split';
import type { RawColumns } from '../training/preprocess';
import { benchSplit, generateColumns, trainingParams } from './trainData';

const [backendArg, rowsArg, epochsArg, mode] = process.argv.slice(2);
const wanted = backendArg as BackendName;
const rows = Number(rowsArg);
const epochs = Number(epochsArg);
if (
  !['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(wanted) ||
  !Number.isInteger(rows) ||
  !Number.isInteger(epochs) ||
  rows < 100 ||
  epochs < 1
) {
  console.error(
    'usage: node --import tsx bench/trainChild.ts <tensorflow-gpu|tensorflow|wasm|cpu> <rows ≥ 100> <epochs ≥ 1>',
  );
  process.exit(2);
}

const loadStarted = performance.now();
const { tf, backend } = await loadTf({ pin: wanted, preferGpu: wanted === 'tensorflow-gpu' });
const loadSeconds = (performance.now() - loadStarted) / 1000;
if (backend !== wanted) {
  console.log(JSON.stringify({ unavailable: true, wanted, loaded: backend }));
  process.exit(0);
}
const wasmFlags =
  backend === 'wasm'
    ? {
        simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
        threads: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
      }
    : undefined;

const params = trainingParams(epochs);
const columns = generateColumns(rows);
const split = benchSplit(rows, params);
if (mode === 'diagnose') {
  console.log(JSON.stringify({ backend, wasm: wasmFlags, ...(await diagnose(tf, columns, split, params)) }));
  process.exit(0);
}

let loopStarted = NaN;
let last = NaN;
const epochSeconds: number[] = [];
const losses: number[] = [];
const valLosses: number[] = [];
const started = performance.now();
const fit = await fitModel(tf, columns, split, params, {
  restore: async () => {
    loopStarted = last = performance.now();
    return undefined;
  },
  onEpoch: async ({ loss, valLoss }) => {
    const now = performance.now();
    epochSeconds.push((now - last) / 1000);
    last = now;
    losses.push(loss);
    if (valLoss !== undefined) valLosses.push(valLoss);
  },
});
const fitSeconds = (performance.now() - started) / 1000;
fit.model.dispose();

console.log(
  JSON.stringify({
    backend,
    tf_backend: tf.getBackend(),
    tf_version: tf.version.tfjs,
    wasm: wasmFlags,
    rows,
    train_rows: split.train.length,
    validation_rows: split.validation.length,
    epochs: fit.epochs,
    fit_seconds: fitSeconds,
    setup_seconds: (loopStarted - started) / 1000,
    epoch_seconds: epochSeconds,
    loss: losses,
    val_loss: valLosses,
    load_seconds: loadSeconds,
    tensors_left: tf.memory().numTensors,
  }),
);

/** Where one training step's time goes on this backend (see the header). */
async function diagnose(tf: TfModule, columns: RawColumns, split: Split, params: TrainingParams) {
  const pre = fitPreprocessor(columns, split.train, {
    task: params.task,
    target: params.target,
    numeric: params.features.numeric,
    categorical: params.features.categorical,
  });
  const width = featureWidth(pre);
  const n = split.train.length;
  const x = tf.tensor2d(encodeColumns(pre, columns, split.train), [n, width]);
  const y = tf.tensor2d(encodeTarget(pre, columns, split.train), [n, 1]);
  const model = buildModel(tf, pre, {
    ...params.model,
    optimizer: params.optimizer,
    learningRate: params.learningRate,
    seed: params.seed,
  });
  const bs = params.batchSize;
  const fit = (xs: Tensor, ys: Tensor) => model.fit(xs, ys, { epochs: 1, batchSize: bs, shuffle: false, verbose: 0 });
  await fit(x, y); // warm-up: one epoch
  let started = performance.now();
  await fit(x, y);
  const stepMs = (performance.now() - started) / Math.ceil(n / bs);

  // tf.profile of model.fit over 20 full batches: kernels per step and kernel time by op.
  const profiledSteps = 20;
  const xs = x.slice([0, 0], [profiledSteps * bs, width]);
  const ys = y.slice([0, 0], [profiledSteps * bs, 1]);
  const info = await tf.profile(async () => {
    await fit(xs, ys);
    return [] as Tensor[];
  });
  const byOp = new Map<string, { count: number; ms: number }>();
  for (const k of info.kernels) {
    const entry = byOp.get(k.name) ?? { count: 0, ms: 0 };
    entry.count++;
    entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    byOp.set(k.name, entry);
  }
  const ops = [...byOp.entries()]
    .map(([name, { count, ms }]) => ({ op: name, per_step: count / profiledSteps, ms: ms / profiledSteps }))
    .sort((a, b) => b.ms - a.ms);
  const kernels = info.kernels.length / profiledSteps;

  // The 8 products of one step of 20 → 64 → 64 → 1 at batch 256: forward a·W, weight gradients aᵀ·g, input gradients
  // g·Wᵀ.
  const r = (shape: number[]) => tf.randomNormal(shape, 0, 1, 'float32', 7);
  const a0 = r([bs, width]),
    a1 = r([bs, 64]),
    g1 = r([bs, 64]),
    g3 = r([bs, 1]);
  const w1 = r([width, 64]),
    w2 = r([64, 64]),
    w3 = r([64, 1]);
  const asCalled: [Tensor, Tensor, boolean, boolean][] = [
    [a0, w1, false, false],
    [a1, w2, false, false],
    [a1, w3, false, false],
    [a0, g1, true, false],
    [a1, g1, true, false],
    [a1, g3, true, false],
    [g1, w2, false, true],
    [g3, w3, false, true],
  ];
  const pretransposed = asCalled.map(
    ([p, q, ta, tb]) =>
      [ta ? tf.transpose(p) : p, tb ? tf.transpose(q) : q, false, false] as [Tensor, Tensor, boolean, boolean],
  );
  const timeProducts = (products: [Tensor, Tensor, boolean, boolean][]) => {
    const once = () => products.forEach(([p, q, ta, tb]) => tf.tidy(() => tf.matMul(p, q, ta, tb)));
    for (let i = 0; i < 10; i++) once();
    const reps = backend === 'cpu' ? 50 : 200;
    const t = performance.now();
    for (let i = 0; i < reps; i++) once();
    tf.tidy(() => tf.matMul(a0, w1).dataSync());
    return (performance.now() - t) / reps;
  };
  const matmulsMs = timeProducts(asCalled);
  const transposedMs = timeProducts(asCalled.filter(([, , ta, tb]) => ta || tb));
  const pretransposedMs = timeProducts(pretransposed);

  const tiny = tf.ones([4]);
  for (let i = 0; i < 2000; i++) tf.tidy(() => tf.add(tiny, tiny));
  started = performance.now();
  for (let i = 0; i < 20000; i++) tf.tidy(() => tf.add(tiny, tiny));
  const dispatchUs = ((performance.now() - started) * 1000) / 20000;

  return {
    batch_size: bs,
    step_ms: stepMs,
    kernels_per_step: kernels,
    kernel_ms_per_step: ops.reduce((sum, o) => sum + o.ms, 0),
    ops: ops.slice(0, 8),
    matmuls_ms: matmulsMs,
    matmuls_transposed_ms: transposedMs,
    matmuls_pretransposed_ms: pretransposedMs,
    dispatch_us: dispatchUs,
  };
}
