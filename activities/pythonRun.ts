/**
 * The TypeScript side of a Python training step (`training.runner: python`) and of an imported ONNX model
 * (`runner: import`): open the run and hand the Python worker references (the dataset version, the split, the run),
 * then take the ONNX model it saved into the registry's layout, check it against the data, and close the run.
 * The Python activity itself (`trainPython`) runs in sdk/python's `flywheel-worker`.
 */
import { unlink } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { activityInfo, heartbeat, log } from '@temporalio/activity';
import { loadRunner } from '../inference/load';
import type { ModelRunner } from '../inference/runner';
import { signatureKey } from '../inference/load';
import { lineChartSvg } from '../ml/evaluation/plot';
import { splitRows } from '../training/split';
import { findDatasetVersionRow } from '../store/datasets';
import { failRun, getRun, markRunStarted, mergeRunMetrics, runArtifactPrefix, runSteps } from '../store/runs';
import { localAccess, openSource, SourceError } from '../storage/sources';
import { activityCancellation } from './datasetColumns';
import { badInput, type ActivityDeps } from './deps';
import { lossPlotKey, openPipelineRun, type TrainInput, type TrainResult } from './train';

/** Split roles, one byte per dataset row, in the order of the stored CSV (BYOM contract §3). */
export const SPLIT_ROLE = { train: 0, validation: 1, holdout: 2 } as const;
/** Where the split lies among the run's artifacts. */
export const SPLIT_PATH = 'flywheel/split.bin';

/** What the Python worker's `trainPython` activity receives: references only, never data or secrets. */
export interface PythonTrainInput {
  runId: string;
  experimentId: string;
  entrypoint: string;
  params: Record<string, unknown>;
  seed: number;
  task: 'regression' | 'classification';
  target: string;
  features: { numeric: string[]; categorical: string[] };
  dataset: { versionId: string; contentPath: string; rows: number; contentHash: string };
  splitPath: string;
  modelName: string;
  maxEpochs?: number;
}

/** What `trainPython` answers: where the model and its signature were saved (run artifact paths). */
export interface PythonTrainOutput {
  modelPath: string;
  signaturePath: string;
  steps: number;
  resumedFromStep?: number;
  metrics: Record<string, number>;
  device: string;
  pythonVersion?: string;
  framework?: string;
}

export interface FinishPythonRunInput {
  train: TrainInput;
  runId: string;
  experimentId: string;
  taskQueue: string;
  output: PythonTrainOutput;
}

/** The dataset version's CSV over the public API (the Python worker reads it with its own token). */
export const datasetContentPath = (versionId: string) => `/api/v1/datasets/${encodeURIComponent(versionId)}/content`;

/** The largest imported model file read from a non-S3 source (a local path or a URL). */
const MAX_IMPORT_BYTES = 2 * 1024 ** 3;

export function createPythonRunActivities({ db, store }: ActivityDeps) {
  /** The run fails with the reason, and the workflow gets a non-retryable failure naming it. */
  const fail = async (runId: string, type: 'TrainingError' | 'NotFoundError', message: string) => {
    await failRun(db, runId, message);
    return badInput(type, message);
  };

  /** Copies the model and writes its signature where the registry expects them, then checks both against the data. */
  async function installOnnx(
    runId: string,
    input: TrainInput,
    place: (modelKey: string) => Promise<void>,
    signature: unknown,
  ): Promise<string> {
    const dir = `models/${input.modelName}/${runId}`;
    const modelKey = `${dir}/model.onnx`;
    await place(modelKey);
    await store.putJson(signatureKey(modelKey), signature);
    const version = await findDatasetVersionRow(db, input.datasetVersionId);
    const problem = await checkOnnxModel(store, modelKey, {
      task: input.params.task,
      target: input.params.target,
      datasetColumns: version?.columns.map((c) => c.name),
    });
    if (problem) throw await fail(runId, 'TrainingError', problem);
    return modelKey;
  }

  return {
    /** Opens the run and writes the split; answers the Python step's input, or the stored result of a finished run. */
    async preparePythonRun(input: TrainInput): Promise<{ done: TrainResult } | { train: PythonTrainInput }> {
      const { params } = input;
      if (!params.python) throw badInput('ConfigError', 'training.entrypoint is missing for a Python step');
      const { runId, experimentId, stored } = await openPipelineRun(db, input);
      if (stored) return { done: stored };
      const version = await findDatasetVersionRow(db, input.datasetVersionId);
      if (!version)
        throw await fail(runId, 'NotFoundError', `dataset version ${input.datasetVersionId} does not exist`);
      const header = version.columns.map((c) => c.name);
      const wanted = [...new Set([...params.features.numeric, ...params.features.categorical, params.target])];
      const missing = wanted.filter((name) => !header.includes(name));
      if (missing.length)
        throw await fail(
          runId,
          'TrainingError',
          `dataset ${version.id} has no column(s) ${missing.map((m) => `"${m}"`).join(', ')}; it has: ${header.join(', ')}`,
        );
      if (version.rowCount < 10)
        throw await fail(
          runId,
          'TrainingError',
          `dataset ${version.id} has ${version.rowCount} rows; training needs 10`,
        );

      // The same split evaluation scores on: the Python code never sees the holdout as training data.
      const split = splitRows(version.rowCount, params.holdoutFraction, params.seed, version.contentHash);
      const roles = new Uint8Array(version.rowCount);
      for (const row of split.validation) roles[row] = SPLIT_ROLE.validation;
      for (const row of split.holdout) roles[row] = SPLIT_ROLE.holdout;
      await store.putBuffer(`${runArtifactPrefix(experimentId, runId)}${SPLIT_PATH}`, Buffer.from(roles.buffer));
      return {
        train: {
          runId,
          experimentId: String(experimentId),
          entrypoint: params.python.entrypoint,
          params: params.python.params,
          seed: params.seed,
          task: params.task,
          target: params.target,
          features: params.features,
          dataset: {
            versionId: version.id,
            contentPath: datasetContentPath(version.id),
            rows: version.rowCount,
            contentHash: version.contentHash,
          },
          splitPath: SPLIT_PATH,
          modelName: input.modelName,
          ...(typeof params.python.params.epochs === 'number' ? { maxEpochs: params.python.params.epochs } : {}),
        },
      };
    },

    /** Moves the saved ONNX model into the registry's layout, checks it, plots the loss curves and closes the run. */
    async finishPythonRun(input: FinishPythonRunInput): Promise<TrainResult> {
      const { runId, output, train } = input;
      const run = await getRun(db, runId);
      if (run?.status === 'finished' && run.artifactKey) {
        const m = run.metrics ?? {};
        return {
          runId,
          artifactKey: run.artifactKey,
          backend: run.backend ?? 'python',
          taskQueue: run.taskQueue ?? input.taskQueue,
          epochs: m.epochs ?? output.steps,
          finalLoss: m.loss ?? NaN,
          objective: m.objective ?? NaN,
          stoppedEarly: false,
        };
      }
      const prefix = runArtifactPrefix(input.experimentId, runId);
      for (const [field, path] of [
        ['modelPath', output.modelPath],
        ['signaturePath', output.signaturePath],
      ] as const)
        if (!path || path.startsWith('/') || path.split('/').includes('..'))
          throw await fail(
            runId,
            'TrainingError',
            `the Python step answered an unsafe ${field} ${JSON.stringify(path)}`,
          );
      if ((await store.sizeOf(prefix + output.modelPath)) === undefined)
        throw await fail(runId, 'TrainingError', `the Python step saved no model (expected ${output.modelPath})`);
      const signature = await store.getJson<unknown>(prefix + output.signaturePath).catch(() => undefined);
      if (signature === undefined)
        throw await fail(
          runId,
          'TrainingError',
          `the Python step saved no signature (expected ${output.signaturePath})`,
        );
      const artifactKey = await installOnnx(
        runId,
        train,
        (modelKey) => store.copy(prefix + output.modelPath, modelKey),
        signature,
      );

      // Every curve the user logged with "loss" in its name, all steps (including those before a resume).
      const steps = await runSteps(db, runId);
      const keys = [...new Set(steps.map((m) => m.key))].filter((key) => /loss/i.test(key)).slice(0, 6);
      const series = keys.map((key) => ({
        name: key,
        points: steps
          .filter((m) => m.key === key)
          .sort((a, b) => a.step - b.step)
          .map((m) => ({ x: m.step, y: m.value })),
      }));
      if (series.length)
        await store.putBuffer(
          lossPlotKey(train.modelName, runId),
          lineChartSvg(`${runId} (${train.params.python?.entrypoint})`, series, { x: 'step', y: 'loss' }),
          'image/svg+xml',
        );
      const last = (key: string) => steps.filter((m) => m.key === key).sort((a, b) => b.step - a.step)[0]?.value;
      const objective =
        output.metrics.objective ??
        output.metrics.val_loss ??
        last('val_loss') ??
        output.metrics.loss ??
        last('loss') ??
        NaN;
      const finalLoss = output.metrics.loss ?? last('loss') ?? NaN;
      const backend = `python-${output.device}`;
      await markRunStarted(db, runId, { backend, taskQueue: input.taskQueue });
      await mergeRunMetrics(
        db,
        runId,
        {
          ...finiteOnly(output.metrics),
          epochs: output.steps,
          objective,
          ...(Number.isFinite(finalLoss) ? { loss: finalLoss } : {}),
        },
        { artifactKey, backend },
      );
      log.info('python training finished', { runId, steps: output.steps, device: output.device });
      return {
        runId,
        artifactKey,
        backend,
        taskQueue: input.taskQueue,
        epochs: output.steps,
        ...(output.resumedFromStep !== undefined ? { resumedFromEpoch: output.resumedFromStep - 1 } : {}),
        finalLoss,
        objective,
        stoppedEarly: false,
      };
    },

    /** A Python step failed for good: the run records why (the trimmed traceback), so nothing reads as running. */
    async failTrainingRun(input: { runId: string; message: string }): Promise<void> {
      const run = await getRun(db, input.runId);
      if (run && run.status !== 'finished') await failRun(db, input.runId, input.message.slice(0, 8000));
    },

    /** `runner: import`: an ONNX file trained elsewhere becomes this run's model (lineage: imported). */
    async importModel(input: TrainInput): Promise<TrainResult> {
      const imported = input.params.imported;
      if (!imported) throw badInput('ConfigError', 'training.source is missing for an imported model');
      const info = activityInfo();
      const { runId, stored } = await openPipelineRun(db, input, { 'flywheel.source': 'imported' });
      if (stored) return { ...stored, taskQueue: stored.taskQueue || info.taskQueue };
      const place = async (modelKey: string) => {
        const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(imported.source);
        if (s3 && s3[1] === store.bucket) {
          if ((await store.sizeOf(s3[2]!)) === undefined)
            throw await fail(runId, 'NotFoundError', `training.source ${imported.source}: no such object`);
          return store.copy(s3[2]!, modelKey);
        }
        // Elsewhere (a local file under the data roots, a URL, another bucket): through a bounded temporary file.
        const file = join(tmpdir(), `flywheel-import-${runId}-${info.attempt}.onnx`);
        try {
          const source = await openSource(imported.source, store, localAccess());
          let bytes = 0;
          source.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > MAX_IMPORT_BYTES)
              source.destroy(
                new SourceError(`training.source is larger than ${MAX_IMPORT_BYTES} bytes`, imported.source),
              );
            heartbeat({ bytes });
          });
          await pipeline(source, createWriteStream(file), { signal: activityCancellation() });
          await store.putFile(modelKey, file);
        } catch (error) {
          if (error instanceof SourceError)
            throw await fail(runId, 'TrainingError', `training.source: ${error.message}`);
          throw error;
        } finally {
          await unlink(file).catch(() => undefined);
        }
      };
      const artifactKey = await installOnnx(runId, input, place, imported.signature);
      const backend = 'onnx-import';
      await markRunStarted(db, runId, { backend, taskQueue: info.taskQueue });
      await mergeRunMetrics(db, runId, { epochs: 0 }, { artifactKey, backend });
      return {
        runId,
        artifactKey,
        backend,
        taskQueue: info.taskQueue,
        epochs: 0,
        finalLoss: NaN,
        objective: NaN,
        stoppedEarly: false,
      };
    },
  };
}

/**
 * Whether an installed ONNX model can serve this pipeline: its signature parses and matches the model (the same checks
 * and messages as evaluation and serving), it names the pipeline's target and task, and reads only columns the
 * dataset has. The reason, or undefined.
 */
async function checkOnnxModel(
  store: ActivityDeps['store'],
  modelKey: string,
  expected: { task: string; target: string; datasetColumns?: string[] },
): Promise<string | undefined> {
  let runner: ModelRunner;
  try {
    runner = await loadRunner(store, modelKey);
  } catch (error) {
    return `the ONNX model cannot serve: ${(error as Error).message}`;
  }
  try {
    if (runner.target.name !== expected.target)
      return `signature.target is "${runner.target.name}" but the pipeline's training.target is "${expected.target}"`;
    if (runner.target.task !== expected.task)
      return `signature.task is "${runner.target.task}" but the pipeline's training.task is "${expected.task}"`;
    const absent = expected.datasetColumns
      ? runner.features.filter((f) => !expected.datasetColumns!.includes(f.name))
      : [];
    if (absent.length)
      return `the model reads column(s) ${absent.map((f) => `"${f.name}"`).join(', ')} that the dataset lacks (it has: ${expected.datasetColumns!.join(', ')})`;
    return undefined;
  } finally {
    runner.dispose();
  }
}

const finiteOnly = (metrics: Record<string, number>) =>
  Object.fromEntries(Object.entries(metrics).filter(([, v]) => typeof v === 'number' && Number.isFinite(v)));
