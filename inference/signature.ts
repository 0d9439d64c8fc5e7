/** The signature written next to every ONNX model (flywheel-onnx-v1): features, target and output, checked by zod. */
import { z } from 'zod';

export const ONNX_FORMAT = 'flywheel-onnx-v1';

/** A signature that does not parse, or does not fit its model: `field` names the culprit (`inputs.columns[2]`). */
export class SignatureError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'SignatureError';
  }
}

const columnName = z.string().min(1, 'must be a non-empty column name');
const featureType = z.enum(['numeric', 'categorical']);
const typedColumn = z.object({ name: columnName, type: featureType }).strict();

const tensorInputs = z
  .object({
    layout: z.literal('tensor'),
    /** The one ONNX input, of shape [N, columns.length]. */
    name: z.string().min(1, 'must name the ONNX input'),
    /** Feature columns in the order of the tensor's second axis (a plain name is a numeric column). */
    columns: z.array(z.union([columnName, typedColumn])).min(1, 'must list at least one feature column'),
    /** @default 'float32' */
    dtype: z.enum(['float32', 'float64']).default('float32'),
  })
  .strict();

const columnsInputs = z
  .object({
    layout: z.literal('columns'),
    /** One ONNX input per column, named exactly as the column, of shape [N, 1]. */
    columns: z.array(typedColumn).min(1, 'must list at least one feature column'),
  })
  .strict();

const outputKinds = ['probabilities', 'logits', 'value', 'label'] as const;

export const signatureSchema = z
  .object({
    format: z.literal(ONNX_FORMAT, { errorMap: () => ({ message: `must be "${ONNX_FORMAT}"` }) }),
    task: z.enum(['regression', 'classification']),
    /** The dataset column evaluation scores against. */
    target: columnName,
    /** Classification only: labels in the order of the model's output columns (numbers are read as their text). */
    classes: z.array(z.union([z.string(), z.number()]).transform(String)).optional(),
    inputs: z.discriminatedUnion('layout', [tensorInputs, columnsInputs], {
      errorMap: (issue, ctx) =>
        issue.code === 'invalid_union_discriminator'
          ? { message: 'layout must be "tensor" or "columns"' }
          : { message: ctx.defaultError },
    }),
    /**
     * Which ONNX output answers. @default classification: the first output of shape [N, classes.length]
     * (probabilities); regression: the first output
     */
    output: z
      .object({ name: z.string().min(1, 'must name an ONNX output'), kind: z.enum(outputKinds).optional() })
      .strict()
      .optional(),
  })
  .superRefine((signature, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
    if (signature.task === 'classification') {
      const classes = signature.classes ?? [];
      if (classes.length < 2) issue(['classes'], 'a classification model needs at least 2 classes');
      const seen = new Set<string>();
      classes.forEach((label, i) => {
        if (seen.has(label)) issue(['classes', i], `class "${label}" is listed twice`);
        seen.add(label);
      });
      const kind = signature.output?.kind;
      if (kind === 'value') issue(['output', 'kind'], 'a classification model answers probabilities, logits or label');
    } else {
      if (signature.classes !== undefined) issue(['classes'], 'only a classification model has classes');
      const kind = signature.output?.kind;
      if (kind !== undefined && kind !== 'value') issue(['output', 'kind'], 'a regression model answers a value');
    }
    const names = new Set<string>();
    signature.inputs.columns.forEach((column, i) => {
      const name = typeof column === 'string' ? column : column.name;
      if (names.has(name)) issue(['inputs', 'columns', i], `column "${name}" is listed twice`);
      names.add(name);
      if (name === signature.target) issue(['inputs', 'columns', i], `"${name}" is the target, not a feature`);
      if (signature.inputs.layout === 'tensor' && typeof column !== 'string' && column.type === 'categorical')
        issue(
          ['inputs', 'columns', i],
          `"${name}" is categorical; the tensor layout takes numeric features only (use the columns layout)`,
        );
    });
  });

type RawSignature = z.infer<typeof signatureSchema>;

export interface SignatureColumn {
  name: string;
  type: 'numeric' | 'categorical';
}

/** A parsed signature: feature columns always typed, `output.kind` resolved. */
export type Signature = Omit<RawSignature, 'inputs' | 'output' | 'classes'> & {
  classes?: string[];
  inputs:
    | { layout: 'tensor'; name: string; columns: SignatureColumn[]; dtype: 'float32' | 'float64' }
    | { layout: 'columns'; columns: SignatureColumn[] };
  output?: { name: string; kind: (typeof outputKinds)[number] };
};

const fieldOf = (path: (string | number)[]) =>
  path.reduce<string>(
    (out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${part}` : part),
    '',
  );

/** Validates a signature (parsed JSON); throws `SignatureError` naming the first bad field and where it came from. */
export function parseSignature(value: unknown, source = 'signature.json'): Signature {
  const parsed = signatureSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = fieldOf(issue.path) || '(root)';
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : issue.message;
    throw new SignatureError(`${source}: ${field}: ${message}`, field);
  }
  const { inputs, output, ...rest } = parsed.data;
  const columns = inputs.columns.map((c): SignatureColumn =>
    typeof c === 'string' ? { name: c, type: 'numeric' } : c,
  );
  const kind = output?.kind ?? (rest.task === 'regression' ? 'value' : 'probabilities');
  return {
    ...rest,
    inputs: inputs.layout === 'tensor' ? { ...inputs, columns } : { layout: 'columns', columns },
    ...(output ? { output: { name: output.name, kind } } : {}),
  };
}
