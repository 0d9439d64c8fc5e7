/** `npm run demo`: the whole loop on generated retail demand data, non-interactively, to the end. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadPipelineConfig } from '../config/pipeline';
import { stackUp } from '../scripts/stack';
import { temporalClient } from '../storage/temporal';
import { loadConfig, PROJECT_ROOT } from '../config/env';
import { MODEL_KEY } from '../workflows/searchAttributes';
import { generateDemand } from './demoData';
import { failureMessage, followPipeline, startPipeline, uiLink } from './pipelines';

export async function runDemo(say: (line: string) => void, note: (line: string) => void): Promise<void> {
  say('1/4  Bringing the local stack up (first time: builds Temporal and MinIO, a few minutes)…');
  await stackUp({ services: true, log: note });
  const config = loadConfig();

  const configFile = join(PROJECT_ROOT, 'examples', 'demand', 'pipeline.yaml');
  const pipeline = loadPipelineConfig(configFile);
  if (!existsSync(pipeline.data.source)) {
    say(`2/4  Generating the retail demand dataset → ${pipeline.data.source}`);
    const { rows } = await generateDemand(pipeline.data.source);
    say(`     ${rows} rows (10 stores × 20 items × 180 days)`);
  } else say(`2/4  Using the retail demand dataset at ${pipeline.data.source}`);

  say(`3/4  Running pipeline ${pipeline.name} (ingest → validate → train → evaluate → register → deploy → monitor)`);
  const client = await temporalClient(config.temporal);
  const handle = await startPipeline(client, config, pipeline);
  say(`     workflow ${handle.workflowId}`);
  let result;
  try {
    result = await followPipeline(handle.workflowId, say, { note });
  } catch (error) {
    throw new Error(`demo pipeline ${handle.workflowId} failed: ${failureMessage(error)}`);
  }

  say('4/4  Asking the serving endpoint for predictions');
  const instances = [
    { store_id: 'S01', item_id: 'I001', day_of_week: 6, month: 3, is_holiday: 0, promo: 0, price: 9.5 },
    { store_id: 'S01', item_id: 'I001', day_of_week: 6, month: 3, is_holiday: 0, promo: 1, price: 7.6 },
    { store_id: 'S05', item_id: 'I010', day_of_week: 2, month: 7, is_holiday: 1, promo: 0, price: 12 },
  ];
  const response = await fetch(`${config.serving.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: pipeline.model, instances }),
  });
  const body = (await response.json()) as { predictions?: number[]; version?: number; error?: string };
  if (!response.ok) throw new Error(`serving answered ${response.status}: ${body.error}`);
  instances.forEach((instance, i) =>
    say(`     ${JSON.stringify(instance)} → ${body.predictions![i]!.toFixed(1)} units`),
  );

  say('');
  say('Done.');
  say(`  dataset version  ${result.datasetVersionId}  (npx flywheel datasets show ${pipeline.data.dataset})`);
  say(`  run id           ${result.runId}  (TF.js backend: ${result.backend})`);
  say(
    `  metrics          ${['rmse', 'mae', 'r2', 'wape'].map((k) => `${k}=${result.metrics[k]?.toFixed(3)}`).join('  ')}`,
  );
  const deploy = result.stages.find((stage) => stage.name === 'deploy');
  say(
    `  model version    ${result.model?.name} v${result.model?.version}  (${result.deployment ? `@${result.deployment.alias}` : `not deployed: ${deploy?.summary ?? 'no deploy stage'}`})`,
  );
  if (result.deployment) say(`  endpoint         ${result.deployment.endpoint}`);
  say(`  monitor          ${result.monitorWorkflowId}`);
  say(`  Temporal UI      ${uiLink(config, handle.workflowId)}`);
  say(
    `  find it          temporal workflow list --address ${config.temporal.address} --query '${MODEL_KEY.name}="${pipeline.model}"'`,
  );
}
