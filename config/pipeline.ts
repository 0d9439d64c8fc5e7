/**
 * The pipeline config: what a user declares (YAML or JSON), validated at the edge with messages that name the field.
 * Defaults are documented here, where they are defined.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FEATURE_DRIFT_DEFAULTS } from '../ml/quality/monitoring';
import { inlineSecretProblem } from './redact';
export { durationMs } from './duration';

/** Pipeline, model, dataset and alias names: they become object keys, workflow ids and SQL values. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const NAME_RULE = 'must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit';

/** Why `value` is not a valid name, or undefined when it is. */
export function nameProblem(value: unknown): string | undefined {
  if (typeof value === 'string' && NAME_PATTERN.test(value)) return undefined;
  return `${NAME_RULE} (got ${JSON.stringify(typeof value === 'string' && value.length > 60 ? `${value.slice(0, 60)}…` : value)})`;
}

/** Throws a `ConfigError` naming the field (e.g. "dataset") when `value` is not a valid name. */
export function checkName(field: string, value: unknown): void {
  const problem = nameProblem(value);
  if (problem) throw new ConfigError(`${field}: ${problem}`);
}

const name = z.string().superRefine((value, ctx) => {
  const problem = nameProblem(value);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});
const duration = z.string().regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/, 'must be a duration such as "30s", "5m", "1h" or "1d"');

const columnContract = z
  .object({
    /** Declared type; `integer` also accepts whole-valued numbers. */
    type: z.enum(['number', 'integer', 'boolean', 'string']),
    /** @default false */
    nullable: z.boolean().default(false),
    min: z.number().optional(),
    max: z.number().optional(),
    /** Allowed values of a categorical column. */
    allowed: z.array(z.string()).optional(),
    /** No value may repeat (memory grows with the distinct values of this column). @default false */
    unique: z.boolean().optional(),
    /** Share of non-null rows that must pass the value checks (type, min, max, allowed). @default 1 */
    mostly: z.number().gt(0).max(1).optional(),
    /** `warning` records a failing check without stopping the pipeline. @default 'error' */
    severity: z.enum(['error', 'warning']).optional(),
  })
  .strict();

const value = z.union([z.number(), z.string(), z.array(z.number().int().positive())]);
const domain = z.union([
  z.object({ values: z.array(value).min(1) }).strict(),
  z
    .object({
      min: z.number(),
      max: z.number(),
      /** `log` samples evenly in log space (learning rates). @default 'linear' */
      scale: z.enum(['linear', 'log']).optional(),
      integer: z.boolean().optional(),
    })
    .strict()
    .refine((d) => d.max > d.min, 'max must be above min')
    .refine((d) => d.scale !== 'log' || d.min > 0, 'a log scale needs min > 0'),
]);

/** What a sweep may vary, and what each value must be. */
export const SWEEPABLE: Record<string, z.ZodTypeAny> = {
  learningRate: z.number().positive().max(10),
  batchSize: z.number().int().positive(),
  epochs: z.number().int().positive().max(10_000),
  optimizer: z.enum(['adam', 'sgd', 'rmsprop']),
  activation: z.enum(['relu', 'tanh', 'sigmoid', 'elu']),
  hiddenUnits: z.array(z.number().int().positive()),
  type: z.enum(['linear', 'mlp']),
};

/** A Python step's parameter name (a Python identifier): what a sweep over a Python step may vary. */
const PYTHON_PARAM = /^[A-Za-z_][A-Za-z0-9_]*$/;

const sweep = z
  .object({
    /** `grid` tries every combination of `values`; `random` and `tpe` draw `trials` points. @default 'tpe' */
    method: z.enum(['grid', 'random', 'tpe']).default('tpe'),
    /** @default 8 (grid: the number of combinations) */
    trials: z.number().int().positive().max(1000).default(8),
    /** Trials training at once. @default 2 */
    maxParallel: z.number().int().positive().default(2),
    /** More failed trials than this fails the sweep. @default 2 */
    maxFailed: z.number().int().nonnegative().default(2),
    /**
     * Median stopping rule: after `graceEpochs`, a trial worse than the median of the others at the same epoch stops.
     */
    earlyStopping: z
      .object({
        rule: z.literal('median').default('median'),
        graceEpochs: z.number().int().nonnegative().default(2),
        minTrials: z.number().int().positive().default(2),
      })
      .strict()
      .optional(),
    parameters: z
      .record(z.string(), domain)
      .refine((p) => Object.keys(p).length > 0, 'name at least one parameter to vary'),
  })
  .strict()
  .superRefine((s, ctx) => {
    for (const [name, d] of Object.entries(s.parameters)) {
      // A name SWEEPABLE lacks is checked against the runner by the training schema (a Python step's params).
      const rule = SWEEPABLE[name] ?? z.unknown();
      if (!SWEEPABLE[name] && !PYTHON_PARAM.test(name)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['parameters', name],
          message: `cannot be swept; use one of ${Object.keys(SWEEPABLE).join(', ')}`,
        });
        continue;
      }
      const samples = 'values' in d ? d.values : [d.min, d.max];
      samples.forEach((v, i) => {
        const check = rule.safeParse(v);
        if (!check.success)
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['parameters', name, 'values' in d ? `values.${i}` : i ? 'max' : 'min'],
            message: check.error.issues[0]!.message,
          });
      });
      if (s.method === 'grid' && !('values' in d))
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['parameters', name],
          message: 'grid search needs "values", not a range',
        });
    }
  });

/**
 * How a new version takes an alias over: `direct` moves it at once; `canary` sends a growing share of traffic to it,
 * checking health between steps, and rolls back by itself; `ab` sends a fixed, sticky share of keys to it for
 * `duration`
 * and compares the two on the labels that arrive; `shadow` mirrors traffic to it for `duration`. An A/B or shadow test
 * leaves the alias alone. The first version of a model is always deployed directly.
 */
const releaseStrategy = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('direct') }).strict(),
  z
    .object({
      kind: z.literal('canary'),
      /** Percent of traffic per step; the last must be 100. @default [5, 25, 50, 100] */
      steps: z
        .array(z.number().gt(0).max(100))
        .min(1)
        .default([5, 25, 50, 100])
        .refine(
          (s) => s[s.length - 1] === 100 && s.every((v, i) => i === 0 || v > s[i - 1]!),
          'must increase and end at 100',
        ),
      /** Time at each step before its health check. @default '5m' */
      stepDuration: duration.default('5m'),
      health: z
        .object({
          /** Share of the candidate's requests refused or failed. @default 0.05 */
          maxErrorRate: z.number().gt(0).max(1).default(0.05),
          maxLatencyP99Ms: z.number().positive().optional(),
          /** PSI of the candidate's predictions against the champion's in the same step. @default 0.25 */
          maxPredictionPsi: z.number().positive().default(0.25),
          /** Fewer candidate requests than this at a step: the step is extended once, then judged. @default 20 */
          minRequests: z.number().int().positive().default(20),
        })
        .strict()
        .default({}),
    })
    .strict(),
  z
    .object({
      kind: z.literal('ab'),
      /** Share of keys sent to the candidate (the same key always to the same side). @default 0.5 */
      split: z.number().gt(0).lt(1).default(0.5),
      /** @default '1h' */
      duration: duration.default('1h'),
    })
    .strict(),
  z
    .object({
      kind: z.literal('shadow'),
      /** @default '1h' */
      duration: duration.default('1h'),
    })
    .strict(),
]);

/** The monitor a deployment gets: what it compares, how often, and what it does on drift. */
const monitor = z
  .object({
    /** @default true */
    enabled: z.boolean().default(true),
    /** How often a window of predictions is compared with the reference. @default '1h' */
    interval: duration.default('1h'),
    /** Fewer predictions than this in a window: no verdict (no false alarm on quiet traffic). @default 50 */
    minWindowRows: z.number().int().positive().default(50),
    /** PSI of the prediction distribution vs the holdout predictions. @default 0.2 */
    predictionPsiThreshold: z.number().positive().default(0.2),
    /** Relative change of the mean prediction vs the holdout mean. @default 0.05 (5 %) */
    meanShiftThreshold: z.number().positive().default(0.05),
    /** Start the pipeline again when drift is found. @default true */
    retrainOnDrift: z.boolean().default(true),
    /** Minimum time between two retrainings started by this monitor. @default '6h' */
    retrainCooldown: duration.default('6h'),
    /** Slack-compatible webhook for alerts. */
    webhookUrl: z.string().url().optional(),
    /**
     * Each feature of the served requests against the training data's profile, with Evidently's tests: a training
     * set of ≤ 1,000 rows gets KS / chi² (p < `pValue`), a larger one the normed Wasserstein / Jensen–Shannon
     * distance (≥ the thresholds). At least `datasetDriftShare` of the features drifting is dataset drift, which
     * starts a retraining like prediction drift does.
     */
    featureDrift: z
      .object({
        /** @default true */
        enabled: z.boolean().default(true),
        /** @default 0.1, the registry's (ml/quality/drift.ts DRIFT_TESTS), like the three below */
        wassersteinThreshold: z.number().positive().default(FEATURE_DRIFT_DEFAULTS.wassersteinThreshold),
        /** @default 0.1 */
        jensenShannonThreshold: z.number().positive().max(1).default(FEATURE_DRIFT_DEFAULTS.jensenShannonThreshold),
        /** @default 0.05 */
        pValue: z.number().gt(0).lt(1).default(FEATURE_DRIFT_DEFAULTS.pValue),
        /** @default 0.5 */
        datasetDriftShare: z.number().gt(0).max(1).default(FEATURE_DRIFT_DEFAULTS.datasetDriftShare),
      })
      .strict()
      .default({}),
    /**
     * Service health: alert when more than `maxErrorRate` of requests fail or are refused, or p99 latency passes a
     * limit.
     */
    service: z
      .object({
        maxErrorRate: z.number().gt(0).max(1).default(0.05),
        maxLatencyP99Ms: z.number().positive().optional(),
      })
      .strict()
      .default({}),
    /**
     * Model quality from ground truth sent to the serving `/feedback` endpoint: with at least `minLabels` labels in a
     * window, an rmse more than `rmseIncrease` above the evaluation's (relative), or an accuracy more than
     * `accuracyDrop` below it (absolute), raises an alert that starts a retraining.
     */
    modelQuality: z
      .object({
        minLabels: z.number().int().positive().default(30),
        rmseIncrease: z.number().positive().default(0.2),
        accuracyDrop: z.number().positive().max(1).default(0.05),
      })
      .strict()
      .default({}),
  })
  .strict();

export const pipelineConfigSchema = z
  .object({
    /** Pipeline name; identifies stored configs, schedules and monitors. */
    name,
    /** Registered model name the pipeline produces. */
    model: name,
    data: z
      .object({
        /** Dataset name; versions are content hashes under it. */
        dataset: name,
        /**
         * A local path (relative to the config file), an http(s):// URL, an s3://bucket/key URI or a postgres:// URL
         * (a password only as a `${VAR}` reference, resolved on the worker).
         */
        source: z
          .string()
          .min(1)
          .superRefine((source, ctx) => {
            const problem = inlineSecretProblem(source);
            if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
          }),
        /** Detected from the source when omitted: postgres:// → sql, *.parquet, *.jsonl / *.ndjson, else csv. */
        format: z.enum(['csv', 'jsonl', 'parquet', 'sql']).optional(),
        /** CSV field separator. @default ',' */
        delimiter: z.string().length(1).optional(),
        /** CSV quote character. @default '"' */
        quote: z.string().length(1).optional(),
        /** Whether the first CSV line holds the column names. @default true */
        header: z.boolean().optional(),
        /** Column names for a CSV file without a header. */
        columns: z.array(z.string().min(1)).optional(),
        /** The SELECT to run against a postgres:// source: one statement, run in a read-only transaction. */
        query: z.string().min(1).optional(),
        /** A longer field fails the ingest at once, naming file, line and column. @default 4194304 (4 MiB) */
        maxFieldBytes: z
          .number()
          .int()
          .positive()
          .max(1 << 30)
          .optional(),
        /** A longer record (or JSON line) fails the ingest at once, naming file and line. @default 8388608 (8 MiB) */
        maxLineBytes: z
          .number()
          .int()
          .positive()
          .max(1 << 30)
          .optional(),
        /**
         * The folder of the config file, set by `loadPipelineConfig` and dropped from any other input (see
         * `ParseOptions.keepConfigDir`): a local source may be read from under it, besides the worker's data roots
         * (FLYWHEEL_DATA_ROOTS, ./data).
         */
        configDir: z.string().min(1).optional(),
        /**
         * The source holds entity rows (entity keys, a timestamp, usually the label): the dataset version is these rows
         * with the feature views' values joined point in time (nothing stamped after a row's timestamp, TTL respected).
         */
        features: z
          .object({
            /** Feature views by name (latest version) or `name@version`. */
            views: z.array(z.string().min(1)).min(1),
            /** The entity rows' timestamp column. */
            timestamp: z.string().min(1),
          })
          .strict()
          .optional(),
      })
      .strict()
      .superRefine((data, ctx) => {
        const sql = /^postgres(ql)?:\/\//.test(data.source) || data.format === 'sql';
        if (sql && !data.query)
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['query'], message: 'a postgres:// source needs a query' });
        if (!sql && data.query)
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['query'],
            message: 'only a postgres:// source takes a query',
          });
        if (data.header === false && !data.columns?.length)
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['columns'],
            message: 'a CSV without a header needs column names',
          });
      }),
    schema: z
      .object({
        columns: z
          .record(z.string(), columnContract)
          .refine((c) => Object.keys(c).length > 0, 'must declare at least one column'),
        /** Columns not declared are an error unless allowed. @default false */
        allowExtraColumns: z.boolean().default(false),
        /** @default 1 */
        minRows: z.number().int().nonnegative().default(1),
        maxRows: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
    /** Checks beyond the schema: the distribution of each new version against a reference version. */
    validation: z
      .object({
        /** The version the distribution check compares with: an alias or a version id. @default 'latest' */
        reference: z.string().min(1).default('latest'),
        drift: z
          .object({
            /** @default true */
            enabled: z.boolean().default(true),
            /** Columns to compare. @default the training features */
            columns: z.array(z.string()).optional(),
            /** PSI (10 bins) at or above this is drift. @default 0.25 */
            psiThreshold: z.number().positive().default(0.25),
            /** @default 'error' */
            severity: z.enum(['error', 'warning']).default('error'),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    training: z
      .object({
        task: z.enum(['regression', 'classification']),
        target: z.string().min(1),
        features: z
          .object({
            numeric: z.array(z.string()).default([]),
            categorical: z.array(z.string()).default([]),
          })
          .strict()
          .refine(
            (f) => f.numeric.length + f.categorical.length > 0,
            'must list at least one numeric or categorical feature',
          ),
        model: z
          .object({
            /** `linear` is linear/logistic regression; `mlp` adds hidden layers. @default 'mlp' */
            type: z.enum(['linear', 'mlp']).default('mlp'),
            /** @default [64, 32] */
            hiddenUnits: z.array(z.number().int().positive()).default([64, 32]),
            /** @default 'relu' */
            activation: z.enum(['relu', 'tanh', 'sigmoid', 'elu']).default('relu'),
          })
          .strict()
          .default({}),
        /** @default 20 */
        epochs: z.number().int().positive().max(10_000).default(20),
        /** @default 256 */
        batchSize: z.number().int().positive().default(256),
        /** @default 0.005 */
        learningRate: z.number().positive().max(10).default(0.005),
        /** @default 'adam' */
        optimizer: z.enum(['adam', 'sgd', 'rmsprop']).default('adam'),
        /** @default 42 */
        seed: z.number().int().nonnegative().default(42),
        /** Fraction of rows held out for evaluation. @default 0.2 */
        holdoutFraction: z.number().gt(0).lt(1).default(0.2),
        /** Stop when the validation loss has not improved for `patience` epochs (`epochs` is then the upper bound). */
        earlyStopping: z
          .object({ patience: z.number().int().positive(), restoreBest: z.boolean().default(true) })
          .strict()
          .optional(),
        /** Run-grouping name (as in MLflow experiments). @default the pipeline name */
        experiment: z.string().min(1).optional(),
        /** Free-form run tags, searchable with `flywheel runs list --filter "tags.team = 'ml'"`. */
        tags: z.record(z.string(), z.string()).default({}),
        /** A hyper-parameter sweep; the best trial (lowest validation loss) is evaluated, registered and deployed. */
        sweep: sweep.optional(),
        /** `gpu: n > 0` routes training to the GPU queue; it falls back to CPU after `gpuWait`. */
        resources: z
          .object({ gpu: z.number().int().nonnegative().default(0), gpuWait: duration.default('5m') })
          .strict()
          .default({}),
        /**
         * Who trains: `tfjs` (Flywheel's own TF.js models, the fields above), `python` (the user's function at
         * `entrypoint`, run by a Python worker on the Python training queues; it saves an ONNX model), or `import`
         * (an ONNX file trained elsewhere, at `source`, with its `signature`). @default 'tfjs'
         */
        runner: z.enum(['tfjs', 'python', 'import']).default('tfjs'),
        /** Python: `module:function` (importable from the worker's code roots) or `path/to/script.py:function`. */
        entrypoint: z
          .string()
          .regex(/^[^:\s]+:[A-Za-z_][A-Za-z0-9_]*$/, 'must be "module:function" or "path/to/script.py:function"')
          .optional(),
        /** Python: the user's parameters, as `ctx.params`; a sweep varies names of this map. */
        params: z.record(z.string(), z.unknown()).default({}),
        /** Import: the ONNX file (a local path, uploaded by the CLI; or s3:// / http(s)://). */
        source: z.string().min(1).optional(),
        /** Import: the model's input/output signature (flywheel-onnx-v1; inference/signature.ts). */
        signature: z.record(z.string(), z.unknown()).optional(),
      })
      .strict()
      .superRefine((t, ctx) => {
        const issue = (path: string, message: string) =>
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
        if (t.runner === 'python' && !t.entrypoint) issue('entrypoint', 'a Python step needs an entrypoint');
        if (t.runner !== 'python' && t.entrypoint) issue('entrypoint', 'only a Python step (runner: python) has one');
        if (t.runner === 'import' && !t.source) issue('source', 'an imported model needs its ONNX file');
        if (t.runner === 'import' && !t.signature) issue('signature', 'an imported model needs its signature');
        if (t.runner === 'import' && t.sweep) issue('sweep', 'an imported model is not trained: nothing to sweep');
        if (t.runner !== 'python')
          for (const name of Object.keys(t.sweep?.parameters ?? {}))
            if (!SWEEPABLE[name] && PYTHON_PARAM.test(name))
              ctx.addIssue({
                code: z.ZodIssueCode.custom,
                path: ['sweep', 'parameters', name],
                message: `cannot be swept; use one of ${Object.keys(SWEEPABLE).join(', ')}`,
              });
      }),
    evaluation: z
      .object({
        /**
         * MLflow-style thresholds; every gate must hold for the candidate to be promoted. A failed gate stops the
         * release
         * with the numbers that failed; the candidate stays registered (tag gate=failed) but is not promoted.
         */
        gates: z
          .array(
            z
              .object({
                metric: z.string().min(1),
                /** At least (greater is better) or at most (lower is better) this value. */
                threshold: z.number().optional(),
                min: z.number().optional(),
                max: z.number().optional(),
                /** Must beat the current champion (scored on the same holdout) by at least this much. */
                minAbsoluteChange: z.number().nonnegative().optional(),
                /** … or by at least this fraction of the champion's value. */
                minRelativeChange: z.number().nonnegative().optional(),
                /** @default inferred: errors, losses and calibration error are lower-is-better */
                greaterIsBetter: z.boolean().optional(),
              })
              .strict()
              .refine(
                (g) =>
                  [g.threshold, g.min, g.max, g.minAbsoluteChange, g.minRelativeChange].some((v) => v !== undefined),
                'a gate needs "threshold", "min", "max", "minAbsoluteChange" or "minRelativeChange"',
              ),
          )
          .default([]),
        /** Categorical columns whose values each get their own metrics in the report. */
        slices: z.array(z.string().min(1)).default([]),
        /** Group fairness over a sensitive column (fairlearn's definitions), for a binary outcome. */
        fairness: z
          .object({
            sensitive: z.string().min(1),
            /** Classification: the favourable class. @default the second class in sorted order */
            positiveClass: z.string().optional(),
            /** Regression: a prediction (and a label) above this is the favourable outcome. */
            positiveAbove: z.number().optional(),
            maxDemographicParityDifference: z.number().min(0).max(1).optional(),
            maxEqualizedOddsDifference: z.number().min(0).max(1).optional(),
            minDisparateImpactRatio: z.number().min(0).max(1).optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    deploy: z
      .object({
        /** @default true */
        enabled: z.boolean().default(true),
        /** The alias the serving process answers with. @default 'champion' */
        alias: name.default('champion'),
        /** How a new version takes the alias over (see `releaseStrategy`). @default { kind: 'direct' } */
        strategy: releaseStrategy.default({ kind: 'direct' }),
        /** A person must run `flywheel approve <model@version>` before the release goes on. */
        approval: z
          .object({
            required: z.boolean().default(true),
            /** @default '24h' */
            timeout: duration.default('24h'),
            /** What a timeout means. @default 'reject' */
            onTimeout: z.enum(['reject', 'approve']).default('reject'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    monitor: monitor.default({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    const fairness = config.evaluation.fairness;
    if (fairness && config.training.task === 'regression' && fairness.positiveAbove === undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['evaluation', 'fairness', 'positiveAbove'],
        message: 'a regression model needs the value above which an outcome is favourable',
      });
    }
    if (!config.schema) return; // inferred from the first version; columns are checked against the data then
    const declared = new Set(Object.keys(config.schema.columns));
    const check = (column: string, path: (string | number)[]) => {
      if (!declared.has(column))
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path,
          message: `column "${column}" is not declared in schema.columns`,
        });
    };
    check(config.training.target, ['training', 'target']);
    config.training.features.numeric.forEach((c, i) => check(c, ['training', 'features', 'numeric', i]));
    config.training.features.categorical.forEach((c, i) => check(c, ['training', 'features', 'categorical', i]));
    config.validation.drift.columns?.forEach((c, i) => check(c, ['validation', 'drift', 'columns', i]));
    config.evaluation.slices.forEach((c, i) => check(c, ['evaluation', 'slices', i]));
    if (config.evaluation.fairness)
      check(config.evaluation.fairness.sensitive, ['evaluation', 'fairness', 'sensitive']);
  });

export type PipelineConfig = z.infer<typeof pipelineConfigSchema>;
/** `deploy.strategy`, resolved. */
export type ReleaseStrategy = z.infer<typeof releaseStrategy>;
/** A strategy the rollout workflow runs: every one but `direct`. */
export type RolloutStrategy = Exclude<ReleaseStrategy, { kind: 'direct' }>;

/**
 * A rollout strategy given outside a config (the API's rollout body), with the config's defaults filled in: one
 * schema, one set of defaults. The problems, each with its field, when it does not hold.
 */
export function parseRolloutStrategy(
  raw: unknown,
): { strategy: RolloutStrategy; problems?: undefined } | { strategy?: undefined; problems: string[] } {
  const parsed = releaseStrategy.safeParse(raw);
  if (!parsed.success) return { problems: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) };
  if (parsed.data.kind === 'direct') return { problems: ['kind: a rollout is canary, ab or shadow'] };
  return { strategy: parsed.data };
}
/** The `monitor` section, resolved. */
export type MonitorConfig = z.infer<typeof monitor>;
/** Every monitor field's default: for settings recorded before a field existed. */
export const MONITOR_DEFAULTS: Readonly<MonitorConfig> = Object.freeze(monitor.parse({}));
export type SweepConfig = z.infer<typeof sweep>;
export type ColumnContract = z.infer<typeof columnContract>;

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface ParseOptions {
  /**
   * Keep `data.configDir` as given: only for a config Flywheel stored itself (a monitor's retraining). Anything else
   * (an API body, a test) has it dropped. @default false
   */
  keepConfigDir?: boolean;
}

/** Validates a parsed config object; every problem is listed with its field path. */
export function parsePipelineConfig(
  raw: unknown,
  file = 'pipeline config',
  options: ParseOptions = {},
): PipelineConfig {
  const parsed = pipelineConfigSchema.safeParse(raw);
  if (parsed.success) {
    // Only the loader knows the config's folder: a `configDir` from anyone else would widen where sources may be read.
    if (!options.keepConfigDir) delete parsed.data.data.configDir;
    return parsed.data;
  }
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      const where = path ? `${path}.` : '';
      return issue.keys.map((key) => `${where}${key}: unknown field`).join('\n  ');
    }
    return `${path || '(root)'}: ${issue.message}`;
  });
  throw new ConfigError(`${file} is invalid:\n  ${problems.join('\n  ')}`, file);
}

/** Reads a YAML/JSON config file; a local data source (and an imported model file) resolve relative to the file. */
export function loadPipelineConfig(file: string): PipelineConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read pipeline config ${file}: ${(error as Error).message}`, file);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid YAML: ${(error as Error).message}`, file);
  }
  const config = parsePipelineConfig(raw, file);
  const folder = dirname(resolve(file));
  const source = config.data.source;
  if (!/^(https?|s3|postgres|postgresql|file):\/\//.test(source) && !isAbsolute(source)) {
    config.data.source = resolve(folder, source);
  }
  const model = config.training.source;
  if (model && !/^(https?|s3|file):\/\//.test(model) && !isAbsolute(model))
    config.training.source = resolve(folder, model);
  config.data.configDir = folder;
  return config;
}
