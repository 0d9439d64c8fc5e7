/** The `flywheel` command line. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { ConfigError, loadPipelineConfig } from '../config/pipeline';
import { stackDown, stackUp } from '../scripts/stack';
import { loadConfig } from '../config/env';
import { registerAlertCommands } from './alerts';
import { api } from './api';
import { registerDatasetCommands } from './datasets';
import { registerScheduleCommands } from './schedules';
import { registerLineageCommand } from './lineage';
import { registerModelCommands } from './models';
import { registerFeatureCommands } from './features';
import { registerRunCommands } from './runs';
import { registerWorkerCommands } from './workers';
import { printResult, runPipeline, type RunOptions } from './run';
import { runDemo } from './demo';
import { startServer } from '../server/start';
import { formatStage, pipelinePath, type PipelineStatus } from './pipelines';
import { printTimings, showQueueWaits, stepTimings, type QueueWaitOptions, type TimelineStep } from './timings';

const say = (line: string) => console.log(line);
// `flywheel datasets show x | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => process.exit(error.code === 'EPIPE' ? 0 : 1));
const note = (line: string) => console.error(line);

interface UpFlags {
  infraOnly?: boolean;
  foreground?: boolean;
  quiet?: boolean;
  python?: string[];
  cluster?: boolean;
  mtls?: boolean;
}

const program = new Command('flywheel').description('Durable MLOps pipelines on Temporal').showHelpAfterError();

program
  .command('up')
  .description('start the local stack: Temporal dev server + Web UI, MinIO, Postgres, worker and serving processes')
  .option('--infra-only', 'only Temporal, MinIO and Postgres (tests start their own workers)')
  .option('--foreground', 'stay attached; Ctrl-C stops the stack')
  .option('--quiet', 'print only problems')
  .option(
    '--cluster',
    'Temporal as a cluster: frontend, history, matching and worker services on Postgres (not the SQLite dev server)',
  )
  .option(
    '--mtls',
    'with --cluster: the frontend requires client certificates (generated in .flywheel/temporal-cluster)',
  )
  .option(
    '--python <dir...>',
    "also a Python training worker (sdk/python's flywheel-worker) running training entrypoints found in these folders",
  )
  .action(async (options: UpFlags) => {
    if (options.mtls && !options.cluster) throw new ConfigError('--mtls needs --cluster (the dev server has no TLS)');
    const state = await stackUp({
      services: !options.infraOnly,
      python: options.python,
      cluster: options.cluster ? { mtls: options.mtls } : undefined,
      log: note,
    });
    const config = loadConfig();
    if (!options.quiet) {
      const cluster = state.temporal?.cluster;
      say(
        cluster
          ? `Temporal  ${config.temporal.address}  (cluster on Postgres${cluster.tls ? ', mTLS' : ''}; no Web UI)`
          : `Temporal  ${config.temporal.address}  (Web UI ${config.temporal.uiUrl})`,
      );
      say(`MinIO     ${config.s3.endPoint}:${config.s3.port}  bucket ${config.s3.bucket}`);
      say(`Postgres  ${config.databaseUrl.replace(/:[^:@/]+@/, ':***@')}`);
      say(`Server    ${config.server.url}  (MLflow tracking URI; OpenAPI at ${config.server.url}/openapi.json)`);
      say(`UI        ${config.server.url}/ui/  (sign in with a token: flywheel tokens create me --scope read)`);
      if (state.serving) say(`Serving   ${config.serving.url}`);
      if (state.pythonWorker && options.python)
        say(`Python    ${config.taskQueues.trainPythonCpu}  (code from ${state.pythonWorker.paths?.join(', ')})`);
    }
    if (options.foreground) {
      say('Stack is up; Ctrl-C stops it.');
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
      await stackDown(note);
    }
  });

program
  .command('server')
  .description("run the Flywheel API server in the foreground (Flywheel's /api/v1, MLflow's REST API, /openapi.json)")
  .option('--port <port>', 'port (default FLYWHEEL_SERVER_PORT or 8470)')
  .option('--host <host>', 'interface to listen on (default 127.0.0.1)')
  .action(async (options: { port?: string; host?: string }) => {
    const server = await startServer({ port: options.port ? Number(options.port) : undefined, host: options.host });
    say(
      `Flywheel server on ${server.url}  (API ${server.url}/api/v1, MLflow ${server.url}/api/2.0/mlflow, ${server.url}/openapi.json)`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await server.close();
  });

program
  .command('down')
  .description('stop the local stack (data stays in .flywheel/)')
  .action(async () => stackDown(note));

program
  .command('run <config>')
  .description('start the pipeline declared in a YAML config (through the Flywheel API)')
  .option('--wait', 'follow it stage by stage until it ends (through Temporal or server restarts)')
  .option('--id <workflowId>', 'workflow id (default: <pipeline>-<timestamp>)')
  .option(
    '--token <token>',
    'admin token (default: FLYWHEEL_TOKEN): lets a new version of an existing model replace what it serves',
  )
  .action((file: string, options: RunOptions) => runPipeline(loadPipelineConfig(file), options, say, note));

program
  .command('status [workflowId]')
  .description(
    'stages, timings and results of a pipeline, with its Temporal UI link; --queues: queue waits per stage across the last pipelines',
  )
  .option(
    '--queues',
    "queue wait p50/p95/max and run time p95 per stage and task queue over the last pipelines' histories",
  )
  .option('--last <n>', 'with --queues: how many of the newest pipelines to read (default 50, at most 500)')
  .option('--model <name>', "with --queues: only this model's pipelines")
  .option('--pipeline <name>', 'with --queues: only runs of this pipeline')
  .option('--json', "with --queues: the API's JSON instead of the table")
  .action(async (workflowId: string | undefined, options: QueueWaitOptions & { queues?: boolean }) => {
    if (options.queues) return showQueueWaits(options, say);
    if (!workflowId)
      throw new ConfigError('status needs a pipeline workflow id, or --queues for queue waits per stage');
    const p = await api<PipelineStatus>('GET', pipelinePath(workflowId));
    say(`${workflowId}: ${p.status}  (started ${p.startedAt}${p.closedAt ? `, closed ${p.closedAt}` : ''})`);
    say(`  model ${p.model ?? '?'}  pipeline ${p.pipeline ?? '?'}`);
    p.stages.forEach((stage) => say(formatStage(stage)));
    if (p.result) printResult(p.result, say);
    if (p.failure) say(`  failure: ${p.failure}`);
    // Queue wait vs run time needs the history; a server without it (or an old one) just leaves the table out.
    const timeline = await api<{ steps: TimelineStep[] }>('GET', `${pipelinePath(workflowId)}/timeline`).catch(
      () => null,
    );
    if (timeline) printTimings(stepTimings(timeline.steps), say);
    say(`  ${p.uiUrl}`);
  });

registerScheduleCommands(program, say);
registerModelCommands(program, say, note);
registerFeatureCommands(program, say);
registerDatasetCommands(program, say);
registerRunCommands(program, say);
registerAlertCommands(program, say);
registerLineageCommand(program, say);
registerWorkerCommands(program, say);

program
  .command('predict')
  .description('send instances to the serving process')
  .option('--model <name>', 'model name (needed when several are served)')
  .option('--json <instances>', 'a JSON object or array of feature objects')
  .option('--file <path>', 'a JSON file of instances')
  .action(async (options: { model?: string; json?: string; file?: string }) => {
    const text = options.json ?? (options.file ? readFileSync(options.file, 'utf8') : undefined);
    if (!text) throw new ConfigError('predict needs --json or --file');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(`--json/--file is not valid JSON: ${(error as Error).message}`);
    }
    const response = await fetch(`${loadConfig().serving.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: options.model, instances: Array.isArray(parsed) ? parsed : [parsed] }),
    });
    say(JSON.stringify(await response.json(), null, 2));
    if (!response.ok) process.exitCode = 1;
  });

program
  .command('ui')
  .description("print the web UI's URL (runs, models, datasets, monitors, pipelines); --open opens it in a browser")
  .option('--open', 'open it with xdg-open (macOS: open)')
  .action(async (options: { open?: boolean }) => {
    const url = `${loadConfig().server.url}/ui/`;
    const answer = await fetch(url, { signal: AbortSignal.timeout(60_000) }).catch((error: Error) => error);
    if (answer instanceof Error) note(`the server does not answer at ${url} (${answer.message}): run \`flywheel up\``);
    else if (!answer.ok) note(`${url} answered ${answer.status}: ${(await answer.text()).slice(0, 300)}`);
    say(url);
    if (options.open) {
      const { spawn } = await import('node:child_process');
      spawn(process.platform === 'darwin' ? 'open' : 'xdg-open', [url], { stdio: 'ignore', detached: true })
        .on('error', () => note('no browser opener found (xdg-open): open the URL above yourself'))
        .unref();
    }
  });

program
  .command('demo')
  .description('bring the stack up, generate the retail demand data and run its pipeline to the end')
  .action(async () => runDemo(say, note));

program.parseAsync().then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    note(error instanceof ConfigError ? error.message : `error: ${(error as Error).message ?? error}`);
    process.exit(1);
  },
);
