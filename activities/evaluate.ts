/**
 * Evaluate: the candidate's holdout report (metrics, slices, fairness, plots), the current champion scored on the same
 * holdout, the MLflow-style gates over both, and the prediction reference for monitoring.
 */
import { heartbeat } from '@temporalio/activity';
import { binReference } from '../ml/drift';
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
} from '../ml/evaluation';
import { checkGates, type Gate, type GateResult } from '../ml/gates';
import {
  decodeRegression,
  encodeColumns,
  encodeTarget,
  featureWidth,
  type Preprocessor,
  type RawColumns,
} from '../ml/preprocess';
import { parseNumber } from '../ml/numbers';
import { splitRows } from '../ml/split';
import { mergeRunMetrics } from '../store/runs';
import { loadTf, type TfModule } from '../training/backend';
import { deserializeModel, disposeModel, outputUnits, predictEncoded, type ModelArtifact } from '../training/model';
import type { PipelineConfig } from '../config/pipeline';
import { loadDatasetColumns } from './datasetColumns';
import type { ActivityDeps } from './deps';
import type { TrainingParams } from './train';

export type FairnessSettings = NonNullable<PipelineConfig['evaluation']['fairness']>;

export interface EvaluateInput {
  runId: string;
  artifactKey: string;
  datasetVersionId: string;
  params: TrainingParams;
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
  probabilities?: Float32Array;
  evaluate: (rows: Int32Array) => Record<string, number>;
}

function score(
  tf: TfModule,
  model: Awaited<ReturnType<typeof deserializeModel>>,
  pre: Preprocessor,
  columns: RawColumns,
  holdout: ArrayLike<number>,
): Scored {
  const outputs = predictEncoded(tf, model, encodeColumns(pre, columns, holdout), holdout.length, featureWidth(pre));
  const target = pre.target;
  if (target.task === 'regression') {
    const predictions = Float64Array.from(outputs, (v) => decodeRegression(pre, v));
    // The raw values, not decode(encode(y)): a round trip turns a 0 into 1e-15, and MAPE would divide by it.
    const raw = columns[target.name]!;
    const truth = Float64Array.from(holdout, (r) => parseNumber(raw[r]!) ?? target.mean);
    const pick = (rows: Int32Array, from: Float64Array) => Float64Array.from(rows, (r) => from[r]!);
    return {
      metrics: regressionEvaluation(truth, predictions).metrics,
      predictions,
      truth,
      evaluate: (rows) => regressionEvaluation(pick(rows, truth), pick(rows, predictions)).metrics,
    };
  }
  const actual = encodeTarget(pre, columns, holdout);
  const classes = outputUnits(pre);
  const predictions = new Float64Array(holdout.length);
  for (let i = 0; i < holdout.length; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (outputs[i * classes + k]! > outputs[i * classes + best]!) best = k;
    predictions[i] = best;
  }
  const truth = Float64Array.from(actual);
  return {
    metrics: classificationEvaluation(truth, outputs, target.classes).metrics,
    predictions,
    truth,
    probabilities: outputs,
    evaluate: (rows) => {
      const probabilities = new Float32Array(rows.length * classes);
      rows.forEach((r, i) => probabilities.set(outputs.subarray(r * classes, (r + 1) * classes), i * classes));
      return classificationEvaluation(
        Float64Array.from(rows, (r) => truth[r]!),
        probabilities,
        target.classes,
      ).metrics;
    },
  };
}

export function createEvaluateActivities({ db, store }: ActivityDeps) {
  return {
    async evaluateModel(input: EvaluateInput): Promise<EvaluateResult> {
      const { tf } = await loadTf();
      const artifact = await store.getJson<ModelArtifact>(input.artifactKey);
      const pre = artifact.preprocessor;
      const baselineArtifact = input.baseline
        ? await store.getJson<ModelArtifact>(input.baseline.artifactKey)
        : undefined;
      const { params } = input;
      const featuresOf = (p: Preprocessor) => [...p.numeric.map((n) => n.name), ...p.categorical.map((c) => c.name)];
      const extra = [...(input.slices ?? []), ...(input.fairness ? [input.fairness.sensitive] : [])];
      const wanted = [
        ...new Set([...params.features.numeric, ...params.features.categorical, params.target, ...extra]),
      ];
      // The champion can be scored on this holdout when it predicts the same target from columns this dataset has.
      const comparable =
        baselineArtifact &&
        baselineArtifact.preprocessor.target.name === pre.target.name &&
        baselineArtifact.preprocessor.target.task === pre.target.task;
      const { version, columns, rowCount } = await loadDatasetColumns(db, store, input.datasetVersionId, wanted);
      const { holdout } = splitRows(rowCount, params.holdoutFraction, params.seed, version.contentHash);
      heartbeat({ scoring: 'candidate' });
      const model = await deserializeModel(tf, artifact);
      let scored: Scored;
      try {
        scored = score(tf, model, pre, columns, holdout);
      } finally {
        disposeModel(model);
      }
      const { metrics } = scored;

      let baseline: EvaluateResult['baseline'] = null;
      if (input.baseline) {
        const missing = comparable ? featuresOf(baselineArtifact!.preprocessor).filter((f) => !(f in columns)) : [];
        if (comparable && missing.length) {
          const more = await loadDatasetColumns(db, store, input.datasetVersionId, missing).catch(() => undefined);
          if (more) Object.assign(columns, more.columns);
        }
        if (comparable && featuresOf(baselineArtifact!.preprocessor).every((f) => f in columns)) {
          heartbeat({ scoring: `champion v${input.baseline.version}` });
          const champion = await deserializeModel(tf, baselineArtifact!);
          try {
            baseline = {
              version: input.baseline.version,
              metrics: score(tf, champion, baselineArtifact!.preprocessor, columns, holdout).metrics,
              scoredOn: 'this holdout',
            };
          } finally {
            disposeModel(champion);
          }
        } else {
          baseline = {
            version: input.baseline.version,
            metrics: unprefixed(input.baseline.metrics),
            scoredOn: 'its own holdout',
          };
        }
      }

      const prefix = input.artifactKey.replace(/model\.json$/, 'evaluation/');
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
        if (pre.target.task === 'regression') {
          positive = `> ${f.positiveAbove}`;
          actualPositive = Array.from(scored.truth, (v) => v > f.positiveAbove!);
          predictedPositive = Array.from(scored.predictions, (v) => v > f.positiveAbove!);
        } else {
          const classes = pre.target.classes;
          positive = f.positiveClass ?? classes[Math.min(1, classes.length - 1)]!;
          const index = classes.indexOf(positive);
          if (index < 0)
            throw new Error(
              `evaluation.fairness.positiveClass "${positive}" is not a class of ${pre.target.name} (${classes.join(', ')})`,
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
      if (pre.target.task === 'regression') {
        await putPlot('residuals', residualsSvg(scored.truth, scored.predictions));
      } else {
        const report = classificationEvaluation(scored.truth, scored.probabilities!, pre.target.classes);
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
      const predictionReferenceKey = input.artifactKey.replace(/model\.json$/, 'prediction-reference.json');
      await store.putJson(predictionReferenceKey, binReference(scored.predictions, 10));
      const reportKey = `${prefix}report.json`;
      await store.putJson(reportKey, {
        runId: input.runId,
        datasetVersionId: input.datasetVersionId,
        holdoutRows: holdout.length,
        metrics,
        baseline,
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
