/** Evaluate: holdout metrics of a trained run, the threshold gate, and the prediction reference for monitoring. */
import { eq } from 'drizzle-orm';
import { binReference } from '../ml/drift';
import { checkGates, classificationMetrics, regressionMetrics, type Gate, type GateResult } from '../ml/metrics';
import { decodeRegression, encodeColumns, encodeTarget, featureWidth } from '../ml/preprocess';
import { splitRows } from '../ml/split';
import { runs } from '../schema/runs';
import { loadTf } from '../training/backend';
import { deserializeModel, disposeModel, outputUnits, predictEncoded, type ModelArtifact } from '../training/model';
import { loadDatasetColumns } from './datasetColumns';
import type { ActivityDeps } from './deps';
import type { TrainingParams } from './train';

export interface EvaluateInput {
  runId: string;
  artifactKey: string;
  datasetVersionId: string;
  params: TrainingParams;
  gates: Gate[];
}

export interface EvaluateResult {
  metrics: Record<string, number>;
  gate: GateResult;
  predictionReferenceKey: string;
}

export function createEvaluateActivities({ db, store }: ActivityDeps) {
  return {
    async evaluateModel(input: EvaluateInput): Promise<EvaluateResult> {
      const { tf } = await loadTf();
      const artifact = await store.getJson<ModelArtifact>(input.artifactKey);
      const pre = artifact.preprocessor;
      const { params } = input;
      const wanted = [...new Set([...params.features.numeric, ...params.features.categorical, params.target])];
      const { version, columns, rowCount } = await loadDatasetColumns(db, store, input.datasetVersionId, wanted);
      const { holdout } = splitRows(rowCount, params.holdoutFraction, params.seed, version.contentHash);
      const model = await deserializeModel(tf, artifact);
      try {
        const outputs = predictEncoded(tf, model, encodeColumns(pre, columns, holdout), holdout.length, featureWidth(pre));
        const actual = encodeTarget(pre, columns, holdout);
        let metrics: Record<string, number>;
        let predictions: Float64Array;
        if (pre.target.task === 'regression') {
          predictions = Float64Array.from(outputs, (v) => decodeRegression(pre, v));
          const truth = Float64Array.from(actual, (v) => decodeRegression(pre, v));
          metrics = regressionMetrics(truth, predictions);
        } else {
          const classes = outputUnits(pre);
          metrics = classificationMetrics(actual, outputs, classes);
          // Reference for prediction drift: the predicted class index.
          predictions = new Float64Array(holdout.length);
          for (let i = 0; i < holdout.length; i++) {
            let best = 0;
            for (let k = 1; k < classes; k++) if (outputs[i * classes + k]! > outputs[i * classes + best]!) best = k;
            predictions[i] = best;
          }
        }
        const predictionReferenceKey = input.artifactKey.replace(/model\.json$/, 'prediction-reference.json');
        await store.putJson(predictionReferenceKey, binReference(predictions, 10));
        const [run] = await db.select({ metrics: runs.metrics }).from(runs).where(eq(runs.id, input.runId));
        await db.update(runs).set({ metrics: { ...(run?.metrics ?? {}), ...prefixed(metrics) } }).where(eq(runs.id, input.runId));
        return { metrics, gate: checkGates(metrics, input.gates), predictionReferenceKey };
      } finally {
        disposeModel(model);
      }
    },
  };
}

function prefixed(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([k, v]) => [`holdout_${k}`, v]));
}
