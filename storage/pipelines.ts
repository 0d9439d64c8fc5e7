/** Starting pipeline workflows and naming their outcome: shared by the CLI, the server and the demo. */
import { spawnSync } from 'node:child_process';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { rootCause } from '../config/errors';
import type { PipelineConfig } from '../config/pipeline';
import type { Grant } from '../store/grants';
import { PROJECT_ROOT, type FlywheelConfig } from '../config/env';
import { pipelineWorkflow, type PipelineInput } from '../workflows/pipeline';
import { MODEL_KEY, PIPELINE_KEY } from '../workflows/searchAttributes';

/** git sha of the checkout, with "-dirty" when it has uncommitted changes. */
export function codeVersion(): string | undefined {
  const sha = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  if (sha.status !== 0) return undefined;
  const dirty =
    spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    }).stdout.trim().length > 0;
  return `${sha.stdout.trim()}${dirty ? '-dirty' : ''}`;
}

export function pipelineInput(
  config: PipelineConfig,
  settings: Readonly<FlywheelConfig>,
  trigger: PipelineInput['trigger'],
): PipelineInput {
  return {
    config,
    trigger,
    codeVersion: codeVersion(),
    servingUrl: settings.serving.url,
    queues: {
      trainCpu: settings.taskQueues.trainCpu,
      trainGpu: settings.taskQueues.trainGpu,
      trainPythonCpu: settings.taskQueues.trainPythonCpu,
      trainPythonGpu: settings.taskQueues.trainPythonGpu,
    },
  };
}

/** A new pipeline run's id; a release grant is issued for it before the run starts. */
export function pipelineWorkflowId(config: PipelineConfig): string {
  return `${config.name}-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * `grant`: action `release` for `workflowId` (store/grants.ts), which lets a new version of an existing model be
 * deployed.
 */
export async function startPipeline(
  client: Client,
  settings: Readonly<FlywheelConfig>,
  config: PipelineConfig,
  workflowId = pipelineWorkflowId(config),
  trigger: PipelineInput['trigger'] = { kind: 'cli' },
  grant?: Grant,
): Promise<WorkflowHandle<typeof pipelineWorkflow>> {
  return client.workflow.start(pipelineWorkflow, {
    workflowId,
    taskQueue: settings.taskQueues.main,
    args: [{ ...pipelineInput(config, settings, trigger), grant }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    typedSearchAttributes: [
      { key: MODEL_KEY, value: config.model },
      { key: PIPELINE_KEY, value: config.name },
    ],
    staticSummary: `Pipeline ${config.name} → model ${config.model}`,
  });
}

export function uiLink(settings: Readonly<FlywheelConfig>, workflowId: string): string {
  // A cluster without Temporal's Web UI: Flywheel's own pipeline page (stages, timeline, result).
  if (!settings.temporal.uiUrl) return `${settings.server.url}/ui/#/pipelines/${encodeURIComponent(workflowId)}`;
  return `${settings.temporal.uiUrl}/namespaces/${settings.temporal.namespace}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The deepest failure message: the one that names the file, column or gate. */
export function failureMessage(error: unknown): string {
  // A cause without a message (undici's AggregateError) says less than the link above it.
  const root = rootCause(error, (link) => Boolean((link.cause as { message?: string } | undefined)?.message)) as
    { message?: string } | undefined;
  return root?.message ?? String(error);
}
