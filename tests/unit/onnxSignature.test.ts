/** The flywheel-onnx-v1 signature (BYOM §1): what parses, what is refused and how the error names the field. */
import { describe, expect, it } from 'vitest';
import { parseSignature, SignatureError } from '../../inference/signature';
import {
  concatEncoded,
  describeNonFinite,
  firstNonFinite,
  isOnnxKey,
  siblingKey,
  type ModelRunner,
} from '../../inference/runner';

const tensor = {
  format: 'flywheel-onnx-v1',
  task: 'classification',
  target: 'churned',
  classes: ['no', 'yes'],
  inputs: { layout: 'tensor', name: 'input', columns: ['tenure', 'monthly_charges'] },
};

const columns = {
  format: 'flywheel-onnx-v1',
  task: 'regression',
  target: 'spend',
  inputs: {
    layout: 'columns',
    columns: [
      { name: 'tenure', type: 'numeric' },
      { name: 'plan', type: 'categorical' },
    ],
  },
  output: { name: 'variable', kind: 'value' },
};

/** The error `parseSignature` throws for a signature, as [field, message]. */
function refusal(value: unknown): [string, string] {
  try {
    parseSignature(value);
  } catch (error) {
    expect(error).toBeInstanceOf(SignatureError);
    return [(error as SignatureError).field, (error as Error).message];
  }
  throw new Error('the signature parsed');
}

describe('parseSignature', () => {
  it('reads the tensor layout: plain column names are numeric, dtype defaults to float32, no output named', () => {
    const signature = parseSignature(tensor);
    expect(signature.inputs).toEqual({
      layout: 'tensor',
      name: 'input',
      dtype: 'float32',
      columns: [
        { name: 'tenure', type: 'numeric' },
        { name: 'monthly_charges', type: 'numeric' },
      ],
    });
    expect(signature.output).toBeUndefined();
    expect(signature.classes).toEqual(['no', 'yes']);
  });

  it('reads the columns layout with a named output, and ignores fields the contract does not know at the top', () => {
    const signature = parseSignature({ ...columns, framework: 'sklearn 1.9.1' });
    expect(signature.inputs.columns.map((c) => `${c.name}:${c.type}`)).toEqual(['tenure:numeric', 'plan:categorical']);
    expect(signature.output).toEqual({ name: 'variable', kind: 'value' });
  });

  it('gives a named output its default kind, and reads numeric class labels as text', () => {
    const signature = parseSignature({ ...tensor, classes: [0, 1], output: { name: 'probabilities' } });
    expect(signature.output).toEqual({ name: 'probabilities', kind: 'probabilities' });
    expect(signature.classes).toEqual(['0', '1']);
  });

  it.each([
    ['format', { ...tensor, format: 'flywheel-tfjs-v1' }, /format: must be "flywheel-onnx-v1"/],
    ['task', { ...tensor, task: 'ranking' }, /task: .*'regression' \| 'classification'/],
    ['classes', { ...tensor, classes: undefined }, /classes: a classification model needs at least 2 classes/],
    ['classes[2]', { ...tensor, classes: ['no', 'yes', 'no'] }, /classes\[2\]: class "no" is listed twice/],
    ['classes', { ...columns, classes: ['a', 'b'] }, /classes: only a classification model has classes/],
    [
      'inputs.layout',
      { ...tensor, inputs: { layout: 'rows', columns: ['a'] } },
      /layout must be "tensor" or "columns"/,
    ],
    ['inputs.name', { ...tensor, inputs: { layout: 'tensor', columns: ['a'] } }, /inputs\.name: Required/],
    ['inputs.columns', { ...tensor, inputs: { ...tensor.inputs, columns: [] } }, /at least one feature column/],
    [
      'inputs.columns[1]',
      { ...tensor, inputs: { ...tensor.inputs, columns: ['tenure', 'tenure'] } },
      /inputs\.columns\[1\]: column "tenure" is listed twice/,
    ],
    [
      'inputs.columns[0]',
      { ...tensor, inputs: { ...tensor.inputs, columns: ['churned'] } },
      /"churned" is the target, not a feature/,
    ],
    [
      'inputs.columns[1]',
      { ...tensor, inputs: { ...tensor.inputs, columns: ['tenure', { name: 'plan', type: 'categorical' }] } },
      /inputs\.columns\[1\]: "plan" is categorical; the tensor layout takes numeric features only/,
    ],
    [
      'inputs.columns[1].type',
      {
        ...columns,
        inputs: {
          layout: 'columns',
          columns: [
            { name: 'a', type: 'numeric' },
            { name: 'b', type: 'text' },
          ],
        },
      },
      /inputs\.columns\[1\]\.type/,
    ],
    [
      'inputs.dtype',
      { ...tensor, inputs: { ...tensor.inputs, dtype: 'int8' } },
      /inputs\.dtype: .*'float32' \| 'float64'/,
    ],
    ['inputs', { ...tensor, inputs: { ...tensor.inputs, shape: [2] } }, /inputs: unknown field "shape"/],
    ['output.kind', { ...columns, output: { name: 'y', kind: 'probabilities' } }, /a regression model answers a value/],
    ['output.kind', { ...tensor, output: { name: 'y', kind: 'value' } }, /probabilities, logits or label/],
    ['target', { ...tensor, target: '' }, /target: must be a non-empty column name/],
  ])('refuses a bad %s, naming it', (field, value, message) => {
    const [named, text] = refusal(value);
    expect(named).toBe(field);
    expect(text).toMatch(message);
    expect(text.startsWith(`signature.json: ${field}`)).toBe(true);
  });

  it('names the object a signature came from', () => {
    expect(() => parseSignature({ ...tensor, task: 1 }, 'models/m/r1/signature.json')).toThrow(
      /^models\/m\/r1\/signature\.json: task: /,
    );
  });
});

describe('runner helpers', () => {
  it('concatenates requests part by part, whatever their element type', () => {
    const batch = concatEncoded([
      { rows: 1, parts: [Float32Array.of(1, 2), ['a'], BigInt64Array.of(7n)] },
      { rows: 2, parts: [Float32Array.of(3, 4, 5, 6), ['b', 'c'], BigInt64Array.of(8n, 9n)] },
    ]);
    expect(batch.rows).toBe(3);
    expect(batch.parts[0]).toEqual(Float32Array.of(1, 2, 3, 4, 5, 6));
    expect(batch.parts[1]).toEqual(['a', 'b', 'c']);
    expect(batch.parts[2]).toEqual(BigInt64Array.of(7n, 8n, 9n));
  });

  it('finds the first NaN or ±Infinity and names its row, class and output', () => {
    const runner = {
      outputName: 'probabilities',
      width: 2,
      target: { task: 'classification', name: 'churned', classes: ['no', 'yes'] },
    } as Pick<ModelRunner, 'outputName' | 'target' | 'width'>;
    const values = Float64Array.of(0.5, 0.5, 0.1, 0.9, 0.2, NaN, Infinity, 0);
    const at = firstNonFinite(values, 2)!;
    expect(at).toEqual({ row: 2, column: 1 });
    expect(describeNonFinite(runner, values, at)).toBe('output "probabilities" [row 2, class "yes"] is NaN');
    expect(firstNonFinite(Float64Array.of(1, -Infinity), 1)).toEqual({ row: 1, column: 0 });
    expect(firstNonFinite(Float64Array.of(1, 2), 1)).toBeUndefined();
  });

  it('tells ONNX artifact keys from TF.js ones and finds the files beside them', () => {
    expect(isOnnxKey('models/m/r1/model.onnx')).toBe(true);
    expect(isOnnxKey('models/m/r1/model.json')).toBe(false);
    expect(siblingKey('models/m/r1/model.onnx', 'signature.json')).toBe('models/m/r1/signature.json');
    expect(siblingKey('models/m/r1/model.json', 'evaluation/')).toBe('models/m/r1/evaluation/');
  });
});
