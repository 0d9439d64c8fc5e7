/**
 * Lineage of a model version, both ways along the chain alert → retraining run → dataset version → model version →
 * rollout, assembled from the registry, runs, alerts and datasets stores; and what was built from a dataset version.
 */
import { ApiError } from '../config/errors';
import type { Db } from '../storage/db';
import { getAlert, type Alert } from './alerts';
import { findDatasetVersion, findValidationVerdict } from './datasets';
import { getModelVersion, listAliasEvents, versionsFrom, type AliasEvent, type ModelVersion } from './registry';
import { getRun, searchRuns, type Run } from './runs';

export interface LineageAlert {
  id: number;
  /** Null when the alert's row is gone. */
  check: string | null;
  severity: string | null;
  status: string | null;
  openedAt: Date | null;
  monitorWorkflowId: string | null;
  message: string | null;
  /** The version being served when the alert opened. */
  servedVersion: number | null;
}

export interface ModelLineage {
  modelName: string;
  version: number;
  registeredAt: Date;
  metrics: Record<string, number>;
  /** What started the pipeline: `cli`, `schedule`, `api`, `alert`, …; `cli` when the run does not say. */
  trigger: string;
  alert: LineageAlert | null;
  /** The lineage of the version served when the alert opened (one level deep). */
  servedLineage: ModelLineage | null;
  workflowId: string | null;
  source: string | null;
  run: Pick<Run, 'id' | 'status' | 'backend' | 'sweepId' | 'trial' | 'codeVersion'> | null;
  dataset: { id: string; rowCount: number | null; sourceUri: string | null; validationPassed: boolean | null } | null;
  /** Alias moves to and from this version, oldest first. */
  aliasMoves: AliasEvent[];
}

async function optional<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof ApiError && error.code === 'RESOURCE_DOES_NOT_EXIST') return undefined;
    throw error;
  }
}

const alertOf = (id: number, alert: Alert | undefined): LineageAlert => {
  const served = (alert?.details as { version?: unknown } | undefined)?.version;
  return {
    id,
    check: alert?.check ?? null,
    severity: alert?.severity ?? null,
    status: alert?.status ?? null,
    openedAt: alert?.openedAt ?? null,
    monitorWorkflowId: alert?.monitorWorkflowId ?? null,
    message: alert?.message ?? null,
    servedVersion: typeof served === 'number' ? served : null,
  };
};

/** A model version's lineage; `depth` levels of the version served when its retraining alert opened are followed. */
export async function modelLineage(db: Db, modelName: string, version: number, depth = 1): Promise<ModelLineage> {
  const mv: ModelVersion = await getModelVersion(db, modelName, version);
  const run = mv.runId ? await optional(getRun(db, mv.runId)) : undefined;
  const alertId = run?.tags.alert ? Number(run.tags.alert) : undefined;
  const alert =
    alertId !== undefined && Number.isSafeInteger(alertId)
      ? alertOf(alertId, await optional(getAlert(db, alertId)))
      : null;
  const served = alert?.servedVersion;
  const servedLineage =
    served != null && served !== version && depth > 0
      ? ((await optional(modelLineage(db, modelName, served, depth - 1))) ?? null)
      : null;
  let dataset: ModelLineage['dataset'] = null;
  if (mv.datasetVersionId) {
    const found = await findDatasetVersion(db, mv.datasetVersionId);
    const verdict = mv.workflowId ? await findValidationVerdict(db, mv.datasetVersionId, mv.workflowId) : undefined;
    dataset = {
      id: mv.datasetVersionId,
      rowCount: found?.rowCount ?? null,
      sourceUri: found?.sourceUri ?? null,
      validationPassed: verdict?.passed ?? null,
    };
  }
  return {
    modelName,
    version,
    registeredAt: mv.createdAt,
    metrics: mv.metrics,
    trigger: run?.tags.trigger ?? 'cli',
    alert,
    servedLineage,
    workflowId: mv.workflowId,
    source: mv.source,
    run: run
      ? {
          id: run.id,
          status: run.status,
          backend: run.backend,
          sweepId: run.sweepId,
          trial: run.trial,
          codeVersion: run.codeVersion,
        }
      : null,
    dataset,
    aliasMoves: await listAliasEvents(db, { modelName, version, oldestFirst: true }),
  };
}

export interface DatasetVersionLineage {
  /** Runs trained on the version, newest first. */
  runs: Pick<Run, 'id' | 'status' | 'pipelineName' | 'startedAt'>[];
  modelVersions: { modelName: string; version: number; runId: string | null }[];
}

/**
 * What was built from a dataset version: its runs (deleted ones included) and the model versions registered from it.
 */
export async function datasetVersionLineage(db: Db, datasetVersionId: string): Promise<DatasetVersionLineage> {
  const runs: DatasetVersionLineage['runs'] = [];
  let pageToken: string | undefined;
  do {
    const page = await searchRuns(db, {
      filter: `attributes.dataset = '${datasetVersionId.replace(/'/g, "''")}'`,
      orderBy: 'started desc',
      viewType: 'ALL',
      maxResults: 1000,
      pageToken,
    });
    runs.push(
      ...page.runs.map((r) => ({ id: r.id, status: r.status, pipelineName: r.pipelineName, startedAt: r.startedAt })),
    );
    pageToken = page.nextPageToken;
  } while (pageToken);
  const models = await versionsFrom(db, { datasetVersionId });
  return { runs, modelVersions: models.map((m) => ({ modelName: m.modelName, version: m.version, runId: m.runId })) };
}
