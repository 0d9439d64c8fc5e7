/** The experiments store: MLflow's experiments (id 0 is "Default"); runs refer to an experiment by name. */
import { and, asc, desc, eq, ilike, isNotNull, isNull, like, sql, type SQL } from 'drizzle-orm';
import { ApiError, invalid, notFound } from '../config/errors';
import { experiments, runs, type ExperimentRow } from '../schema/runs';
import type { Db } from '../storage/db';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type Executor = Db | Tx;

export interface Experiment {
  id: number;
  name: string;
  artifactLocation: string;
  lifecycleStage: 'active' | 'deleted';
  tags: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

const toExperiment = (row: ExperimentRow): Experiment => ({
  id: row.id,
  name: row.name,
  artifactLocation: row.artifactLocation ?? `mlflow-artifacts:/${row.id}`,
  lifecycleStage: row.deletedAt ? 'deleted' : 'active',
  tags: row.tags,
  createdAt: row.createdAt,
  updatedAt: row.updatedAt,
});

const NAME = /^[^\u0000-\u001f]{1,500}$/;
function checkName(name: string): void {
  if (!name.trim()) throw invalid('name', 'must not be empty');
  if (!NAME.test(name)) throw invalid('name', 'must be 1–500 characters without control characters');
}

/** The experiment called `name`, created when missing (pipelines log into one named after themselves). */
export async function ensureExperiment(db: Executor, name: string): Promise<Experiment> {
  checkName(name);
  const [existing] = await db.select().from(experiments).where(eq(experiments.name, name));
  if (existing) return toExperiment(existing);
  await db.insert(experiments).values({ name }).onConflictDoNothing();
  const [row] = await db.select().from(experiments).where(eq(experiments.name, name));
  if (!row) throw new Error(`experiment "${name}" vanished while it was created`);
  if (!row.artifactLocation)
    await db
      .update(experiments)
      .set({ artifactLocation: `mlflow-artifacts:/${row.id}` })
      .where(eq(experiments.id, row.id));
  return toExperiment(row);
}

export async function createExperiment(
  db: Db,
  input: { name: string; artifactLocation?: string; tags?: Record<string, string> },
): Promise<Experiment> {
  checkName(input.name);
  return db.transaction(async (tx) => {
    const [inserted] = await tx
      .insert(experiments)
      .values({ name: input.name, tags: input.tags ?? {}, artifactLocation: input.artifactLocation })
      .onConflictDoNothing()
      .returning();
    if (!inserted) throw new ApiError('RESOURCE_ALREADY_EXISTS', `experiment "${input.name}" already exists`);
    if (inserted.artifactLocation) return toExperiment(inserted);
    const [row] = await tx
      .update(experiments)
      .set({ artifactLocation: `mlflow-artifacts:/${inserted.id}` })
      .where(eq(experiments.id, inserted.id))
      .returning();
    return toExperiment(row!);
  });
}

export async function getExperiment(db: Executor, id: number): Promise<Experiment> {
  const [row] = Number.isInteger(id) ? await db.select().from(experiments).where(eq(experiments.id, id)) : [];
  if (!row) throw notFound(`experiment ${id}`);
  return toExperiment(row);
}

export async function getExperimentByName(db: Executor, name: string): Promise<Experiment> {
  const [row] = await db.select().from(experiments).where(eq(experiments.name, name));
  if (!row) throw notFound(`experiment "${name}"`);
  return toExperiment(row);
}

/** Ids to names, refusing unknown ids (MLflow answers 404 for a search over an experiment that does not exist). */
export async function experimentNames(db: Executor, ids: number[]): Promise<Map<number, string>> {
  const rows = ids.length
    ? await db
        .select({ id: experiments.id, name: experiments.name })
        .from(experiments)
        .where(sql`${experiments.id} = ANY(${sql.param(ids)}::int[])`)
    : [];
  const names = new Map(rows.map((r) => [r.id, r.name]));
  for (const id of ids) if (!names.has(id)) throw notFound(`experiment ${id}`);
  return names;
}

export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

/** MLflow's experiment search: `name = 'x'`, `name LIKE '%x%'`, `tags.k = 'v'`, joined with AND; offset page tokens. */
export async function searchExperiments(
  db: Db,
  input: { filter?: string; maxResults?: number; pageToken?: string; orderBy?: string[]; viewType?: ViewType },
): Promise<{ experiments: Experiment[]; nextPageToken?: string }> {
  const where: SQL[] = [];
  const view = input.viewType ?? 'ACTIVE_ONLY';
  if (view === 'ACTIVE_ONLY') where.push(isNull(experiments.deletedAt));
  if (view === 'DELETED_ONLY') where.push(isNotNull(experiments.deletedAt));
  for (const clause of (input.filter ?? '')
    .split(/\s+and\s+/i)
    .map((c) => c.trim())
    .filter(Boolean)) {
    const match =
      /^(attributes\.|attribute\.)?(name|tags\.`?([^`=!<> ]+)`?)\s*(=|!=|LIKE|ILIKE)\s*'((?:[^']|'')*)'$/i.exec(clause);
    if (!match)
      throw invalid('filter', `cannot parse "${clause}": use name = 'x', name LIKE '%x%' or tags.key = 'value'`);
    const value = match[5]!.replace(/''/g, "'");
    const op = match[4]!.toUpperCase();
    const column = match[3] ? sql`${experiments.tags} ->> ${match[3]}` : sql`${experiments.name}`;
    where.push(
      op === '='
        ? sql`${column} = ${value}`
        : op === '!='
          ? sql`${column} <> ${value}`
          : op === 'LIKE'
            ? like(column as never, value)
            : ilike(column as never, value),
    );
  }
  const order = (input.orderBy ?? []).map((entry) => {
    const [field, direction] = entry.trim().split(/\s+/);
    const column = {
      name: experiments.name,
      experiment_id: experiments.id,
      creation_time: experiments.createdAt,
      last_update_time: experiments.updatedAt,
    }[field!.replace(/^attributes\./, '')];
    if (!column) throw invalid('order_by', `cannot order experiments by "${field}"`);
    return direction?.toUpperCase() === 'DESC' ? desc(column) : asc(column);
  });
  const limit = Math.min(input.maxResults ?? 1000, 50_000);
  const offset = decodePageToken(input.pageToken);
  const rows = await db
    .select()
    .from(experiments)
    .where(and(...where))
    .orderBy(...(order.length ? order : [desc(experiments.createdAt)]), asc(experiments.id))
    .limit(limit + 1)
    .offset(offset);
  return {
    experiments: rows.slice(0, limit).map(toExperiment),
    nextPageToken: rows.length > limit ? encodePageToken(offset + limit) : undefined,
  };
}

export async function updateExperiment(
  db: Db,
  id: number,
  input: { newName?: string; deleted?: boolean },
): Promise<void> {
  await db.transaction(async (tx) => {
    const [row] = await tx.select().from(experiments).where(eq(experiments.id, id)).for('update');
    if (!row) throw notFound(`experiment ${id}`);
    if (input.newName !== undefined && input.newName !== row.name) {
      checkName(input.newName);
      if (id === 0) throw new ApiError('INVALID_STATE', 'the Default experiment cannot be renamed');
      const [taken] = await tx
        .select({ id: experiments.id })
        .from(experiments)
        .where(eq(experiments.name, input.newName));
      if (taken) throw new ApiError('RESOURCE_ALREADY_EXISTS', `experiment "${input.newName}" already exists`);
      await tx.update(runs).set({ experiment: input.newName }).where(eq(runs.experiment, row.name));
      await tx.update(experiments).set({ name: input.newName, updatedAt: new Date() }).where(eq(experiments.id, id));
    }
    if (input.deleted !== undefined) {
      if (id === 0 && input.deleted) throw new ApiError('INVALID_STATE', 'the Default experiment cannot be deleted');
      await tx
        .update(experiments)
        .set({ deletedAt: input.deleted ? new Date() : null, updatedAt: new Date() })
        .where(eq(experiments.id, id));
    }
  });
}

export async function setExperimentTag(db: Db, id: number, key: string, value: string | null): Promise<void> {
  const [row] = await db
    .update(experiments)
    .set({
      tags:
        value === null
          ? sql`${experiments.tags} - ${key}`
          : sql`${experiments.tags} || ${JSON.stringify({ [key]: value })}::jsonb`,
      updatedAt: new Date(),
    })
    .where(eq(experiments.id, id))
    .returning({ id: experiments.id });
  if (!row) throw notFound(`experiment ${id}`);
}

export function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64url');
}

export function decodePageToken(token: string | undefined): number {
  if (!token) return 0;
  try {
    const { offset } = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { offset?: unknown };
    if (Number.isInteger(offset) && (offset as number) >= 0) return offset as number;
  } catch {
    // answered below
  }
  throw invalid('page_token', 'is not a page token this server issued');
}
