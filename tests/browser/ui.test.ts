/**
 * The web UI in headless Chromium (Debian's, through playwright-core) on the real stack: a Flywheel server in this
 * process on the suite's queues, a small demand pipeline with a sweep, a dataset drop that fails validation, and a
 * drift scenario on the deployed model; then each of the five areas renders that data, filtering narrows the runs
 * table, the compare view overlays two runs' curves, an alert is acknowledged from the page and a `read` token's
 * approval is refused. Screenshots of each page go to .flywheel/screenshots/.
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { generateDemand } from '../../examples/demand/generate';
import { parseCsv } from '../../ml/formats/csv';
import { seededRandom, shuffledIndices } from '../../ml/random';
import { getAlert, listAlerts } from '../../store/alerts';
import { PROJECT_ROOT } from '../../config/env';
import { chromiumPath } from '../../scripts/chromium';
import { ensureUiBuilt } from '../../scripts/ui';
import type { PipelineResult } from '../../workflows/pipeline';
import { startCliServer, type CliServer } from '../integration/cliServer';
import { DEMAND_SCHEMA, demandPipeline, eventually, startHarness, type Harness } from '../integration/harness';

const SCREENSHOTS = join(PROJECT_ROOT, '.flywheel', 'screenshots');

let harness: Harness;
let server: CliServer;
let browser: Browser;
let outcome: PipelineResult;
let config: Awaited<ReturnType<typeof demandPipeline>>;
let workflowId: string;
let failedVersionId: string | undefined;
let driftAlertId: number;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await ensureUiBuilt();
  harness = await startHarness();
  server = await startCliServer(harness);
  browser = await chromium.launch({
    executablePath: await chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });

  // 1. A pipeline with a three-trial sweep, deployed and monitored every 2 s (prediction drift out of reach: the
  //    features are what drifts here).
  config = await demandPipeline(harness.workDir, {
    data: { stores: 3, items: 5, days: 120 },
    config: {
      evaluation: { gates: [{ metric: 'rmse', max: 1000 }] },
      monitor: {
        interval: '2s',
        minWindowRows: 100,
        predictionPsiThreshold: 1000,
        meanShiftThreshold: 1000,
        retrainOnDrift: false,
      },
    },
  });
  config.training.epochs = 3;
  config.training.sweep = {
    method: 'random',
    trials: 3,
    maxParallel: 2,
    maxFailed: 0,
    // Past the last epoch: no trial stops early, so every trial has the same curves to compare.
    earlyStopping: { rule: 'median', graceEpochs: 5, minTrials: 3 },
    parameters: { learningRate: { min: 0.002, max: 0.05, scale: 'log' }, hiddenUnits: { values: [[8], [16]] } },
  } as typeof config.training.sweep;
  const started = await harness.runPipeline(config);
  workflowId = started.workflowId;
  outcome = await started.result;

  // 2. The next drop has prices in cents: validation fails and names the column.
  const cents = join(harness.workDir, `${config.name}-cents.csv`);
  await generateDemand(cents, { stores: 3, items: 5, days: 120, priceScale: 100 });
  await harness
    .runDataset({ dataset: config.data.dataset, table: { source: cents }, contract: DEMAND_SCHEMA as never })
    .catch(() => undefined);
  const versions = await fetch(`${server.url}/api/v1/datasets/${config.data.dataset}/versions`, {
    headers: { authorization: `Bearer ${server.tokens.read}` },
  }).then((r) => r.json() as Promise<{ versions: { id: string; validation: { passed: boolean } | null }[] }>);
  failedVersionId = versions.versions.find((v) => v.validation && !v.validation.passed)?.id;

  // 3. Served traffic: two normal windows, then prices in cents → a feature-drift alert.
  const records = parseCsv(await readFile(config.data.source, 'utf8'));
  const header = records[0]!.fields;
  const ordered = records.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r.fields[i]!])));
  const rows = Array.from(shuffledIndices(ordered.length, seededRandom(7)), (i) => ordered[i]!);
  const instance = (row: Record<string, string>, priceScale = 1) => ({
    price: Number(row.price) * priceScale,
    promo: Number(row.promo),
    is_holiday: Number(row.is_holiday),
    store_id: row.store_id,
    item_id: row.item_id,
    day_of_week: Number(row.day_of_week),
  });
  const send = async (instances: Record<string, unknown>[]) => {
    const response = await fetch(`${harness.servingUrl}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: config.model, instances }),
    });
    expect(response.status).toBe(200);
  };
  const checks = async () =>
    (
      await fetch(`${server.url}/api/v1/models/${config.model}/monitor-checks`, {
        headers: { authorization: `Bearer ${server.tokens.read}` },
      }).then((r) => r.json() as Promise<{ checks: { report: { rows: number } }[] }>)
    ).checks.filter((c) => c.report.rows >= 100).length;
  for (let window = 0; window < 2; window++) {
    const before = await checks();
    await send(rows.slice(window * 500, window * 500 + 500).map((r) => instance(r)));
    await eventually(async () => (await checks()) > before, 60_000, 'a check over normal traffic');
  }
  await send(rows.slice(0, 500).map((r) => instance(r, 100)));
  const alert = await eventually(
    async () =>
      (await listAlerts(harness.services.db, { model: config.model })).find((a) => a.check === 'feature_drift'),
    60_000,
    'a feature-drift alert',
  );
  driftAlertId = alert.id;
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await harness?.stop();
}, 120_000);

/** A page signed in with `token` (the login screen, as a user would). */
async function signedIn(token: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${server.url}/ui/`);
  await page.fill('input[name=token]', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('nav');
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
const ui = (hash: string) => `${server.url}/ui/${hash}`;

describe('the Flywheel UI', () => {
  it('shows only the login screen without a token, and refuses an unknown one', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(ui('#/runs'));
    await page.waitForSelector('input[name=token]');
    expect(await page.locator('nav').count()).toBe(0);
    expect(await page.locator('[data-testid=runs-table]').count()).toBe(0);
    await page.fill('input[name=token]', 'fw_not_a_token');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('[data-testid=error]')).toContain('unknown or revoked');
    await shot(page, 'login');
    await page.close();
  });

  it('lists the runs, narrows them with the filter language and compares two runs’ curves', async () => {
    const page = await signedIn(server.tokens.write);
    await page.goto(ui(`#/runs?experiment=${encodeURIComponent(config.name)}`));
    const table = page.locator('[data-testid=runs-table]');
    await table.waitFor();
    expect(Number(await table.getAttribute('data-rows'))).toBe(3);
    await shot(page, 'runs');

    await page.fill('input[name=filter]', 'attributes.trial = 0 or attributes.trial = 1');
    await page.click('button:has-text("Filter")');
    await expect
      .poll(async () => Number(await page.locator('[data-testid=runs-table]').getAttribute('data-rows')))
      .toBe(2);
    expect(await page.locator('[data-testid=vrow]').count()).toBe(2);

    const boxes = page.locator('[data-testid=vrow] input[type=checkbox]');
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await page.click('button:has-text("Compare (2)")');
    const curve = page.locator('[data-testid=curve-val_loss]');
    await curve.waitFor();
    // uPlot's legend: the x series plus one per run.
    expect(await curve.locator('.u-legend .u-series').count()).toBe(3);
    expect(await page.locator('[data-testid=compare-params]').textContent()).toContain('learningRate');
    await shot(page, 'compare');

    await page.goto(ui(`#/runs/${outcome.runId}`));
    await page.locator('[data-testid=parallel-coordinates]').waitFor();
    expect(await page.locator('[data-testid=run-metrics]').textContent()).toContain('val_loss');
    await page.locator('[data-testid=curve-loss]').waitFor();
    await page.locator('[data-testid=parallel-coordinates]').scrollIntoViewIfNeeded();
    await shot(page, 'run');
    await page.close();
  });

  it('shows the model: versions with gate verdicts, evaluation plots, alias history and the lineage chain', async () => {
    const page = await signedIn(server.tokens.write);
    await page.goto(ui(`#/models/${config.model}`));
    const versions = page.locator('[data-testid=versions-table]');
    await versions.waitFor();
    expect(await versions.textContent()).toMatch(/v1\s*passed/);
    expect(await page.locator('[data-testid=alias-history]').textContent()).toContain('@champion');
    await shot(page, 'models');

    await page.goto(ui(`#/models/${config.model}/1`));
    await page.locator('[data-testid=plot-residuals]').waitFor();
    expect(await page.locator('[data-testid=gate-checks]').textContent()).toContain('rmse');
    expect(await page.locator('[data-testid=lineage]').textContent()).toContain(outcome.datasetVersionId);
    await shot(page, 'model-version');
    await page.close();
  });

  it('refuses an approval from a read token and shows the server’s reason', async () => {
    const page = await signedIn(server.tokens.read);
    await page.goto(ui(`#/models/${config.model}/1`));
    await page.locator('[data-testid=approve]').click();
    await expect.poll(() => page.textContent('[data-testid=error]')).toMatch(/scope "read"; this route needs "admin"/);
    await shot(page, 'approve-refused');
    await page.close();
  });

  it('shows the dataset: versions with verdicts, the failing column with examples, the profile and a diff', async () => {
    expect(failedVersionId).toBeDefined();
    const page = await signedIn(server.tokens.read);
    await page.goto(ui(`#/datasets/${config.data.dataset}`));
    const versions = page.locator('[data-testid=dataset-versions]');
    await versions.waitFor();
    expect(await versions.textContent()).toMatch(/passed[\s\S]*failed|failed[\s\S]*passed/);
    await shot(page, 'datasets');

    await page.goto(ui(`#/datasets/${failedVersionId}`));
    const issues = page.locator('[data-testid=validation-issues]');
    await issues.waitFor();
    expect(await issues.textContent()).toMatch(/price[\s\S]*max[\s\S]*line \d+/);
    await page.locator('[data-testid=profile-price] .chart canvas').first().waitFor();
    await shot(page, 'dataset-version');

    await page.goto(ui(`#/datasets-diff?a=${outcome.datasetVersionId}&b=${failedVersionId}`));
    await page.locator('[data-testid=diff-price]').waitFor();
    expect(await page.locator('[data-testid=diff-price]').textContent()).toContain('PSI');
    await shot(page, 'dataset-diff');
    await page.close();
  });

  it('draws drift per feature against its threshold and acknowledges the alert from the page', async () => {
    const page = await signedIn(server.tokens.write);
    await page.goto(ui(`#/monitors/${config.model}`));
    await page.locator('[data-testid=drift-price] canvas').first().waitFor();
    const row = page.locator(`[data-testid=alerts-table] tr:has([data-testid=alert-${driftAlertId}])`);
    expect(await row.textContent()).toContain('open');
    await shot(page, 'monitor');
    await page.click(`[data-testid=ack-${driftAlertId}]`);
    await expect.poll(() => row.textContent()).toContain('acknowledged');
    expect((await getAlert(harness.services.db, driftAlertId)).status).toBe('acknowledged');

    await page.goto(ui('#/monitors'));
    await page.locator('[data-testid=deployments-table]').waitFor();
    expect(await page.locator('[data-testid=deployments-table]').textContent()).toContain(`${config.model}@champion`);
    await shot(page, 'monitors');
    await page.close();
  });

  it('lists pipeline runs and draws one pipeline’s stages on a timeline linked to the Temporal UI', async () => {
    const page = await signedIn(server.tokens.read);
    await page.goto(ui(`#/pipelines/${workflowId}`));
    await page.locator('[data-testid=timeline] .gantt-row').first().waitFor();
    const stages = await page.locator('[data-testid=stages]').textContent();
    for (const stage of ['ingest', 'validate', 'train', 'evaluate', 'register', 'deploy'])
      expect(stages).toContain(stage);
    expect(await page.locator('[data-testid=timeline]').textContent()).toMatch(/trainModel|sweepWorkflow/);
    expect(await page.locator('[data-testid=temporal-link]').getAttribute('href')).toContain(workflowId);
    await shot(page, 'pipeline');

    // The list comes from Temporal's visibility store, which may lag a little behind the run.
    await page.goto(ui('#/pipelines'));
    await eventually(
      async () => {
        await page.reload();
        await page.locator('[data-testid=pipelines-table]').waitFor();
        return (await page.locator('[data-testid=pipelines-table]').textContent())?.includes(workflowId);
      },
      30_000,
      'the pipeline in the list',
    );
    await shot(page, 'pipelines');
    await page.close();
  });
});
