/**
 * The datasets store: datasets, their immutable content-addressed versions, validation verdicts and aliases. Rows
 * become domain objects here; references (`name`, `name@alias`, `name@hash-prefix`) resolve here; an alias move is
 * one transaction under the dataset's row lock, and so is each write the ingest and validate stages make. Errors are
 * `ApiError`s.
 */
import { and, asc, desc, eq, inArray, like, sql } from 'drizzle-orm';
import { alias as tableAlias } from 'drizzle-orm/pg-core';
import { ApiError, invalid, notFound } from '../config/errors';
import { NAME_PATTERN } from '../config/pipeline';
import { inferContract, type DatasetContract, type ValidationReport } from '../ml/quality/validation';
import {
  datasetAliases,
  datasets,
  datasetVersions,
  validationReports,
  type DatasetVersionRow,
} from '../schema/datasets';

export type { DatasetVersionRow };
import type { Db } from '../storage/db';
import type { Executor } from './experiments';

export interface DatasetSummary {
  name: string;
  versionCount: number;
  /** What `latest` points at (the newest version that passed validation); null before one has. */
  latestVersionId: string | null;
  latestRowCount: number | null;
  lastVersionAt: Date | null;
  createdAt: Date;
}

/** The newest validation of a version. */
export interface ValidationVerdict {
  passed: boolean;
  errorCount: number;
  warningCount: number;
  workflowId: string;
  createdAt: Date;
}

export interface ValidationReportSummary extends ValidationVerdict {
  id: string;
  /** The full report in the object store. */
  reportKey: string;
  issues: ValidationReport['issues'];
}

export interface DatasetVersionSummary {
  id: string;
  datasetName: string;
  format: string;
  rowCount: number;
  byteSize: number;
  columnCount: number;
  aliases: string[];
  validation: ValidationVerdict | null;
  createdAt: Date;
}

export interface DatasetVersion extends DatasetVersionRow {
  aliases: string[];
}

/** The contract a dataset's versions are validated against when a pipeline pins none, or the one a version suggests. */
export interface DatasetSchema {
  datasetVersionId: string;
  /**
   * True when this is the contract in use for the dataset (inferred from this very version); false when only suggested.
   */
  inUse: boolean;
  /** Columns in the data's order (Postgres jsonb does not keep key order). */
  contract: DatasetContract;
}

export interface AliasMove {
  datasetName: string;
  alias: string;
  versionId: string;
  /** Where the alias pointed before; null when it is new. */
  previousVersionId: string | null;
}

const ALIAS_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;
const REF_RULE = 'must be a dataset name, name@alias or name@version-hash (letters, digits, ".", "_" or "-")';

export interface DatasetRef {
  name: string;
  /** An alias, a version hash (prefix) or a version id; undefined for a bare name. */
  pointer?: string;
}

/** Splits and checks `name`, `name@alias` or `name@hash-prefix`; a malformed one is a 400 naming `field`. */
export function parseDatasetRef(ref: string, field = 'ref'): DatasetRef {
  const at = ref.indexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const pointer = at < 0 ? undefined : ref.slice(at + 1);
  if (!NAME_PATTERN.test(name) || (pointer !== undefined && !NAME_PATTERN.test(pointer))) {
    throw invalid(field, `"${ref.length > 80 ? `${ref.slice(0, 80)}…` : ref}" ${REF_RULE}`);
  }
  return { name, pointer };
}

const escapeLike = (text: string) => text.replace(/[%_\\]/g, '\\$&');

const verdictOf = (row: typeof validationReports.$inferSelect): ValidationVerdict => ({
  passed: row.passed,
  errorCount: row.errorCount,
  warningCount: row.warningCount,
  workflowId: row.workflowId,
  createdAt: row.createdAt,
});

// ---------------------------------------------------------------- reads

async function datasetExists(db: Executor, name: string): Promise<boolean> {
  const [row] = await db.select({ name: datasets.name }).from(datasets).where(eq(datasets.name, name));
  return row !== undefined;
}

/** A name that is not a valid dataset name cannot exist: a 400 naming `field` rather than a 404. */
export function checkDatasetName(name: string, field = 'name'): void {
  if (!NAME_PATTERN.test(name))
    throw invalid(
      field,
      `"${name.length > 80 ? `${name.slice(0, 80)}…` : name}" is not a dataset name (letters, digits, ".", "_" or "-")`,
    );
}

async function checkDataset(db: Executor, name: string): Promise<void> {
  checkDatasetName(name);
  if (!(await datasetExists(db, name))) throw notFound(`dataset "${name}"`);
}

/** Every dataset with its version count, where `latest` points and when its last version arrived. */
export async function listDatasets(db: Executor): Promise<DatasetSummary[]> {
  const latest = tableAlias(datasetAliases, 'latest_alias');
  const latestVersion = tableAlias(datasetVersions, 'latest_version');
  const rows = await db
    .select({
      name: datasets.name,
      createdAt: datasets.createdAt,
      versionCount: sql<number>`(select count(*)::int from ${datasetVersions} where ${datasetVersions.datasetName} = ${datasets.name})`,
      lastVersionAt: sql<
        string | null
      >`(select max(${datasetVersions.createdAt}) from ${datasetVersions} where ${datasetVersions.datasetName} = ${datasets.name})`,
      latestVersionId: latest.versionId,
      latestRowCount: latestVersion.rowCount,
    })
    .from(datasets)
    .leftJoin(latest, and(eq(latest.datasetName, datasets.name), eq(latest.alias, 'latest')))
    .leftJoin(latestVersion, eq(latestVersion.id, latest.versionId))
    .orderBy(asc(datasets.name));
  return rows.map((r) => ({ ...r, lastVersionAt: r.lastVersionAt === null ? null : new Date(r.lastVersionAt) }));
}

async function aliasesOf(db: Executor, versionIds: string[]): Promise<Map<string, string[]>> {
  const rows = versionIds.length
    ? await db
        .select()
        .from(datasetAliases)
        .where(inArray(datasetAliases.versionId, versionIds))
        .orderBy(asc(datasetAliases.alias))
    : [];
  const byVersion = new Map<string, string[]>();
  for (const row of rows) byVersion.set(row.versionId, [...(byVersion.get(row.versionId) ?? []), row.alias]);
  return byVersion;
}

/** The newest validation report per version. */
async function verdictsOf(db: Executor, versionIds: string[]): Promise<Map<string, ValidationVerdict>> {
  const rows = versionIds.length
    ? await db
        .selectDistinctOn([validationReports.datasetVersionId])
        .from(validationReports)
        .where(inArray(validationReports.datasetVersionId, versionIds))
        .orderBy(validationReports.datasetVersionId, desc(validationReports.createdAt))
    : [];
  return new Map(rows.map((r) => [r.datasetVersionId, verdictOf(r)]));
}

/** The versions of a dataset, newest first, with their newest validation verdict and aliases. */
export async function listDatasetVersions(db: Executor, name: string): Promise<DatasetVersionSummary[]> {
  await checkDataset(db, name);
  const rows = await db
    .select({
      id: datasetVersions.id,
      datasetName: datasetVersions.datasetName,
      format: datasetVersions.format,
      rowCount: datasetVersions.rowCount,
      byteSize: datasetVersions.byteSize,
      columnCount: sql<number>`jsonb_array_length(${datasetVersions.columns})`,
      createdAt: datasetVersions.createdAt,
    })
    .from(datasetVersions)
    .where(eq(datasetVersions.datasetName, name))
    .orderBy(desc(datasetVersions.createdAt));
  const ids = rows.map((r) => r.id);
  const [aliases, verdicts] = await Promise.all([aliasesOf(db, ids), verdictsOf(db, ids)]);
  return rows.map((r) => ({ ...r, aliases: aliases.get(r.id) ?? [], validation: verdicts.get(r.id) ?? null }));
}

export async function findDatasetVersion(db: Executor, id: string): Promise<DatasetVersion | undefined> {
  const [row] = await db.select().from(datasetVersions).where(eq(datasetVersions.id, id));
  return row ? { ...row, aliases: (await aliasesOf(db, [row.id])).get(row.id) ?? [] } : undefined;
}

/** A version's row as stored (no aliases): what the stages read. */
export async function findDatasetVersionRow(db: Executor, id: string): Promise<DatasetVersionRow | undefined> {
  const [row] = await db.select().from(datasetVersions).where(eq(datasetVersions.id, id));
  return row;
}

/** An alias of the dataset, else a version id (`ref` with or without the name): how stages name a reference version. */
export async function resolveAliasOrVersion(db: Executor, dataset: string, ref: string): Promise<string | undefined> {
  const [alias] = await db
    .select({ versionId: datasetAliases.versionId })
    .from(datasetAliases)
    .where(and(eq(datasetAliases.datasetName, dataset), eq(datasetAliases.alias, ref)));
  if (alias) return alias.versionId;
  return (await findDatasetVersionRow(db, ref.includes('@') ? ref : `${dataset}@${ref}`))?.id;
}

/**
 * The version id a pointer names within a dataset: an alias, a version id (with or without the name), else a unique
 * hash prefix.
 */
async function resolvePointer(db: Executor, name: string, pointer: string, ref: string): Promise<string | undefined> {
  const [aliased] = await db
    .select({ id: datasetAliases.versionId })
    .from(datasetAliases)
    .where(and(eq(datasetAliases.datasetName, name), eq(datasetAliases.alias, pointer)));
  if (aliased) return aliased.id;
  const [exact] = await db
    .select({ id: datasetVersions.id })
    .from(datasetVersions)
    .where(eq(datasetVersions.id, `${name}@${pointer}`));
  if (exact) return exact.id;
  const candidates = await db
    .select({ id: datasetVersions.id })
    .from(datasetVersions)
    .where(and(eq(datasetVersions.datasetName, name), like(datasetVersions.id, `${escapeLike(`${name}@${pointer}`)}%`)))
    .limit(6);
  if (candidates.length > 1)
    throw invalid(
      'ref',
      `${ref} is ambiguous: ${candidates
        .slice(0, 5)
        .map((c) => c.id)
        .join(', ')}`,
    );
  return candidates[0]?.id;
}

/** `name@alias` or `name@hash-prefix`; a bare name means `latest`, else the newest version. */
export async function resolveDatasetRef(db: Executor, ref: string, field = 'ref'): Promise<DatasetVersion> {
  const { name, pointer } = parseDatasetRef(ref, field);
  let id = await resolvePointer(db, name, pointer ?? 'latest', ref);
  if (!id && pointer === undefined) {
    const [newest] = await db
      .select({ id: datasetVersions.id })
      .from(datasetVersions)
      .where(eq(datasetVersions.datasetName, name))
      .orderBy(desc(datasetVersions.createdAt))
      .limit(1);
    id = newest?.id;
  }
  const version = id ? await findDatasetVersion(db, id) : undefined;
  if (version) return version;
  await checkDataset(db, name);
  throw new ApiError(
    'RESOURCE_DOES_NOT_EXIST',
    pointer === undefined
      ? `dataset "${name}" has no versions`
      : `dataset version ${ref} does not exist: no alias or version hash of "${name}" matches "${pointer}"`,
  );
}

/** A version's validation reports, newest first. */
export async function listValidationReports(
  db: Executor,
  versionId: string,
  limit = 20,
): Promise<ValidationReportSummary[]> {
  const rows = await db
    .select()
    .from(validationReports)
    .where(eq(validationReports.datasetVersionId, versionId))
    .orderBy(desc(validationReports.createdAt))
    .limit(limit);
  return rows.map((r) => ({ id: r.id, ...verdictOf(r), reportKey: r.reportKey, issues: r.summary }));
}

/** The verdict a given workflow (a pipeline) reached on a version, if it validated it. */
export async function findValidationVerdict(
  db: Executor,
  versionId: string,
  workflowId: string,
): Promise<ValidationVerdict | undefined> {
  const [row] = await db
    .select()
    .from(validationReports)
    .where(and(eq(validationReports.datasetVersionId, versionId), eq(validationReports.workflowId, workflowId)))
    .orderBy(desc(validationReports.createdAt))
    .limit(1);
  return row ? verdictOf(row) : undefined;
}

/**
 * The contract in use for the dataset when it was inferred from this version, else the one this version's profile
 * suggests.
 */
export async function datasetSchema(db: Executor, ref: string): Promise<DatasetSchema> {
  const version = await resolveDatasetRef(db, ref);
  const [dataset] = await db.select().from(datasets).where(eq(datasets.name, version.datasetName));
  const inUse = Boolean(dataset?.inferredContract && dataset.inferredFrom === version.id);
  const inferred = inUse ? dataset!.inferredContract! : inferContract(version.profile);
  const columns = version.profile
    .filter((p) => inferred.columns[p.name])
    .map((p) => {
      const { type, nullable, ...rest } = inferred.columns[p.name]!;
      return [p.name, { type, nullable, ...rest }] as const;
    });
  return {
    datasetVersionId: version.id,
    inUse,
    contract: {
      columns: Object.fromEntries(columns),
      allowExtraColumns: inferred.allowExtraColumns,
      minRows: inferred.minRows,
    },
  };
}

// ---------------------------------------------------------------- aliases

export interface DatasetAliasInput {
  datasetName: string;
  alias: string;
  /** A version of the dataset: its id (`name@hash`), a hash prefix, or another alias. */
  version: string;
  /** Point the alias at a version whose newest validation failed. @default false */
  force?: boolean;
  /** Who moved it (the token's name over the API). */
  actor: string;
}

/**
 * Points an alias at a version, under the dataset's row lock. A version whose newest validation failed is refused
 * unless `force`: an alias is how pipelines and people pick data to train on.
 */
export async function setDatasetAlias(db: Db, input: DatasetAliasInput): Promise<AliasMove> {
  checkDatasetName(input.datasetName);
  if (!ALIAS_PATTERN.test(input.alias))
    throw invalid('alias', `alias "${input.alias}" must be 1-63 letters, digits, ".", "_" or "-"`);
  const ref = input.version.includes('@') ? input.version : `${input.datasetName}@${input.version}`;
  const { name } = parseDatasetRef(ref, 'version');
  if (name !== input.datasetName)
    throw invalid('version', `${input.version} is a version of dataset "${name}", not "${input.datasetName}"`);
  return db.transaction(async (tx) => {
    const [dataset] = await tx
      .select({ name: datasets.name })
      .from(datasets)
      .where(eq(datasets.name, input.datasetName))
      .for('update');
    if (!dataset) throw notFound(`dataset "${input.datasetName}"`);
    const version = await resolveDatasetRef(tx, ref, 'version');
    const verdict = (await verdictsOf(tx, [version.id])).get(version.id);
    if (verdict && !verdict.passed && !input.force) {
      throw new ApiError(
        'INVALID_STATE',
        `${version.id} FAILED validation (${verdict.errorCount} errors, ${verdict.workflowId} at ${verdict.createdAt.toISOString()}); ` +
          `pointing @${input.alias} at it needs force (\`flywheel datasets alias --force\`)`,
      );
    }
    const [current] = await tx
      .select({ versionId: datasetAliases.versionId })
      .from(datasetAliases)
      .where(and(eq(datasetAliases.datasetName, input.datasetName), eq(datasetAliases.alias, input.alias)));
    await tx
      .insert(datasetAliases)
      .values({ datasetName: input.datasetName, alias: input.alias, versionId: version.id, updatedBy: input.actor })
      .onConflictDoUpdate({
        target: [datasetAliases.datasetName, datasetAliases.alias],
        set: { versionId: version.id, updatedBy: input.actor, updatedAt: new Date() },
      });
    return {
      datasetName: input.datasetName,
      alias: input.alias,
      versionId: version.id,
      previousVersionId: current?.versionId ?? null,
    };
  });
}

// ---------------------------------------------------------------- stage writes

export type NewDatasetVersion = Omit<typeof datasetVersions.$inferInsert, 'createdAt'>;

/** Records an ingested version (and its dataset the first time); a version already there is left as it was. */
export async function recordDatasetVersion(db: Db, version: NewDatasetVersion): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.insert(datasets).values({ name: version.datasetName }).onConflictDoNothing();
    await tx.insert(datasetVersions).values(version).onConflictDoNothing();
  });
}

/**
 * The contract a dataset's versions are validated against when a pipeline pins none: the one inferred before, else
 * `infer()` of this version, recorded under the dataset's row lock so two first validations agree on one.
 */
export async function inferredContractOf(
  db: Db,
  version: DatasetVersionRow,
  infer: () => DatasetContract,
): Promise<DatasetContract> {
  return db.transaction(async (tx) => {
    const [dataset] = await tx.select().from(datasets).where(eq(datasets.name, version.datasetName)).for('update');
    if (dataset?.inferredContract) return dataset.inferredContract;
    const contract = infer();
    await tx
      .update(datasets)
      .set({ inferredContract: contract, inferredFrom: version.id })
      .where(eq(datasets.name, version.datasetName));
    return contract;
  });
}

export interface ValidationRecord {
  workflowId: string;
  version: Pick<DatasetVersionRow, 'id' | 'datasetName'>;
  report: ValidationReport;
  /** The full report in the object store. */
  reportKey: string;
}

/** Records a validation's verdict; a version that passed becomes the dataset's `latest`, in the same transaction. */
export async function recordValidation(
  db: Db,
  { workflowId, version, report, reportKey }: ValidationRecord,
): Promise<void> {
  const count = (severity: string) => report.issues.filter((i) => i.severity === severity).length;
  await db.transaction(async (tx) => {
    await tx
      .insert(validationReports)
      .values({
        id: `${workflowId}:${version.id}`,
        datasetVersionId: version.id,
        workflowId,
        passed: report.passed,
        errorCount: count('error'),
        warningCount: count('warning'),
        reportKey,
        summary: report.issues,
      })
      .onConflictDoNothing();
    if (report.passed) {
      await tx
        .insert(datasetAliases)
        .values({ datasetName: version.datasetName, alias: 'latest', versionId: version.id, updatedBy: workflowId })
        .onConflictDoUpdate({
          target: [datasetAliases.datasetName, datasetAliases.alias],
          set: { versionId: version.id, updatedBy: workflowId, updatedAt: new Date() },
        });
    }
  });
}
