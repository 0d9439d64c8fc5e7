/** Starting a pipeline through the Flywheel API and following it: `flywheel run` and `flywheel models import`. */
import { loadConfig } from '../config/env';
import { ConfigError, type PipelineConfig } from '../config/pipeline';
import type { PipelineResult } from '../workflows/pipeline';
import { api, ApiCallError } from './api';
import { followPipeline, PipelineFailedError } from './pipelines';
import { withUploadedSource } from './upload';

type Say = (line: string) => void;

export interface RunOptions {
  wait?: boolean;
  id?: string;
  /** An admin token asks for a release grant; without one a new version of an existing model is only registered. */
  token?: string;
}

export async function runPipeline(loaded: PipelineConfig, options: RunOptions, say: Say, note: Say): Promise<void> {
  // The server checks the token and gives the workflow a signed release grant for an admin's run, never the token.
  // An explicit --token asks for a release (refused unless admin); FLYWHEEL_TOKEN or the local CLI token only
  // register.
  let started: { workflowId: string; uiUrl: string; releaseGrant: boolean; modelExists: boolean };
  try {
    // Local files (the data, an imported model) go to the server first: the workers may run on another machine.
    const pipeline = await withUploadedSource(loaded, note, { token: options.token });
    started = await api(
      'POST',
      '/api/v1/pipelines',
      { config: pipeline, workflowId: options.id, ...(options.token ? { release: true } : {}) },
      undefined,
      { token: options.token },
    );
  } catch (error) {
    if (options.token && error instanceof ApiCallError && [401, 403].includes(error.status)) {
      throw new ConfigError(
        `--token: ${error.message} (run without one to register a new version without deploying it)`,
      );
    }
    throw error;
  }
  if (loadConfig().server.token && !options.token && !started.releaseGrant && started.modelExists) {
    note(
      'FLYWHEEL_TOKEN is not an admin token: no release grant; a new version of an existing model will be registered, not deployed',
    );
  }
  say(`started ${started.workflowId}\n  ${started.uiUrl}`);
  if (!options.wait) return;
  try {
    printResult(await followPipeline(started.workflowId, say, { note }), say);
  } catch (error) {
    if (error instanceof PipelineFailedError)
      throw new Error(`pipeline ${started.workflowId} failed: ${error.failure}`);
    throw error;
  }
}

export function printResult(result: PipelineResult, say: Say): void {
  say(`  dataset version  ${result.datasetVersionId}${result.datasetReused ? ' (reused)' : ''}`);
  say(`  run              ${result.runId}  (backend ${result.backend}, queue ${result.trainingQueue})`);
  say(
    `  metrics          ${Object.entries(result.metrics)
      .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(4)}`)
      .join('  ')}`,
  );
  if (result.model) say(`  model version    ${result.model.name} v${result.model.version}`);
  if (result.deployment)
    say(
      `  endpoint         ${result.deployment.endpoint} (@${result.deployment.alias}, serving ${result.deployment.serving})`,
    );
  if (result.monitorWorkflowId) say(`  monitor          ${result.monitorWorkflowId}`);
}
