/**
 * bench:ui — the web UI at scale, measured in headless Chromium (Debian's, through playwright-core) from the page's own
 * performance marks:
 * - runs_table_render_ms: BENCH_UI_RUNS (100,000) runs of one experiment in the runs table (windowed), from the moment
 *   the last page of the search has arrived ('runs:data') to the frame after the rows are painted ('runs:rendered');
 *   runs_page_total_ms adds the search itself (the API, two pages of 50,000).
 * - chart_100k_points_render_ms: one run's metric with BENCH_UI_POINTS (100,000) steps, from the moment its series has
 *   arrived ('curves:data') to the frame after uPlot has drawn it ('curve:loss:drawn').
 * - peer: plain_dom_table_render_ms, the same runs as a plain DOM <table> (every row in the DOM, no framework),
 *   built in the same page from the same API answer, to the frame after it is painted.
 * Data: the runs are bulk-inserted with SQL (as bench/api.ts loads its large case) into a unique experiment of the
 * stack's database, created through the experiments store; they are deleted at the end (BENCH_KEEP=1 keeps them).
 * The server runs in this process (server/start.ts) with a read token inserted hashed and revoked at the end.
 * Environment: BENCH_UI_RUNS (100000), BENCH_UI_POINTS (100000), BENCH_KEEP (0). Last line: one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { eq, inArray, like } from 'drizzle-orm';
import { chromium, type Page } from 'playwright-core';
import { apiTokens } from '../schema/models';
import { experiments, runMetrics, runs } from '../schema/runs';
import { startServer } from '../server/start';
import { closeDb, connectDb } from '../storage/db';
import { ensureExperiment } from '../store/experiments';
import { hashToken } from '../store/tokens';
import { loadConfig } from '../config/env';
import { chromiumPath } from '../scripts/chromium';
import { ensureUiBuilt } from '../scripts/ui';

const intFromEnv = (name: string, fallback: number) => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback;
};
const RUNS = intFromEnv('BENCH_UI_RUNS', 100_000);
const POINTS = intFromEnv('BENCH_UI_POINTS', 100_000);
const KEEP = process.env.BENCH_KEEP === '1';
const tag = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const log = (line: string) => console.error(line);

/** Waits for a performance entry of the page and returns its startTime (a mark) or duration (a measure). */
async function entry(page: Page, name: string, timeoutMs = 300_000): Promise<number> {
  await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0, name, { timeout: timeoutMs });
  return page.evaluate((n) => {
    const found = performance.getEntriesByName(n).at(-1)!;
    return found.entryType === 'measure' ? found.duration : found.startTime;
  }, name);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const db = connectDb(config.databaseUrl, 2);
  const experiment = await ensureExperiment(db, `bench-ui-${tag}`);
  const name = experiment.name.replace(/'/g, "''");
  const runPrefix = `bench-ui-${tag}-`;
  const curveRunId = `${runPrefix}curve`;
  const token = `fw_read_bench_ui_${tag}`;
  let server: { url: string; close(): Promise<void> } | undefined;
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  try {
    log(`bench:ui: loading ${RUNS.toLocaleString()} runs into experiment ${experiment.name} …`);
    const loadStarted = Date.now();
    const source = `(SELECT i, '${runPrefix}' || i AS id, 'run-' || lpad(i::text, 6, '0') AS name,
        (hashint4(i) & 65535)::float8 / 65536 AS rmse, (hashint4(i + 7) & 65535)::float8 / 65536 AS r2,
        (ARRAY['0.001','0.01','0.1'])[(hashint4(i + 3) & 3) % 3 + 1] AS lr
      FROM generate_series(0, ${RUNS - 1}) i) v`;
    await db.$client.query(
      `INSERT INTO runs (id, experiment, name, user_id, status, tags, params, metrics, started_at, ended_at)
        SELECT id, '${name}', name, 'bench', 'finished', '{}'::jsonb, jsonb_build_object('lr', lr),
          jsonb_build_object('rmse', rmse, 'r2', r2), now() - make_interval(secs => i), now() - make_interval(secs => i) + interval '1 minute'
        FROM ${source}`,
    );
    await db.$client.query(
      `INSERT INTO run_latest_metrics (run_id, key, experiment_id, value, step)
        SELECT id, m.key, ${experiment.id}, m.value, 0 FROM ${source}, LATERAL (VALUES ('rmse', rmse), ('r2', r2)) AS m(key, value)`,
    );
    // The 100k-point curve: a run of its own (outside the experiment's count) with one metric logged every step.
    await db
      .insert(runs)
      .values({ id: curveRunId, experiment: `${experiment.name}-curve`, name: 'curve', status: 'finished' });
    await db.$client.query(
      `INSERT INTO run_metrics (run_id, key, step, value)
        SELECT '${curveRunId}', 'loss', s, 1.0 / (1 + s / 1000.0) + 0.05 * sin(s / 50.0) FROM generate_series(0, ${POINTS - 1}) s`,
    );
    log(`  loaded in ${((Date.now() - loadStarted) / 1000).toFixed(1)} s`);
    await db.insert(apiTokens).values({ name: `bench-ui-${tag}`, scope: 'read', hash: hashToken(token) });

    await ensureUiBuilt({ log });
    server = await startServer({ port: 0 });
    browser = await chromium.launch({
      executablePath: await chromiumPath(log),
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${server.url}/ui/`);
    await page.fill('input[name=token]', token);
    await page.click('button[type=submit]');
    await page.waitForSelector('nav');

    log('  runs table …');
    await page.goto(`${server.url}/ui/#/runs?experiment=${encodeURIComponent(experiment.name)}&max=${RUNS}`);
    const tableMs = await entry(page, 'runs-table-render');
    const fetchAt = await entry(page, 'runs:fetch');
    const renderedAt = await entry(page, 'runs:rendered');
    const rows = Number(await page.locator('[data-testid=runs-table]').getAttribute('data-rows'));
    if (rows !== RUNS) throw new Error(`the runs table holds ${rows} rows, expected ${RUNS}`);
    const domRows = await page.locator('[data-testid=vrow]').count();

    log('  100k-point chart …');
    await page.goto(`${server.url}/ui/#/runs/${curveRunId}`);
    const drawnAt = await entry(page, 'curve:loss:drawn');
    const dataAt = await entry(page, 'curves:data');

    log('  peer: plain DOM table …');
    const plainMs = await page.evaluate(
      async ({ experimentName, bearer, max }) => {
        type Row = {
          name: string;
          experiment: string;
          status: string;
          startedAt: string;
          metrics: Record<string, number>;
          params: Record<string, unknown>;
        };
        const all: Row[] = [];
        let pageToken: string | undefined;
        do {
          const search = new URLSearchParams({
            experiment: experimentName,
            limit: '50000',
            ...(pageToken ? { pageToken } : {}),
          });
          const answer = (await (
            await fetch(`/api/v1/runs?${search}`, { headers: { authorization: `Bearer ${bearer}` } })
          ).json()) as { runs: Row[]; nextPageToken?: string };
          all.push(...answer.runs);
          pageToken = answer.nextPageToken;
        } while (pageToken && all.length < max);
        document.body.innerHTML = '';
        const started = performance.now();
        const table = document.createElement('table');
        const body = document.createElement('tbody');
        for (const run of all) {
          const tr = document.createElement('tr');
          for (const text of [
            run.name,
            run.experiment,
            run.status,
            run.startedAt,
            String(run.metrics.rmse),
            String(run.metrics.r2),
            String(run.params.lr),
          ]) {
            const td = document.createElement('td');
            td.textContent = text;
            tr.append(td);
          }
          body.append(tr);
        }
        table.append(body);
        document.body.append(table);
        void document.body.offsetHeight;
        await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
        return performance.now() - started;
      },
      { experimentName: experiment.name, bearer: token, max: RUNS },
    );

    const result = {
      runs: RUNS,
      points: POINTS,
      runs_table_render_ms: Math.round(tableMs),
      runs_table_dom_rows: domRows,
      runs_page_total_ms: Math.round(renderedAt - fetchAt),
      chart_100k_points_render_ms: Math.round(drawnAt - dataAt),
      plain_dom_table_render_ms: Math.round(plainMs),
    };
    log(
      `  runs table: ${result.runs_table_render_ms} ms to render ${RUNS.toLocaleString()} runs (${domRows} rows in the DOM; ${result.runs_page_total_ms} ms with the search)`,
    );
    log(`  chart: ${result.chart_100k_points_render_ms} ms for ${POINTS.toLocaleString()} points`);
    log(`  peer, a plain DOM table of the same runs: ${result.plain_dom_table_render_ms} ms`);
    console.log(JSON.stringify(result));
  } finally {
    await browser?.close().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await db
      .update(apiTokens)
      .set({ revokedAt: new Date() })
      .where(eq(apiTokens.name, `bench-ui-${tag}`));
    if (!KEEP) {
      await db.delete(runMetrics).where(eq(runMetrics.runId, curveRunId));
      await db.delete(runs).where(like(runs.id, `${runPrefix}%`));
      await db.delete(experiments).where(inArray(experiments.id, [experiment.id]));
    }
    await closeDb(db);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`bench:ui failed: ${(error as Error).stack ?? error}`);
    process.exit(1);
  },
);
