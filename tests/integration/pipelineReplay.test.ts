/**
 * Replay compatibility: pipelines recorded by earlier code (an approval by update, an expired approval, a direct deploy
 * with its monitor, a refused release, a rolled-back canary, a Python sweep) replay against today's workflows bundle.
 * A change that schedules other activities, children, timers or markers, or in another order, fails here with
 * Temporal's nondeterminism error before it can wedge a running pipeline.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const HISTORIES = join(import.meta.dirname, '../fixtures/histories');
const fixtures = readdirSync(HISTORIES).filter((name) => name.startsWith('pipeline-') && name.endsWith('.json'));

let workflowBundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  workflowBundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows/index.ts'),
    logger: new DefaultLogger('WARN'),
  });
});

describe('pipelineWorkflow replays recorded histories', () => {
  it('has the recorded histories to replay', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(6);
  });

  it.each(fixtures)('%s replays without a nondeterminism error', async (name) => {
    const history = JSON.parse(readFileSync(join(HISTORIES, name), 'utf8'));
    // Child workflow ids derive from the pipeline's own: replay under the id it ran with.
    const workflowId: string = history.events[0].workflowExecutionStartedEventAttributes.workflowId;
    await expect(
      Worker.runReplayHistory({ workflowBundle, replayName: 'pipeline-replay' }, history, workflowId),
    ).resolves.toBeUndefined();
  });
});
