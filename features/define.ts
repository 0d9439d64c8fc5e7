/**
 * Feature views, declared in TypeScript (as Feast's in Python): entity keys, an event timestamp, typed features, a TTL
 * and a source (a dataset version or a SQL query on the Flywheel database), plus optional on-demand transforms —
 * SQL expressions over the view's features, computed the same way at retrieval (offline) and at lookup (online).
 *
 *   export const sales = defineFeatureView({
 *     name: 'store_item_sales', entities: ['store_id', 'item_id'], timestamp: 'event_ts', ttl: '30d',
 *     source: { query: 'SELECT store_id, item_id, day AS event_ts, avg_units_7d, price FROM daily_sales' },
 *     features: { avg_units_7d: 'number', price: 'number' },
 *     transforms: { units_per_price: { expression: 'avg_units_7d / nullif(price, 0)', type: 'number' } },
 *   });
 *
 * `flywheel features apply <file.ts>` registers every exported view; a changed definition is a new version.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { durationMs } from '../config/duration';
import { checkSqlExpression, singleStatement } from './userSql';

/** A zod refinement from a checker that throws: its message becomes the issue's. */
const sqlCheck = (check: (text: string) => unknown) => (text: string, ctx: z.RefinementCtx) => {
  try {
    check(text);
  } catch (error) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (error as Error).message });
  }
};

export const FEATURE_TYPES = ['number', 'integer', 'string', 'boolean'] as const;
export type FeatureType = (typeof FEATURE_TYPES)[number];

const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/i, 'must be a column name: letters, digits and "_", not starting with a digit');

export const featureViewSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,40}$/, 'must be 1-41 lowercase letters, digits or "_", starting with a letter'),
    description: z.string().optional(),
    /** Entity key columns (a store, a user, a store × item …). */
    entities: z.array(identifier).min(1),
    /** When each value became true; retrieval never takes a value stamped after the entity row's timestamp. */
    timestamp: identifier,
    /** Breaks ties between rows with the same event timestamp: the latest created wins. */
    createdTimestamp: identifier.optional(),
    /** How long a value stays valid after its event timestamp; older values are not joined or served. */
    ttl: z.string().refine((t) => {
      try {
        return durationMs(t) > 0;
      } catch {
        return false;
      }
    }, 'must be a positive duration such as "12h", "30d" (a TTL of zero would never serve a value)'),
    source: z.union([
      z.object({ dataset: z.string().min(1) }).strict(),
      /** One SELECT on the Flywheel database; it runs read-only, as a role that cannot read Flywheel's own tables. */
      z.object({ query: z.string().min(1).superRefine(sqlCheck(singleStatement)) }).strict(),
    ]),
    features: z
      .record(identifier, z.enum(FEATURE_TYPES))
      .refine((f) => Object.keys(f).length > 0, 'declare at least one feature'),
    /** On-demand features: a SQL expression over this view's features. */
    transforms: z
      .record(
        identifier,
        z
          .object({
            expression: z.string().min(1).superRefine(sqlCheck(checkSqlExpression)),
            type: z.enum(['number', 'string']),
          })
          .strict(),
      )
      .default({}),
    /**
     * An entity with no (fresh) value at online lookup: `error` refuses the request naming it; `null` passes nulls.
     * @default 'error'
     */
    onMissing: z.enum(['error', 'null']).default('error'),
  })
  .strict()
  .superRefine((view, ctx) => {
    const taken = new Map<string, string>();
    const claim = (name: string, what: string, path: (string | number)[]) => {
      const lower = name.toLowerCase();
      if (taken.has(lower))
        ctx.addIssue({ code: z.ZodIssueCode.custom, path, message: `"${name}" is already the ${taken.get(lower)}` });
      else taken.set(lower, what);
    };
    view.entities.forEach((e, i) => claim(e, 'entity key', ['entities', i]));
    claim(view.timestamp, 'event timestamp', ['timestamp']);
    if (view.createdTimestamp) claim(view.createdTimestamp, 'created timestamp', ['createdTimestamp']);
    Object.keys(view.features).forEach((f) => claim(f, 'name of a feature', ['features', f]));
    Object.keys(view.transforms).forEach((t) => claim(t, 'name of a feature', ['transforms', t]));
    for (const reserved of ['event_ts', 'created_ts']) {
      if (taken.has(reserved) && view.timestamp !== reserved && view.createdTimestamp !== reserved) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['features'],
          message: `"${reserved}" is reserved for the view's timestamps`,
        });
      }
    }
  });

export type FeatureViewInput = z.input<typeof featureViewSchema>;
export type FeatureView = z.infer<typeof featureViewSchema>;

export class FeatureViewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FeatureViewError';
  }
}

const BRAND = Symbol.for('flywheel.featureView');

/** Validates a declaration (messages name the view and field) and marks it for `flywheel features apply`. */
export function defineFeatureView(input: FeatureViewInput): FeatureView {
  const parsed = featureViewSchema.safeParse(input);
  if (!parsed.success) {
    const name = typeof input?.name === 'string' ? input.name : '(unnamed)';
    throw new FeatureViewError(
      `feature view ${name} is invalid:\n  ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('\n  ')}`,
    );
  }
  Object.defineProperty(parsed.data, BRAND, { value: true, enumerable: false });
  return parsed.data;
}

export function isFeatureView(value: unknown): value is FeatureView {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** The definition's identity: a changed definition (features, source, TTL, transforms …) is a new version. */
export function definitionHash(view: FeatureView): string {
  const canonical = JSON.stringify(view, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : value,
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** Every output column of a view: stored features, then on-demand transforms. */
export function outputFeatures(view: FeatureView): string[] {
  return [...Object.keys(view.features), ...Object.keys(view.transforms)];
}

/** The online store's key of an entity: the key values as text, in the view's order, joined by U+001F. */
export function entityKey(values: unknown[]): string {
  return values.map((v) => String(v)).join('\u001f');
}
