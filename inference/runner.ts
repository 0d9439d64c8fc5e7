/**
 * What evaluation and serving need of a model, whatever its format: its features, target and classes, and predictions
 * (class probabilities per row, or the value in the target's units) from request instances or dataset columns.
 */
import type { RawColumns } from '../training/preprocess';

export type ModelFormat = 'flywheel-tfjs-v1' | 'flywheel-onnx-v1';

export interface ModelFeature {
  name: string;
  kind: 'numeric' | 'categorical';
}

export type ModelTarget =
  | {
      task: 'regression';
      name: string;
      /** What a holdout row without a target value scores against (TF.js: the training mean); none: refused. */
      fill?: number;
    }
  | { task: 'classification'; name: string; classes: string[] };

/** One model input as the Open Inference Protocol v2 metadata names it. */
export interface InputMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

/** A part of an encoded batch: `rows × width` values of one model input, row-major. */
export type EncodedPart = Float32Array | Float64Array | Int32Array | BigInt64Array | string[];

/** Rows encoded for one runner (one part per model input); requests' encodings concatenate into one batch. */
export interface EncodedRows {
  rows: number;
  parts: EncodedPart[];
}

export interface ModelRunner {
  readonly format: ModelFormat;
  /** `OIP` platform name: `tfjs-<backend>`, `onnxruntime_onnx`. */
  readonly platform: string;
  readonly features: readonly ModelFeature[];
  readonly target: ModelTarget;
  /** The output predictions come from, for messages. */
  readonly outputName: string;
  /** Values per row in what `run` answers: the classes, or 1. */
  readonly width: number;
  /** The inputs a v2 client sends: per feature for TF.js, the ONNX model's own inputs for ONNX. */
  readonly inputMetadata: readonly InputMetadata[];
  /** A model fed one [N, width] tensor: its name and the features along its second axis (ONNX tensor layout). */
  readonly tensorInput?: { name: string; columns: string[] };
  /**
   * Validates and encodes request instances; throws `FeatureError` naming the field (`instances[3].plan`). Every
   * feature must be present; unknown fields (other than the target) are refused.
   */
  encode(instances: Record<string, unknown>[]): EncodedRows;
  /** Encodes chosen rows of a dataset (raw CSV strings). */
  encodeColumns(columns: RawColumns, rows: ArrayLike<number>): EncodedRows;
  /** `rows × width` values: class probabilities per row, or the value in the target's units. */
  run(encoded: EncodedRows): Promise<Float64Array>;
  predict(instances: Record<string, unknown>[]): Promise<Float64Array>;
  predictColumns(columns: RawColumns, rows: ArrayLike<number>): Promise<Float64Array>;
  dispose(): void;
}

/** Several requests' encodings as one batch (each part concatenated in request order). */
export function concatEncoded(batch: EncodedRows[]): EncodedRows {
  if (batch.length === 1) return batch[0]!;
  const rows = batch.reduce((sum, e) => sum + e.rows, 0);
  const parts = batch[0]!.parts.map((first, k) => {
    const pieces = batch.map((e) => e.parts[k]!);
    if (Array.isArray(first)) return (pieces as string[][]).flat();
    const length = pieces.reduce((sum, p) => sum + p.length, 0);
    const out = new (first.constructor as new (n: number) => Exclude<EncodedPart, string[]>)(length);
    let offset = 0;
    for (const piece of pieces as Exclude<EncodedPart, string[]>[]) {
      (out as Float32Array).set(piece as Float32Array, offset);
      offset += piece.length;
    }
    return out;
  });
  return { rows, parts };
}

/** The first value that is NaN or ±Infinity, as its row and column, or undefined. */
export function firstNonFinite(values: Float64Array, width: number): { row: number; column: number } | undefined {
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i]!)) return { row: Math.floor(i / width), column: i % width };
  return undefined;
}

/** Where a finite-check failure is, in words: `probabilities[row 3, class "yes"] is NaN`. */
export function describeNonFinite(
  runner: Pick<ModelRunner, 'outputName' | 'target' | 'width'>,
  values: Float64Array,
  at: { row: number; column: number },
  row = `row ${at.row}`,
): string {
  const value = values[at.row * runner.width + at.column]!;
  const column = runner.target.task === 'classification' ? `, class "${runner.target.classes[at.column]}"` : '';
  return `output "${runner.outputName}" [${row}${column}] is ${value}`;
}

/** The object next to a model artifact (`models/m/<run>/model.onnx` → `models/m/<run>/<name>`). */
export function siblingKey(artifactKey: string, name: string): string {
  return `${artifactKey.slice(0, artifactKey.lastIndexOf('/') + 1)}${name}`;
}

export const isOnnxKey = (artifactKey: string) => artifactKey.toLowerCase().endsWith('.onnx');

/** A model answered NaN or ±Infinity for a request: serving answers 500 naming the version, and logs no prediction. */
export class NonFiniteOutputError extends Error {
  constructor(
    readonly modelName: string,
    readonly modelVersion: number,
    detail: string,
  ) {
    super(`${modelName} v${modelVersion} answered a non-finite prediction: ${detail}`);
    this.name = 'NonFiniteOutputError';
  }
}
