/** The TF.js runner: Flywheel's own flywheel-tfjs-v1 artifact (network + fitted preprocessor), as training made it. */
import type { LayersModel } from '@tensorflow/tfjs';
import {
  decodeRegression,
  encodeColumns,
  featureWidth,
  type Preprocessor,
  type RawColumns,
} from '../training/preprocess';
import type { TfModule } from '../training/backend';
import { disposeModel, encodeInstances, outputUnits, predictEncoded } from '../training/model';
import type { EncodedRows, InputMetadata, ModelFeature, ModelRunner, ModelTarget } from './runner';
import { denseNetworkOf, type DenseNetwork } from './dense';

/**
 * Batches of at most this many rows run through the network in plain JS (inference/dense.ts) instead of TF.js: one
 * row takes ~30 µs that way against 200–300 µs of TF.js dispatch here, and TF.js is ahead from about 6 rows on.
 */
export const DENSE_JS_MAX_ROWS = 4;

export class TfjsRunner implements ModelRunner {
  readonly format = 'flywheel-tfjs-v1' as const;
  readonly outputName = 'the network';
  readonly features: readonly ModelFeature[];
  readonly target: ModelTarget;
  readonly width: number;
  readonly inputMetadata: readonly InputMetadata[];
  private readonly featureWidth: number;
  /** The same network for small batches, when it is plain dense layers (it always is when Flywheel trained it). */
  private readonly dense: DenseNetwork | undefined;

  constructor(
    private readonly tf: TfModule,
    readonly model: LayersModel,
    readonly preprocessor: Preprocessor,
    /** @default 'tfjs' */
    readonly platform = 'tfjs',
  ) {
    const pre = preprocessor;
    this.features = [
      ...pre.numeric.map((n) => ({ name: n.name, kind: 'numeric' as const })),
      ...pre.categorical.map((c) => ({ name: c.name, kind: 'categorical' as const })),
    ];
    this.target =
      pre.target.task === 'regression'
        ? { task: 'regression', name: pre.target.name, fill: pre.target.mean }
        : { task: 'classification', name: pre.target.name, classes: pre.target.classes };
    this.width = outputUnits(pre);
    this.featureWidth = featureWidth(pre);
    this.inputMetadata = this.features.map((f) => ({
      name: f.name,
      datatype: f.kind === 'numeric' ? 'FP32' : 'BYTES',
      shape: [-1],
    }));
    const dense = denseNetworkOf(model);
    this.dense = dense?.inputs === this.featureWidth && dense.outputs === this.width ? dense : undefined;
  }

  encode(instances: Record<string, unknown>[]): EncodedRows {
    return { rows: instances.length, parts: [encodeInstances(this.preprocessor, instances)] };
  }

  encodeColumns(columns: RawColumns, rows: ArrayLike<number>): EncodedRows {
    return { rows: rows.length, parts: [encodeColumns(this.preprocessor, columns, rows)] };
  }

  async run(encoded: EncodedRows): Promise<Float64Array> {
    const values = encoded.parts[0] as Float32Array;
    const outputs =
      this.dense && encoded.rows <= DENSE_JS_MAX_ROWS
        ? this.dense.predict(values, encoded.rows)
        : predictEncoded(this.tf, this.model, values, encoded.rows, this.featureWidth);
    const pre = this.preprocessor;
    // Regression values are scaled for training; decoded in double precision, as serving always has.
    return pre.target.task === 'regression'
      ? Float64Array.from(outputs.subarray(0, encoded.rows), (v) => decodeRegression(pre, v))
      : Float64Array.from(outputs);
  }

  predict(instances: Record<string, unknown>[]): Promise<Float64Array> {
    return this.run(this.encode(instances));
  }

  predictColumns(columns: RawColumns, rows: ArrayLike<number>): Promise<Float64Array> {
    return this.run(this.encodeColumns(columns, rows));
  }

  dispose(): void {
    disposeModel(this.model);
  }
}
