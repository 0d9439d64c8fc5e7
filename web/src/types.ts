// The shapes the UI reads from /api/v1 (as JSON: dates are ISO strings).
export interface Run {
  id: string;
  name: string | null;
  experiment: string;
  experimentId: number;
  status: string;
  workflowId: string | null;
  pipelineName: string | null;
  modelName: string | null;
  datasetVersionId: string | null;
  sweepId: string | null;
  trial: number | null;
  params: Record<string, unknown>;
  tags: Record<string, string>;
  metrics: Record<string, number>;
  backend: string | null;
  taskQueue: string | null;
  codeVersion: string | null;
  seed: number | null;
  error: string | null;
  artifactUri: string;
  startedAt: string;
  endedAt: string | null;
}

export interface MetricSeries {
  runId: string;
  series: Record<string, { step: number; value: number | string; timestamp: number }[]>;
}

export interface AliasEvent {
  alias: string;
  fromVersion: number | null;
  toVersion: number | null;
  actor: string;
  reason: string | null;
  workflowId: string | null;
  at: string;
}

export interface Rollout {
  mode: string;
  baseVersion: number;
  candidateVersion: number;
  weight: number;
  workflowId: string;
}

export interface ModelSummary {
  name: string;
  task: string | null;
  description: string | null;
  aliases: { alias: string; version: number }[];
  versionCount: number;
  latestVersion: number | null;
  updatedAt: string;
  rollout: Rollout | null;
}

export interface VersionSummary {
  version: number;
  status: string;
  gate: string | null;
  aliases: string[];
  metrics: Record<string, number>;
  runId: string | null;
  createdAt: string;
}

export interface Alert {
  id: number;
  monitorWorkflowId: string;
  modelName: string;
  check: string;
  severity: string;
  status: string;
  message: string;
  details: Record<string, unknown>;
  retrainWorkflowId: string | null;
  openedAt: string;
  resolvedAt: string | null;
}

export interface StageStatus {
  name: string;
  status: string;
  startedAt?: number;
  endedAt?: number;
  summary?: string;
}
