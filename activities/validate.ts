/**
 * Validate: checks a dataset version against its contract (pinned in the pipeline, or inferred from the dataset's
 * first version) and its distributions against a reference version. An error stops the pipeline before training.
 */
import { heartbeat } from '@temporalio/activity';
import {
  ContractChecker,
  inferContract,
  summarizeErrors,
  type DatasetContract,
  type DriftRule,
  type ValidationReport,
} from '../ml/quality/validation';
import { findDatasetVersionRow, inferredContractOf, recordValidation, resolveAliasOrVersion } from '../store/datasets';
import { INGESTED_CSV_LIMITS, readCsv } from '../ml/formats/csvStream';
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

export function createValidateActivities({ db, store }: ActivityDeps) {
  return {
    async validateDataset(input: ValidateInput): Promise<ValidateResult> {
      const version = await findDatasetVersionRow(db, input.datasetVersionId);
      if (!version) throw badInput('NotFoundError', `dataset version ${input.datasetVersionId} does not exist`);
      const contract = input.contract ?? (await inferredContractOf(db, version, () => inferContract(version.profile)));

      const referenceId = input.drift
        ? await resolveAliasOrVersion(db, version.datasetName, input.reference)
        : undefined;
      let reference: { id: string; profile: typeof version.profile } | undefined;
      if (referenceId && referenceId !== version.id) {
        const row = await findDatasetVersionRow(db, referenceId);
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
            sourceName: `${version.id} (${version.sourceUri})`,
            ...INGESTED_CSV_LIMITS,
            signal: activityCancellation(),
            onProgress: (read) => heartbeat({ bytes: (bytes = read) }),
          },
          (header) =>
            (checker = new ContractChecker(
              header,
              contract,
              reference && input.drift ? { rule: input.drift, reference } : undefined,
            )),
          (record) => checker!.checkRow(record, record.line),
        );
      } finally {
        clearInterval(beat);
      }
      const report: ValidationReport = checker!.finish();
      const reportKey = `reports/validation/${version.datasetName}/${version.contentHash}/${encodeURIComponent(input.workflowId)}.json`;
      const contractSource = input.contract ? 'pinned' : 'inferred';
      await store.putJson(reportKey, {
        datasetVersionId: version.id,
        source: version.sourceUri,
        contractSource,
        contract,
        ...report,
      });
      const errors = report.issues.filter((i) => i.severity === 'error');
      const warnings = report.issues.filter((i) => i.severity === 'warning');
      await recordValidation(db, { workflowId: input.workflowId, version, report, reportKey });
      if (!report.passed) {
        throw badInput(
          'DataValidationError',
          `dataset ${version.id} fails validation (report: ${store.uri(reportKey)}):\n${summarizeErrors(report)}`,
          {
            reportKey,
            columns: [...new Set(errors.map((e) => e.column))],
            checks: errors.map((e) => ({
              column: e.column,
              check: e.check,
              failingRows: e.failingRows,
              examples: e.examples,
            })),
          },
        );
      }
      return {
        reportKey,
        passed: true,
        contract: contractSource,
        reference: reference?.id ?? null,
        driftedColumns: report.drift?.results.filter((r) => r.drifted).map((r) => r.column) ?? [],
        warnings: warnings.map((w) => w.message),
      };
    },
  };
}
