/** Validate: checks a dataset version against the pipeline's declared contract; an error stops the pipeline. */
import { heartbeat } from '@temporalio/activity';
import { eq } from 'drizzle-orm';
import { ContractChecker, summarizeErrors, type DatasetContract, type ValidationReport } from '../ml/validation';
import { datasetVersions, validationReports } from '../schema/datasets';
import { readCsv } from '../storage/csvStream';
import { badInput, type ActivityDeps } from './deps';

export interface ValidateInput {
  workflowId: string;
  datasetVersionId: string;
  contract: DatasetContract;
  delimiter: string;
}

export interface ValidateResult {
  reportKey: string;
  passed: boolean;
  errorCount: number;
  warnings: string[];
}

export function createValidateActivities({ db, store }: ActivityDeps) {
  return {
    async validateDataset(input: ValidateInput): Promise<ValidateResult> {
      const [version] = await db.select().from(datasetVersions).where(eq(datasetVersions.id, input.datasetVersionId));
      if (!version) throw badInput('NotFoundError', `dataset version ${input.datasetVersionId} does not exist`);
      let checker: ContractChecker | undefined;
      await readCsv(
        await store.getStream(version.objectKey),
        { delimiter: input.delimiter, sourceName: `${version.id} (${version.sourceUri})`, onProgress: (bytes) => heartbeat({ bytes }) },
        (header) => (checker = new ContractChecker(header, input.contract)),
        (fields, line) => checker!.checkRow(fields, line),
      );
      const report: ValidationReport = checker!.finish();
      const reportKey = `reports/validation/${version.datasetName}/${version.contentHash}/${encodeURIComponent(input.workflowId)}.json`;
      await store.putJson(reportKey, { datasetVersionId: version.id, source: version.sourceUri, contract: input.contract, ...report });
      const errors = report.issues.filter((i) => i.severity === 'error');
      const warnings = report.issues.filter((i) => i.severity === 'warning');
      await db.insert(validationReports).values({
        id: `${input.workflowId}:${version.id}`,
        datasetVersionId: version.id,
        workflowId: input.workflowId,
        passed: report.passed,
        errorCount: errors.length,
        warningCount: warnings.length,
        reportKey,
        summary: report.issues,
      }).onConflictDoNothing();
      if (!report.passed) {
        throw badInput('DataValidationError', `dataset ${version.id} violates its schema (report: ${store.uri(reportKey)}):\n${summarizeErrors(report)}`, {
          reportKey,
          columns: [...new Set(errors.map((e) => e.column))],
          checks: errors.map((e) => ({ column: e.column, check: e.check, failingRows: e.failingRows, examples: e.examples })),
        });
      }
      return { reportKey, passed: true, errorCount: 0, warnings: warnings.map((w) => w.message) };
    },
  };
}
