/**
 * The data half of the pipeline on its own: ingest a source into a dataset version and validate it.
 * `flywheel datasets add` starts it; a validation error fails it (non-retryable) and `latest` stays where it was.
 */
import { proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { IngestResult, StageActivities, ValidateInput, ValidateResult } from '../activities/index';
import { ACTIVITY_PROFILES } from '../config/constants';
import type { TableSpec } from '../storage/tables';
import { DATASET_VERSION_KEY, STAGE_KEY } from './searchAttributes';

export interface DatasetWorkflowInput {
  dataset: string;
  table: TableSpec;
  contract?: ValidateInput['contract'];
  /** @default 'latest' */
  reference?: string;
  /**
   * Distribution check; null turns it off. @default every column, PSI ≥ 0.25 a warning (a pipeline checks its
   * features and makes it an error; here a date or id column moving on is expected)
   */
  drift?: ValidateInput['drift'];
}

export interface DatasetWorkflowResult {
  version: IngestResult;
  validation: ValidateResult;
}

const io = proxyActivities<StageActivities>(ACTIVITY_PROFILES.io);

export async function datasetWorkflow(input: DatasetWorkflowInput): Promise<DatasetWorkflowResult> {
  const { workflowId } = workflowInfo();
  upsertSearchAttributes([{ key: STAGE_KEY, value: 'ingest' }]);
  const version = await io.ingestDataset({ workflowId, dataset: input.dataset, table: input.table });
  upsertSearchAttributes([
    { key: DATASET_VERSION_KEY, value: version.datasetVersionId },
    { key: STAGE_KEY, value: 'validate' },
  ]);
  const validation = await io.validateDataset({
    workflowId,
    datasetVersionId: version.datasetVersionId,
    contract: input.contract,
    reference: input.reference ?? 'latest',
    drift: input.drift === undefined ? { columns: [], psiThreshold: 0.25, severity: 'warning' } : input.drift,
  });
  upsertSearchAttributes([{ key: STAGE_KEY, value: 'completed' }]);
  return { version, validation };
}
