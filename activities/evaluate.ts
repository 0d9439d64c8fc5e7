/**
 * Evaluate: the candidate's holdout report (metrics, slices, fairness, plots), the current champion scored on the same
 * holdout, the MLflow-style gates over both, and the prediction reference for monitoring. Either may be a TF.js or an
 * ONNX model; one that answers NaN or ±Infinity fails evaluation, so it is never registered.
 */
import { heartbeat } from '@temporalio/activity';
import { binReference } from '../ml/quality/drift';
import {
  calibrationSvg,
  checkFairness,
  classificationEvaluation,
  confusionMatrixSvg,
  fairnessMetrics,
  precisionRecallSvg,
  regressionEvaluation,
  residualsSvg,
  rocCurveSvg,
  sliceMetrics,
} from '../ml/evaluation/evaluation';
import { checkGates, type Gate, type GateResult } from '../ml/evaluation/gates';
import { FeatureError, type RawColumns } from '../training/preprocess';
import { parseNumber } from '../ml/formats/numbers';
import { splitRows } from '../training/split';
import { mergeRunMetrics } from '../store/runs';
import { loadRunner } from '../inference/load';
import { describeNonFinite, firstNonFinite, siblingKey, type ModelRunner } from '../inference/runner';
import { SignatureError } from '../inference/signature';
import type { PipelineConfig } from '../config/pipeline';
import { loadDatasetColumns } from './datasetColumns';
import { badInput, type ActivityDeps } from './deps';
import type { TrainingParams } from './train';

export type FairnessSettings = NonNullable<PipelineConfig['evaluation']['fairness']>;

export interface EvaluateInput {
  runId: string;
  /** `…/model.json` (TF.js) or `…/model.onnx` (ONNX, its `signature.json` beside it): the features come from it. */
  artifactKey: string;
  datasetVersionId: string;
  /** The split the training used: the holdout is recomputed from it. */
  params: Pick<TrainingParams, 'holdoutFraction' | 'seed'>;
  gates: Gate[];
  slices?: string[];
  fairness?: FairnessSettings;
  /** The current champion: scored on the same holdout rows, for the change gates. */
  baseline?: { version: number; artifactKey: string; metrics: Record<string, number> } | null;
}

export interface EvaluateResult {
  metrics: Record<string, number>;
  gate: GateResult;
  /** The champion's metrics on this holdout (or, when it cannot be scored on it, as registered). */
  baseline: { version: number; metrics: Record<string, number>; scoredOn: 'this holdout' | 'its own holdout' } | null;
  predictionReferenceKey: string;
  reportKey: string;
  /** Plot name → object key of its SVG. */
  plots: Record<string, string>;
}

interface Scored {
  metrics: Record<string, number>;
  /** Regression values, or the predicted class index. */
  predictions: Float64Array;
  truth: Float64Array;
  probabilities?: Float64Array;
  evaluate: (rows: Int32Array) => Record<string, number>;
}

/**
 * The model's predictions on the holdout rows, scored. `model` names it in failures: a row it cannot encode, an output
 * that does not fit its signature, or a NaN / ±Infinity it answers fail evaluation for good (no retry changes them).
 */
async function score(
  runner: ModelRunner,
  model: string,
  columns: RawColumns,
  holdout: ArrayLike<number>,
): Promise<Scored> {
  let outputs: Float64Array;
  try {
    outputs = await runner.predictColumns(columns, holdout);
  } catch (error) {
    if (error instanceof FeatureError || error instanceof SignatureError)
      throw badInput('EvaluationError', `${model}: ${error.message}`);
    throw error;
  }
  const bad = firstNonFinite(outputs, runner.width);
  if (bad) {
    const row = holdout[bad.row]!;
    const inputs = runner.features.map((f) => `${f.name}=${JSON.stringify(columns[f.name]![row])}`).join(', ');
    throw badInput(
      'EvaluationError',
      `${model} answered a non-finite prediction: ${describeNonFinite(runner, outputs, bad, `data row ${row + 1}`)} (inputs: ${inputs})`,
    );
  }
  const target = runner.target;
  const raw = columns[target.name]!;
  if (target.task === 'regression') {
    const predictions = outputs;
    // The raw values, not decode(encode(y)): a round trip turns a 0 into 1e-15, and MAPE would divide by it.
    const truth = Float64Array.from(holdout, (r) => {
      const value = parseNumber(raw[r]!) ?? target.fill;
      if (value === undefined)
        throw badInput(
          'EvaluationError',
          `target column "${target.name}" has no number at data row ${r + 1} (${JSON.stringify(raw[r])}); ${model} cannot be scored on it`,
        );
      return value;
    });
    const pick = (rows: Int32Array, from: Float64Array) => Float64Array.from(rows, (r) => from[r]!);
    return {
      metrics: regressionEvaluation(truth, predictions).metrics,
      predictions,
      truth,
      evaluate: (rows) => regressionEvaluation(pick(rows, truth), pick(rows, predictions)).metrics,
    };
  }
  const classIndex = new Map(target.classes.map((c, i) => [c, i]));
  const truth = Float64Array.from(holdout, (r) => classIndex.get(raw[r]!) ?? -1);
  const classes = runner.width;
  const predictions = new Float64Array(holdout.length);
  for (let i = 0; i < holdout.length; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (outputs[i * classes + k]! > outputs[i * classes + best]!) best = k;
    predictions[i] = best;
  }
  return {
    metrics: classificationEvaluation(truth, outputs, target.classes).metrics,
    predictions,
    truth,
    probabilities: outputs,
    evaluate: (rows) => {
      const probabilities = new Float64Array(rows.length * classes);
      rows.forEach((r, i) => probabilities.set(outputs.subarray(r * classes, (r + 1) * classes), i * classes));
      return classificationEvaluation(
        Float64Array.from(rows, (r) => truth[r]!),
        probabilities,
        target.classes,
      ).metrics;
    },
  };
}

/** A model that cannot load because of its own files (a signature that does not fit it): no retry will help. */
async function load(store: ActivityDeps['store'], artifactKey: string, model: string): Promise<ModelRunner> {
  try {
    return await loadRunner(store, artifactKey);
  } catch (error) {
    if (error instanceof SignatureError) throw badInput('EvaluationError', `${model}: ${error.message}`);
    throw error;
  }
}

export function createEvaluateActivities({ db, store }: ActivityDeps) {
  return {
    async evaluateModel(input: EvaluateInput): Promise<EvaluateResult> {
      const candidateName = `the candidate ${input.artifactKey}`;
      const candidate = await load(store, input.artifactKey, candidateName);
      let scored: Scored;
      let columns: RawColumns;
      let holdout: Uint32Array;
      const target = candidate.target;
      try {
        const featuresOf = (runner: ModelRunner) => runner.features.map((f) => f.name);
        const extra = [...(input.slices ?? []), ...(input.fairness ? [input.fairness.sensitive] : [])];
        const wanted = [...new Set([...featuresOf(candidate), target.name, ...extra])];
        const loaded = await loadDatasetColumns(db, store, input.datasetVersionId, wanted);
        columns = loaded.columns;
        const { params } = input;
        ({ holdout } = splitRows(loaded.rowCount, params.holdoutFraction, params.seed, loaded.version.contentHash));
        heartbeat({ scoring: 'candidate' });
        scored = await score(candidate, candidateName, columns, holdout);
      } finally {
        candidate.dispose();
      }
      const { metrics } = scored;

      let baseline: EvaluateResult['baseline'] = null;
      let baselineNote: string | undefined;
      if (input.baseline) {
        const championName = `the champion v${input.baseline.version} (${input.baseline.artifactKey})`;
        const champion = await load(store, input.baseline.artifactKey, championName);
        let championMetrics: Record<string, number> | undefined;
        try {
          // The champion can be scored on this holdout when it predicts the same target from columns this dataset has.
          const comparable = champion.target.name === target.name && champion.target.task === target.task;
          const missing = comparable ? champion.features.map((f) => f.name).filter((f) => !(f in columns)) : [];
          if (comparable && missing.length) {
            const more = await loadDatasetColumns(db, store, input.datasetVersionId, missing).catch(() => undefined);
            if (more) Object.assign(columns, more.columns);
          }
          if (comparable && champion.features.every((f) => f.name in columns)) {
            heartbeat({ scoring: `champion v${input.baseline.version}` });
            championMetrics = await score(champion, championName, columns, holdout)
              .then((s) => s.metrics)
              .catch((error: unknown) => {
                // A champion unable to score this holdout never blocks its replacement: its registered metrics stand.
                baselineNote = `not scored on this holdout: ${(error as Error).message}`;
                return undefined;
              });
          }
        } finally {
          champion.dispose();
        }
        baseline = championMetrics
          ? { version: input.baseline.version, metrics: championMetrics, scoredOn: 'this holdout' }
          : {
              version: input.baseline.version,
              metrics: unprefixed(input.baseline.metrics),
              scoredOn: 'its own holdout',
            };
      }

      const prefix = siblingKey(input.artifactKey, 'evaluation/');
      const plots: Record<string, string> = {};
      const putPlot = async (name: string, svg: string) => {
        const key = `${prefix}${name}.svg`;
        await store.putBuffer(key, svg, 'image/svg+xml');
        plots[name] = key;
      };
      const slices = (input.slices ?? []).map((column) => ({
        column,
        values: sliceMetrics(
          Array.from(holdout, (r) => columns[column]![r] || null),
          scored.evaluate,
        ),
      }));

      let fairness:
        | (ReturnType<typeof fairnessMetrics> & { positive: string; check: ReturnType<typeof checkFairness> })
        | undefined;
      if (input.fairness) {
        const f = input.fairness;
        let positive: string;
        let actualPositive: boolean[], predictedPositive: boolean[];
        if (target.task === 'regression') {
          positive = `> ${f.positiveAbove}`;
          actualPositive = Array.from(scored.truth, (v) => v > f.positiveAbove!);
          predictedPositive = Array.from(scored.predictions, (v) => v > f.positiveAbove!);
        } else {
          const classes = target.classes;
          positive = f.positiveClass ?? classes[Math.min(1, classes.length - 1)]!;
          const index = classes.indexOf(positive);
          if (index < 0)
            throw new Error(
              `evaluation.fairness.positiveClass "${positive}" is not a class of ${target.name} (${classes.join(', ')})`,
            );
          actualPositive = Array.from(scored.truth, (v) => v === index);
          predictedPositive = Array.from(scored.predictions, (v) => v === index);
        }
        const result = fairnessMetrics(
          Array.from(holdout, (r) => columns[f.sensitive]![r] || null),
          actualPositive,
          predictedPositive,
        );
        fairness = { ...result, positive, check: checkFairness(result, f) };
        metrics.demographic_parity_difference = result.demographic_parity_difference;
        metrics.equalized_odds_difference = result.equalized_odds_difference;
        metrics.disparate_impact_ratio = result.disparate_impact_ratio;
      }

      let confusion: ReturnType<typeof classificationEvaluation>['confusion'] | undefined;
      if (target.task === 'regression') {
        await putPlot('residuals', residualsSvg(scored.truth, scored.predictions));
      } else {
        const report = classificationEvaluation(scored.truth, scored.probabilities!, target.classes);
        confusion = report.confusion;
        await putPlot('confusion_matrix', confusionMatrixSvg(report.confusion));
        await putPlot('calibration', calibrationSvg(report.curves.calibration.bins));
        if (report.curves.roc) await putPlot('roc', rocCurveSvg(report.curves.roc, report.metrics.roc_auc ?? NaN));
        if (report.curves.pr)
          await putPlot('precision_recall', precisionRecallSvg(report.curves.pr, report.metrics.pr_auc ?? NaN));
      }

      const gate = checkGates(metrics, input.gates, baseline);
      if (fairness && !fairness.check.passed) {
        gate.passed = false;
        gate.failures.push(...fairness.check.failures);
      }
      const predictionReferenceKey = siblingKey(input.artifactKey, 'prediction-reference.json');
      await store.putJson(predictionReferenceKey, binReference(scored.predictions, 10));
      const reportKey = `${prefix}report.json`;
      await store.putJson(reportKey, {
        runId: input.runId,
        datasetVersionId: input.datasetVersionId,
        holdoutRows: holdout.length,
        metrics,
        baseline,
        ...(baselineNote ? { baselineNote } : {}),
        gate,
        slices,
        fairness,
        confusion,
        plots,
      });
      await mergeRunMetrics(db, input.runId, prefixed(metrics));
      return { metrics, gate, baseline, predictionReferenceKey, reportKey, plots };
    },
  };
}

function prefixed(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([k, v]) => [`holdout_${k}`, v]));
}

function unprefixed(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k.replace(/^holdout_/, ''), v]));
}
