/**
 * The ONNX runner: one onnxruntime-node session (CPU) per loaded version, fed as its signature says (one [N, width]
 * tensor, or one [N, 1] input per column) and checked against the model's own inputs and outputs when it loads.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { FeatureError, type RawColumns } from '../training/preprocess';
import { isNullToken, parseNumber } from '../ml/formats/numbers';
import type { EncodedPart, EncodedRows, InputMetadata, ModelFeature, ModelRunner, ModelTarget } from './runner';
import { SignatureError, type Signature, type SignatureColumn } from './signature';

type Ort = typeof import('onnxruntime-node');
type InputType = 'float32' | 'float64' | 'int64' | 'int32' | 'string';

/** One ONNX input and the feature columns it carries. */
interface InputPlan {
  name: string;
  type: InputType;
  columns: SignatureColumn[];
  /** Dims of one batch: [rows, columns] or, for an input declared as [N], [rows]. */
  rank: 1 | 2;
}

interface OutputPlan {
  /** Undefined: found at the first run (the model does not declare its output shapes). */
  name?: string;
  kind: 'probabilities' | 'logits' | 'value' | 'label';
}

const NUMERIC_TYPES: readonly string[] = ['float32', 'float64', 'int64', 'int32'];
const OIP_TYPES: Record<InputType, string> = {
  float32: 'FP32',
  float64: 'FP64',
  int64: 'INT64',
  int32: 'INT32',
  string: 'BYTES',
};

let ortModule: Promise<Ort> | undefined;
/** onnxruntime-node's native library loads on first use: a process serving TF.js models only never loads it. */
export const loadOrt = (): Promise<Ort> => (ortModule ??= import('onnxruntime-node'));

export class OnnxRunner implements ModelRunner {
  readonly format = 'flywheel-onnx-v1' as const;
  readonly platform = 'onnxruntime_onnx';
  readonly features: readonly ModelFeature[];
  readonly target: ModelTarget;
  readonly width: number;
  readonly inputMetadata: readonly InputMetadata[];
  /** The tensor layout's one input: a v2 client may send it whole ([N, width]) instead of per feature. */
  readonly tensorInput?: { name: string; columns: string[] };

  private constructor(
    private readonly ort: Ort,
    private readonly session: InferenceSession,
    readonly signature: Signature,
    private readonly inputs: InputPlan[],
    private output: OutputPlan,
    /** The model's object key, for messages. */
    readonly source: string,
  ) {
    this.features = signature.inputs.columns.map((c) => ({ name: c.name, kind: c.type }));
    this.target =
      signature.task === 'regression'
        ? { task: 'regression', name: signature.target }
        : { task: 'classification', name: signature.target, classes: signature.classes! };
    this.width = signature.task === 'regression' ? 1 : signature.classes!.length;
    this.inputMetadata = inputs.map((i) => ({
      name: i.name,
      datatype: OIP_TYPES[i.type],
      shape: i.rank === 1 ? [-1] : [-1, i.columns.length],
    }));
    if (signature.inputs.layout === 'tensor')
      this.tensorInput = { name: signature.inputs.name, columns: signature.inputs.columns.map((c) => c.name) };
  }

  get outputName(): string {
    return this.output.name ?? 'output';
  }

  /** Opens a session on the model's bytes and checks the signature against it; throws `SignatureError` on a misfit. */
  static async create(model: Uint8Array, signature: Signature, source: string): Promise<OnnxRunner> {
    const ort = await loadOrt();
    let session: InferenceSession;
    try {
      // One thread per session: tabular models are small, and a serving process holds several versions at once.
      session = await ort.InferenceSession.create(model, {
        executionProviders: ['cpu'],
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
      });
    } catch (error) {
      throw new SignatureError(`${source}: onnxruntime cannot load the model: ${(error as Error).message}`, 'model');
    }
    try {
      const inputs = planInputs(session, signature, source);
      const output = planOutput(session, signature, source);
      return new OnnxRunner(ort, session, signature, inputs, output, source);
    } catch (error) {
      await session.release().catch(() => undefined);
      throw error;
    }
  }

  encode(instances: Record<string, unknown>[]): EncodedRows {
    const known = new Set([...this.features.map((f) => f.name), this.target.name]);
    instances.forEach((instance, i) => {
      const where = `instances[${i}]`;
      if (instance === null || typeof instance !== 'object' || Array.isArray(instance))
        throw new FeatureError(`${where} must be a JSON object of feature values`, where);
      for (const key of Object.keys(instance))
        if (!known.has(key))
          throw new FeatureError(
            `${where}.${key}: unknown feature (expected ${this.features.map((f) => f.name).join(', ')})`,
            `${where}.${key}`,
          );
    });
    const parts = this.inputs.map((input) =>
      fill(input, instances.length, (row, column) => {
        const where = `instances[${row}].${column.name}`;
        const raw = instances[row]![column.name];
        if (raw === undefined) throw new FeatureError(`${where}: missing feature`, where);
        if (column.type === 'categorical') {
          if (raw !== null && typeof raw === 'object')
            throw new FeatureError(`${where}: expected a string or number, got ${JSON.stringify(raw)}`, where);
          return raw === null ? '' : String(raw);
        }
        if (raw === null) return null;
        const value =
          typeof raw === 'number'
            ? raw
            : typeof raw === 'boolean'
              ? Number(raw)
              : typeof raw === 'string'
                ? parseNumber(raw)
                : undefined;
        if (value === undefined || !Number.isFinite(value))
          throw new FeatureError(`${where}: expected a finite number, got ${JSON.stringify(raw)}`, where);
        return value;
      }),
    );
    return { rows: instances.length, parts };
  }

  encodeColumns(columns: RawColumns, rows: ArrayLike<number>): EncodedRows {
    const parts = this.inputs.map((input) =>
      fill(
        input,
        rows.length,
        (r, column) => {
          const raw = columns[column.name]![rows[r]!]!;
          if (column.type === 'categorical') return isNullToken(raw) ? '' : raw;
          // A missing or unreadable number reaches the model as NaN (an imputer in the model handles it, or NaN shows).
          return parseNumber(raw) ?? null;
        },
        (r) => `data row ${rows[r]! + 1}`,
      ),
    );
    return { rows: rows.length, parts };
  }

  async run(encoded: EncodedRows): Promise<Float64Array> {
    const { rows } = encoded;
    const feeds: Record<string, Tensor> = {};
    this.inputs.forEach((input, k) => {
      const dims = input.rank === 1 ? [rows] : [rows, input.columns.length];
      const data = encoded.parts[k]!;
      feeds[input.name] = Array.isArray(data)
        ? new this.ort.Tensor('string', data, dims)
        : new this.ort.Tensor(input.type as 'float32', data as Float32Array, dims);
    });
    const fetches = this.output.name ? [this.output.name] : tensorOutputs(this.session);
    const results = await this.session.run(feeds, fetches);
    try {
      if (!this.output.name) this.output = { ...this.output, name: this.findOutput(results, rows) };
      return this.decode(results[this.output.name!]!, rows);
    } finally {
      for (const value of Object.values(results)) (value as { dispose?: () => void }).dispose?.();
    }
  }

  predict(instances: Record<string, unknown>[]): Promise<Float64Array> {
    return this.run(this.encode(instances));
  }

  predictColumns(columns: RawColumns, rows: ArrayLike<number>): Promise<Float64Array> {
    return this.run(this.encodeColumns(columns, rows));
  }

  dispose(): void {
    void this.session.release().catch(() => undefined);
  }

  /** The default classification output of a model that does not declare shapes: the first [N, classes] tensor. */
  private findOutput(results: InferenceSession.ReturnType, rows: number): string {
    const found = Object.entries(results).find(
      ([, t]) => t.dims.length === 2 && t.dims[0] === rows && t.dims[1] === this.width,
    );
    if (!found)
      throw new SignatureError(
        `${this.source}: no output has shape [N, ${this.width}] for the ${this.width} classes (outputs: ${describeResults(results)}); name one in output.name`,
        'output.name',
      );
    return found[0];
  }

  private decode(tensor: Tensor, rows: number): Float64Array {
    const name = this.output.name!;
    const shape = `[${tensor.dims.join(', ')}]`;
    const data = tensor.data as ArrayLike<number | bigint | string>;
    if (tensor.dims[0] !== rows)
      throw new SignatureError(`${this.source}: output "${name}" has shape ${shape} for ${rows} rows`, 'output.name');
    const target = this.target;
    if (target.task === 'regression') {
      if (tensor.dims.length > 2 || (tensor.dims.length === 2 && tensor.dims[1] !== 1))
        throw new SignatureError(
          `${this.source}: output "${name}" has shape ${shape}; a regression output is [N] or [N, 1]`,
          'output.name',
        );
      return Float64Array.from({ length: rows }, (_, i) => Number(data[i]));
    }
    const classes = target.classes;
    const width = classes.length;
    if (this.output.kind === 'label') {
      const index = new Map(classes.map((c, i) => [c, i]));
      const out = new Float64Array(rows * width);
      for (let i = 0; i < rows; i++) {
        const label = String(data[i]);
        const k = index.get(label);
        if (k === undefined)
          throw new SignatureError(
            `${this.source}: output "${name}" [row ${i}] is "${label}", not one of the classes (${classes.join(', ')})`,
            'classes',
          );
        out[i * width + k] = 1;
      }
      return out;
    }
    if (tensor.dims.length !== 2 || tensor.dims[1] !== width)
      throw new SignatureError(
        `${this.source}: output "${name}" has shape ${shape}; classes lists ${width} classes`,
        'classes',
      );
    const out = Float64Array.from({ length: rows * width }, (_, i) => Number(data[i]));
    if (this.output.kind === 'logits') softmaxRows(out, width);
    return out;
  }
}

/** Per input, `rows × columns` values in its type; `value` answers a number, text, or null for a missing number. */
function fill(
  input: InputPlan,
  rows: number,
  value: (row: number, column: SignatureColumn) => number | string | null,
  where: (row: number) => string = (row) => `instances[${row}]`,
): EncodedPart {
  const width = input.columns.length;
  const size = rows * width;
  if (input.type === 'string') {
    const out: string[] = new Array(size);
    for (let r = 0; r < rows; r++) input.columns.forEach((c, k) => (out[r * width + k] = String(value(r, c) ?? '')));
    return out;
  }
  if (input.type === 'int64' || input.type === 'int32') {
    const out = input.type === 'int64' ? new BigInt64Array(size) : new Int32Array(size);
    for (let r = 0; r < rows; r++)
      input.columns.forEach((c, k) => {
        const v = value(r, c);
        if (typeof v !== 'number' || !Number.isInteger(v))
          throw new FeatureError(
            `${where(r)}.${c.name}: expected an integer (ONNX input "${input.name}" is ${input.type}), got ${v === null ? 'no value' : JSON.stringify(v)}`,
            `${where(r)}.${c.name}`,
          );
        if (out instanceof BigInt64Array) out[r * width + k] = BigInt(v);
        else out[r * width + k] = v;
      });
    return out;
  }
  const out = input.type === 'float64' ? new Float64Array(size) : new Float32Array(size);
  for (let r = 0; r < rows; r++)
    input.columns.forEach((c, k) => {
      const v = value(r, c);
      out[r * width + k] = typeof v === 'number' ? v : NaN;
    });
  return out;
}

function softmaxRows(values: Float64Array, width: number): void {
  for (let start = 0; start < values.length; start += width) {
    let max = -Infinity;
    for (let k = 0; k < width; k++) max = Math.max(max, values[start + k]!);
    let sum = 0;
    for (let k = 0; k < width; k++) sum += values[start + k] = Math.exp(values[start + k]! - max);
    for (let k = 0; k < width; k++) values[start + k]! /= sum;
  }
}

const metadataOf = (list: readonly InferenceSession.ValueMetadata[] | undefined, name: string) =>
  list?.find((m) => m.name === name);

const shapeText = (shape: ReadonlyArray<number | string>) =>
  `[${shape.map((d) => (typeof d === 'number' && d >= 0 ? d : 'N')).join(', ')}]`;

const tensorOutputs = (session: InferenceSession) =>
  session.outputNames.filter((name) => metadataOf(session.outputMetadata, name)?.isTensor !== false);

function describeResults(results: InferenceSession.ReturnType): string {
  return Object.entries(results)
    .map(([name, t]) => `${name} [${t.dims.join(', ')}]`)
    .join(', ');
}

function describeOutputs(session: InferenceSession): string {
  return session.outputNames
    .map((name) => {
      const meta = metadataOf(session.outputMetadata, name);
      return meta?.isTensor
        ? `${name} ${shapeText(meta.shape)}`
        : `${name}${meta?.isTensor === false ? ' (not a tensor)' : ''}`;
    })
    .join(', ');
}

function planInputs(session: InferenceSession, signature: Signature, source: string): InputPlan[] {
  const inputs = signature.inputs;
  const names = session.inputNames;
  const list = names.join(', ');
  if (inputs.layout === 'tensor') {
    if (!names.includes(inputs.name))
      throw new SignatureError(
        `${source}: inputs.name "${inputs.name}": the model has no such input (its inputs: ${list})`,
        'inputs.name',
      );
    const others = names.filter((n) => n !== inputs.name);
    if (others.length)
      throw new SignatureError(
        `${source}: inputs: the model also takes ${others.map((n) => `"${n}"`).join(', ')}; the tensor layout feeds the one input "${inputs.name}" (use the columns layout for one input per column)`,
        'inputs.name',
      );
    const meta = metadataOf(session.inputMetadata, inputs.name);
    let rank: 1 | 2 = 2;
    if (meta?.isTensor) {
      if (meta.type !== inputs.dtype)
        throw new SignatureError(
          `${source}: inputs.dtype is "${inputs.dtype}", but ONNX input "${inputs.name}" is ${meta.type}`,
          'inputs.dtype',
        );
      const width = meta.shape[1];
      if (meta.shape.length !== 2 && meta.shape.length !== 0)
        throw new SignatureError(
          `${source}: ONNX input "${inputs.name}" has shape ${shapeText(meta.shape)}; the tensor layout feeds [N, ${inputs.columns.length}]`,
          'inputs.name',
        );
      if (typeof width === 'number' && width >= 0 && width !== inputs.columns.length)
        throw new SignatureError(
          `${source}: inputs.columns lists ${inputs.columns.length} columns (${inputs.columns.map((c) => c.name).join(', ')}), but ONNX input "${inputs.name}" takes ${width} (shape ${shapeText(meta.shape)})`,
          'inputs.columns',
        );
      rank = 2;
    } else if (meta && !meta.isTensor)
      throw new SignatureError(`${source}: ONNX input "${inputs.name}" is not a tensor`, 'inputs.name');
    return [{ name: inputs.name, type: inputs.dtype, columns: inputs.columns, rank }];
  }
  const columnNames = new Set(inputs.columns.map((c) => c.name));
  const extra = names.filter((n) => !columnNames.has(n));
  const plans = inputs.columns.map((column, i): InputPlan => {
    const field = `inputs.columns[${i}]`;
    if (!names.includes(column.name))
      throw new SignatureError(
        `${source}: ${field} ("${column.name}"): the model has no input named "${column.name}" (its inputs: ${list})`,
        field,
      );
    const meta = metadataOf(session.inputMetadata, column.name);
    if (!meta?.isTensor) {
      if (meta) throw new SignatureError(`${source}: ${field}: ONNX input "${column.name}" is not a tensor`, field);
      return {
        name: column.name,
        type: column.type === 'categorical' ? 'string' : 'float32',
        columns: [column],
        rank: 2,
      };
    }
    const type = meta.type as string;
    if (column.type === 'categorical' ? type !== 'string' : !NUMERIC_TYPES.includes(type))
      throw new SignatureError(
        `${source}: ${field} ("${column.name}") is ${column.type}, but ONNX input "${column.name}" is ${type}${column.type === 'categorical' ? ' (a categorical column feeds a string input)' : ' (a numeric column feeds a float, double or integer input)'}`,
        field,
      );
    if (meta.shape.length > 2 || (meta.shape.length === 2 && typeof meta.shape[1] === 'number' && meta.shape[1] > 1))
      throw new SignatureError(
        `${source}: ${field} ("${column.name}"): ONNX input "${column.name}" has shape ${shapeText(meta.shape)}; a column feeds [N, 1]`,
        field,
      );
    return { name: column.name, type: type as InputType, columns: [column], rank: meta.shape.length === 1 ? 1 : 2 };
  });
  if (extra.length)
    throw new SignatureError(
      `${source}: inputs.columns: the model also takes ${extra.map((n) => `"${n}"`).join(', ')}, which no column of the signature feeds`,
      'inputs.columns',
    );
  return plans;
}

function planOutput(session: InferenceSession, signature: Signature, source: string): OutputPlan {
  const names = session.outputNames;
  if (signature.output) {
    const { name, kind } = signature.output;
    if (!names.includes(name))
      throw new SignatureError(
        `${source}: output.name "${name}": the model has no such output (its outputs: ${describeOutputs(session)})`,
        'output.name',
      );
    const meta = metadataOf(session.outputMetadata, name);
    if (meta && !meta.isTensor)
      throw new SignatureError(
        `${source}: output.name "${name}" is not a tensor (a classifier converted with zipmap answers maps; convert it with zipmap disabled)`,
        'output.name',
      );
    const classes = signature.classes?.length;
    const width = meta?.isTensor ? meta.shape[1] : undefined;
    if ((kind === 'probabilities' || kind === 'logits') && typeof width === 'number' && width >= 0 && width !== classes)
      throw new SignatureError(
        `${source}: classes lists ${classes} classes, but output "${name}" has ${width} columns (shape ${shapeText((meta as InferenceSession.TensorValueMetadata).shape)})`,
        'classes',
      );
    return { name, kind };
  }
  const tensors = tensorOutputs(session);
  if (!tensors.length)
    throw new SignatureError(
      `${source}: the model has no tensor output (outputs: ${describeOutputs(session)})`,
      'output',
    );
  if (signature.task === 'regression') return { name: tensors[0]!, kind: 'value' };
  const classes = signature.classes!.length;
  const shapeOf = (name: string) =>
    (metadataOf(session.outputMetadata, name) as InferenceSession.TensorValueMetadata)?.shape;
  const exact = tensors.find((name) => shapeOf(name)?.length === 2 && shapeOf(name)![1] === classes);
  if (exact) return { name: exact, kind: 'probabilities' };
  // Declared shapes that could still be [N, classes] leave the choice to the first run.
  const open = tensors.some((name) => {
    const shape = shapeOf(name);
    return !shape || shape.length === 0 || (shape.length === 2 && typeof shape[1] !== 'number');
  });
  if (open) return { kind: 'probabilities' };
  throw new SignatureError(
    `${source}: no output has shape [N, ${classes}] for the ${classes} classes (outputs: ${describeOutputs(session)}); name the output in output.name`,
    'output',
  );
}
