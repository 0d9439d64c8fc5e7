/**
 * Validate: checks a dataset version against its contract (pinned in the pipeline, or inferred from the dataset's
 * first version) and its distributions against a reference version. An error stops the pipeline before training.
 */
import { heartbeat } from '@temporalio/activity';
import { and, eq } from 'drizzle-orm';
import { ContractChecker, inferContract, summarizeErrors, type DatasetContract, type DriftRule, type ValidationReport } from '../ml/validation';
import { datasetAliases, datasets, datasetVersions, validationReports } from '../schema/datasets';
import type { Db } from '../storage/db';
import { INGESTED_CSV_LIMITS, readCsv } from '../storage/csvStream';
import { activityCancellation } from './datasetColumns';
import { badInput, type ActivityDeps } from './deps';

export interface ValidateInput {
  workflowId: string;
  datasetVersionId: string;
  /** The pipeline's pinned contract; without one the dataset's inferred contract applies. */
  contract?: DatasetContract;
  /** Alias or version id to compare distributions with. */
  reference: string;
  drift: DriftRule | null;
}

export interface ValidateResult {
  reportKey: string;
  passed: boolean;
  contract: 'pinned' | 'inferred';
  reference: string | null;
  driftedColumns: string[];
  warnings: string[];
}

/** Resolves `name@alias`-style pointers: an alias of the dataset, else a version id (with or without the name). */
export async function resolveDatasetVersion(db: Db, dataset: string, ref: string): Promise<string | undefined> {
  const [alias] = await db.select().from(datasetAliases).where(and(eq(datasetAliases.datasetName, dataset), eq(datasetAliases.alias, ref)));
  if (alias) return alias.versionId;
  const id = ref.includes('@') ? ref : `${dataset}@${ref}`;
  const [version] = await db.select({ id: datasetVersions.id }).from(datasetVersions).where(eq(datasetVersions.id, id));
  return version?.id;
}

export function createValidateActivities({ db, store }: ActivityDeps) {
  return {
    async validateDataset(input: ValidateInput): Promise<ValidateResult> {
      const [version] = await db.select().from(datasetVersions).where(eq(datasetVersions.id, input.datasetVersionId));
      if (!version) throw badInput('NotFoundError', `dataset version ${input.datasetVersionId} does not exist`);

      let contract = input.contract;
      if (!contract) {
        const [dataset] = await db.select().from(datasets).where(eq(datasets.name, version.datasetName));
        contract = dataset?.inferredContract ?? inferContract(version.profile);
        if (!dataset?.inferredContract) {
          await db.update(datasets).set({ inferredContract: contract, inferredFrom: version.id }).where(eq(datasets.name, version.datasetName));
        }
      }

      const referenceId = input.drift ? await resolveDatasetVersion(db, version.datasetName, input.reference) : undefined;
      let reference: { id: string; profile: typeof version.profile } | undefined;
      if (referenceId && referenceId !== version.id) {
        const [row] = await db.select().from(datasetVersions).where(eq(datasetVersions.id, referenceId));
        if (row) reference = { id: row.id, profile: row.profile };
      }

      let checker: ContractChecker | undefined;
      // A beat every 20 s even while a slow store sends nothing; a cancelled activity stops at the next chunk.
      let bytes = 0;
      const beat = setInterval(() => heartbeat({ bytes }), 20_000);
      try {
        await readCsv(
          await store.getStream(version.objectKey),
          {
            sourceName: `${version.id} (${version.sourceUri})`, ...INGESTED_CSV_LIMITS, signal: activityCancellation(),
            onProgress: (read) => heartbeat({ bytes: (bytes = read) }),
          },
          (header) => (checker = new ContractChecker(header, contract!, reference && input.drift ? { rule: input.drift, reference } : undefined)),
          (record) => checker!.checkRow(record, record.line),
        );
      } finally {
        clearInterval(beat);
      }
      const report: ValidationReport = checker!.finish();
      const reportKey = `reports/validation/${version.datasetName}/${version.contentHash}/${encodeURIComponent(input.workflowId)}.json`;
      const contractSource = input.contract ? 'pinned' : 'inferred';
      await store.putJson(reportKey, { datasetVersionId: version.id, source: version.sourceUri, contractSource, contract, ...report });
      const errors = report.issues.filter((i) => i.severity === 'error');
      const warnings = report.issues.filter((i) => i.severity === 'warning');
      await db.transaction(async (tx) => {
        await tx.insert(validationReports).values({
          id: `${input.workflowId}:${version.id}`,
          datasetVersionId: version.id,
          workflowId: input.workflowId,
          passed: report.passed,
          errorCount: errors.length,
          warningCount: warnings.length,
          reportKey,
          summary: report.issues,
        }).onConflictDoNothing();
        if (report.passed) {
          await tx.insert(datasetAliases).values({ datasetName: version.datasetName, alias: 'latest', versionId: version.id, updatedBy: input.workflowId })
            .onConflictDoUpdate({ target: [datasetAliases.datasetName, datasetAliases.alias], set: { versionId: version.id, updatedBy: input.workflowId, updatedAt: new Date() } });
        }
      });
      if (!report.passed) {
        throw badInput('DataValidationError', `dataset ${version.id} fails validation (report: ${store.uri(reportKey)}):\n${summarizeErrors(report)}`, {
          reportKey,
          columns: [...new Set(errors.map((e) => e.column))],
          checks: errors.map((e) => ({ column: e.column, check: e.check, failingRows: e.failingRows, examples: e.examples })),
        });
      }
      return {
        reportKey, passed: true, contract: contractSource, reference: reference?.id ?? null,
        driftedColumns: report.drift?.results.filter((r) => r.drifted).map((r) => r.column) ?? [],
        warnings: warnings.map((w) => w.message),
      };
    },
  };
}
