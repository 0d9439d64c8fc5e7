/**
 * `flywheel models …`: the registry (list, show, tag, archive, webhooks) and releases that run as workflows (rollbacks,
 * rollouts, approvals), all through the Flywheel API: the server checks the token (--token, else FLYWHEEL_TOKEN, else
 * the local CLI token) and gives a workflow a signed grant for its one move, never the token.
 * `flywheel tokens …` creates, lists and revokes tokens (admin); `tokens create --local` makes the very first admin
 * token on the stack's machine, writing the database directly.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, loadPipelineConfig, parsePipelineConfig, type PipelineConfig } from '../config/pipeline';
import { durationMs } from '../config/duration';
import type { TokenScope } from '../store/tokens';
import { loadConfig } from '../config/env';
import type { RolloutResult, RolloutStep } from '../workflows/release';
import { api, ApiCallError, pollUntil } from './api';
import { table, when, withDb, type Say } from './output';
import { runPipeline } from './run';

interface TokenOption {
  token?: string;
}
const actorHint = () => `cli:${loadConfig().user}`;
const modelPath = (name: string, ...rest: (string | number)[]) =>
  ['/api/v1/models', name, ...rest].map((part, i) => (i === 0 ? part : encodeURIComponent(String(part)))).join('/');

/** Turns the server's 401 / 403 into the line a user needs: what needed an admin token, and what the server said. */
async function asAdmin<T>(request: string, options: TokenOption, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiCallError && (error.status === 401 || error.status === 403)) {
      throw new ConfigError(
        `${request} needs an admin token (--token or FLYWHEEL_TOKEN; create one with \`flywheel tokens create <name> --scope admin\`): ${error.message}`,
      );
    }
    throw error;
  }
}

/** `GET /api/v1/models/{name}` (times as ISO strings). */
interface ModelJson {
  name: string;
  task: string | null;
  aliases: { alias: string; version: number }[];
  versionCount: number;
  rollout: { mode: string; baseVersion: number; candidateVersion: number; weight: number; workflowId: string } | null;
  versions?: {
    version: number;
    status: string;
    gate: string | null;
    aliases: string[];
    metrics: Record<string, number>;
    createdAt: string;
  }[];
  aliasEvents?: {
    alias: string;
    fromVersion: number | null;
    toVersion: number | null;
    actor: string;
    reason: string;
    at: string;
  }[];
}

/** `GET /api/v1/models/{name}/versions/{version}`. */
interface VersionJson {
  modelName: string;
  version: number;
  status: string;
  aliases: string[];
  metrics: Record<string, number>;
  tags: Record<string, string>;
  createdAt: string;
  lineage: {
    runId: string | null;
    datasetVersionId: string | null;
    workflowId: string | null;
    source: string | null;
    codeVersion: string | null;
  };
  evaluation: {
    baseline?: { version: number; metrics: Record<string, number> } | null;
    gate: {
      passed: boolean;
      checks: { passed: boolean; metric: string; rule: string; skipped?: string }[];
      failures: string[];
    };
    reportKey: string;
    plots: Record<string, string>;
  } | null;
  approvals: { status: string; actor: string | null; comment: string | null; workflowId: string }[];
}

/** `model@version`, `model@alias` or `model` (= @champion), as a version number the server knows. */
async function findModelVersion(ref: string): Promise<{ name: string; version: number }> {
  const at = ref.lastIndexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const pointer = at < 0 ? 'champion' : ref.slice(at + 1).replace(/^v(?=\d+$)/, '');
  if (/^\d+$/.test(pointer)) return { name, version: Number(pointer) };
  const model = await api<ModelJson>('GET', modelPath(name));
  const aliased = model.aliases.find((a) => a.alias === pointer);
  if (!aliased) throw new ConfigError(`model ${name} has no alias @${pointer}`);
  return { name, version: aliased.version };
}

async function listModels(say: Say): Promise<void> {
  const models: ModelJson[] = [];
  let pageToken: string | undefined;
  do {
    const page = await api<{ models: ModelJson[]; nextPageToken?: string }>('GET', '/api/v1/models', undefined, {
      maxResults: 1000,
      pageToken,
    });
    models.push(...page.models);
    pageToken = page.nextPageToken;
  } while (pageToken);
  if (!models.length) return say('no registered models yet');
  const rows = [['MODEL', 'TASK', 'VERSIONS', 'ALIASES', 'ROLLOUT']];
  for (const m of models) {
    rows.push([
      m.name,
      m.task ?? '-',
      String(m.versionCount),
      m.aliases.map((a) => `@${a.alias}=v${a.version}`).join(' ') || '-',
      m.rollout ? `${m.rollout.mode} v${m.rollout.candidateVersion} ${Math.round(m.rollout.weight * 100)} %` : '-',
    ]);
  }
  table(rows, say);
}

async function showModel(ref: string, say: Say): Promise<void> {
  if (!ref.includes('@')) {
    const model = await api<ModelJson>('GET', modelPath(ref));
    say(`${ref} (${model.task})  ${model.aliases.map((a) => `@${a.alias}=v${a.version}`).join(' ')}`);
    const rows = [['VERSION', 'STATUS', 'GATE', 'REGISTERED', 'METRICS', 'ALIASES']];
    for (const v of model.versions ?? []) {
      rows.push([
        `v${v.version}`,
        v.status,
        v.gate ?? '-',
        when(v.createdAt),
        Object.entries(v.metrics)
          .filter(([k]) => ['rmse', 'r2', 'accuracy', 'roc_auc', 'f1'].includes(k))
          .map(([k, x]) => `${k}=${Number(x.toPrecision(4))}`)
          .join(' '),
        v.aliases.map((a) => `@${a}`).join(' '),
      ]);
    }
    table(rows, say);
    const events = (model.aliasEvents ?? []).slice(0, 10);
    if (events.length) say('alias moves (newest first):');
    for (const e of events)
      say(
        `  ${when(e.at)}  @${e.alias}  v${e.fromVersion ?? '-'} → ${e.toVersion === null ? 'deleted' : `v${e.toVersion}`}  by ${e.actor}: ${e.reason}`,
      );
    return;
  }
  const { name, version } = await findModelVersion(ref);
  const v = await api<VersionJson>('GET', modelPath(name, 'versions', version));
  say(`${name} v${version}  ${v.status}  ${v.aliases.map((a) => `@${a}`).join(' ')}`);
  table(
    [
      ['registered', when(v.createdAt)],
      ['run', v.lineage.runId ?? '-'],
      ['dataset', v.lineage.datasetVersionId ?? '-'],
      ['workflow', v.lineage.workflowId ?? (v.lineage.source ? `API, source ${v.lineage.source}` : '-')],
      ['code', v.lineage.codeVersion ?? '-'],
      [
        'tags',
        Object.entries(v.tags)
          .map(([k, x]) => `${k}=${x}`)
          .join(' ') || '-',
      ],
    ],
    say,
  );
  say('metrics (holdout):');
  const baseline = v.evaluation?.baseline;
  for (const [k, x] of Object.entries(v.metrics))
    say(
      `  ${k.padEnd(30)} ${Number(x.toPrecision(5))}${baseline?.metrics[k] !== undefined ? `   champion v${baseline.version}: ${Number(baseline.metrics[k]!.toPrecision(5))}` : ''}`,
    );
  const evaluation = v.evaluation;
  if (evaluation) {
    say(`gate: ${evaluation.gate.passed ? 'passed' : 'FAILED'}`);
    for (const c of evaluation.gate.checks)
      say(`  ${c.passed ? '✓' : '✗'} ${c.metric} ${c.rule}${c.skipped ? ` (skipped: ${c.skipped})` : ''}`);
    for (const f of evaluation.gate.failures) say(`    ${f}`);
    say(`report: s3://…/${evaluation.reportKey}`);
    for (const [plot, key] of Object.entries(evaluation.plots)) say(`  plot ${plot.padEnd(18)} ${key}`);
  }
  for (const a of v.approvals ?? [])
    say(
      `approval: ${a.status}${a.actor ? ` by ${a.actor}` : ''}${a.comment ? `: ${a.comment}` : ''} (${a.workflowId})`,
    );
}

async function moveAlias(
  ref: string,
  alias: string,
  options: TokenOption & { reason?: string },
  say: Say,
): Promise<void> {
  const { name, version } = await findModelVersion(ref);
  const moved = await asAdmin(`moving ${name}@${alias}`, options, () =>
    api<{ fromVersion: number | null; toVersion: number; actor: string }>(
      'PUT',
      modelPath(name, 'aliases', alias),
      { version, reason: options.reason ?? `set by ${actorHint()}` },
      undefined,
      options,
    ),
  );
  say(`${name}@${alias}: v${moved.fromVersion ?? '-'} → v${moved.toVersion} (by ${moved.actor})`);
}

async function rollback(
  model: string,
  options: TokenOption & { alias: string; reason?: string },
  say: Say,
): Promise<void> {
  const started = performance.now();
  const result = await asAdmin(`rolling back ${model}@${options.alias}`, options, () =>
    api<{ fromVersion: number; toVersion: number; actor: string }>(
      'POST',
      modelPath(model, 'aliases', options.alias, 'rollback'),
      { reason: options.reason ?? `rollback by ${actorHint()}` },
      undefined,
      options,
    ),
  );
  // The serving process reloads on the NOTIFY of the move; confirm it answers with the restored version.
  const config = loadConfig();
  let confirmed = false;
  for (let i = 0; i < 50 && !confirmed; i++) {
    const body = (await fetch(`${config.serving.url}/v2/models/${encodeURIComponent(model)}`).then(
      (r) => (r.ok ? r.json() : undefined),
      () => undefined,
    )) as { versions?: string[] } | undefined;
    confirmed = body?.versions?.includes(String(result.toVersion)) ?? false;
    if (!confirmed) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  say(
    `${model}@${options.alias}: v${result.fromVersion} → v${result.toVersion} (rolled back by ${result.actor}); serving ${confirmed ? 'answers with it' : 'not confirmed'} after ${Math.round(performance.now() - started)} ms`,
  );
}

type RolloutOptions = TokenOption & {
  strategy: string;
  steps: string;
  stepDuration: string;
  split: string;
  duration: string;
  maxErrorRate: string;
  reason?: string;
};

/** `GET /api/v1/models/{name}/rollouts/{id}`. */
interface RolloutJson {
  status: string;
  phase: string | null;
  steps: RolloutStep[];
  result?: RolloutResult;
  failure?: string;
  uiUrl: string;
}

async function rollout(ref: string, options: RolloutOptions, say: Say, note: Say): Promise<void> {
  const { name, version } = await findModelVersion(ref);
  durationMs(options.stepDuration);
  durationMs(options.duration);
  let strategy: Record<string, unknown>;
  if (options.strategy === 'canary') {
    const steps = options.steps.split(',').map(Number);
    if (steps.some((s) => !(s > 0 && s <= 100)) || steps[steps.length - 1] !== 100)
      throw new ConfigError(`--steps must be percentages ending at 100, got "${options.steps}"`);
    strategy = {
      kind: 'canary',
      steps,
      stepDuration: options.stepDuration,
      maxErrorRate: Number(options.maxErrorRate),
    };
  } else if (options.strategy === 'ab') {
    const split = Number(options.split);
    if (!(split > 0 && split < 1))
      throw new ConfigError(`--split must be a share between 0 and 1, got "${options.split}"`);
    strategy = { kind: 'ab', split, duration: options.duration };
  } else if (options.strategy === 'shadow') strategy = { kind: 'shadow', duration: options.duration };
  else throw new ConfigError(`--strategy must be canary, ab or shadow, got "${options.strategy}"`);
  const started = await asAdmin(`a rollout of ${name} v${version}`, options, () =>
    api<{ workflowId: string; uiUrl: string }>(
      'POST',
      modelPath(name, 'versions', version, 'rollout'),
      { strategy, reason: options.reason ?? `${options.strategy} by ${actorHint()}` },
      undefined,
      options,
    ),
  );
  say(`${options.strategy} of ${name} v${version}: workflow ${started.workflowId} (${started.uiUrl})`);
  const final = await pollUntil<RolloutJson>(
    modelPath(name, 'rollouts', started.workflowId),
    (r) => r.status !== 'RUNNING',
    () => undefined,
    { intervalMs: 2_000, note, token: options.token },
  );
  if (!final.result)
    throw new Error(`rollout ${started.workflowId} ended ${final.status}: ${final.failure ?? 'no result'}`);
  const result = final.result;
  say(`outcome: ${result.outcome}${result.reason ? ` (${result.reason})` : ''}`);
  for (const s of result.steps) {
    if (s.health)
      say(
        `  ${String(s.percent).padStart(3)} %  requests ${s.health.candidate.requests}  errors ${(s.health.candidate.errorRate * 100).toFixed(1)} %  p99 ${s.health.candidate.p99Ms?.toFixed(2) ?? '-'} ms  psi ${s.health.predictionPsi?.toFixed(3) ?? '-'}`,
      );
  }
  for (const v of result.variants ?? [])
    say(
      `  v${v.version}: ${v.requests} requests, ${v.errors} errors, ${v.labels} labels${v.metric ? `, ${v.metric.name} ${v.metric.value.toFixed(4)}` : ''}`,
    );
  if (result.shadow)
    say(
      `  shadow: ${result.shadow.requests} mirrored, ${result.shadow.errors} failed, ${result.shadow.meanAbsDifference !== null ? `mean |difference| ${result.shadow.meanAbsDifference.toFixed(4)}` : `agreement ${((result.shadow.agreement ?? 0) * 100).toFixed(1)} %`}`,
    );
}

export async function approve(
  ref: string,
  options: TokenOption & { reject?: boolean; comment?: string },
  say: Say,
): Promise<void> {
  const at = ref.lastIndexOf('@');
  if (at < 0 || !/^v?\d+$/.test(ref.slice(at + 1)))
    throw new ConfigError(`approve takes <model>@<version>, got "${ref}"`);
  const { name, version } = await findModelVersion(ref);
  const decided = await asAdmin(`approving ${name} v${version}`, options, () =>
    api<{ actor: string; workflowId: string }>(
      'POST',
      modelPath(name, 'versions', version, 'approval'),
      { decision: options.reject ? 'reject' : 'approve', comment: options.comment },
      undefined,
      options,
    ),
  );
  say(
    `${name} v${version} ${options.reject ? 'rejected' : 'approved'} by ${decided.actor}; release ${decided.workflowId} goes on`,
  );
}

/**
 * `tokens create --local`: the operator's bootstrap on the stack's machine, the one command here that opens Postgres.
 */
async function bootstrapToken(name: string, scope: TokenScope, authorisedBy: string | undefined): Promise<string> {
  const { createToken, TokenError } = await import('../store/tokens');
  return withDb((db) => createToken(db, name, scope, authorisedBy)).catch((error: unknown) => {
    throw error instanceof TokenError ? new ConfigError(error.message) : error;
  });
}

/** `GET /api/v1/webhooks` and `GET /api/v1/tokens` rows. */
interface WebhookJson {
  id: number;
  url: string;
  events: string[];
  modelName: string | null;
  createdAt: string;
  hasSecret: boolean;
}
interface TokenJson {
  id: number;
  name: string;
  scope: string;
  createdAt: string;
  revokedAt: string | null;
}

const idOf = (id: string, what: string) => {
  const n = Number(id.replace(/^#/, ''));
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`${what} ids are numbers such as #3, got "${id}"`);
  return n;
};

export function registerModelCommands(program: Command, say: Say, note: Say = (line) => console.error(line)): void {
  const models = program.command('models').description('the model registry: versions, aliases, releases');
  models
    .command('list')
    .description('registered models with their aliases and rollouts')
    .action(() => listModels(say));
  models
    .command('show <ref>')
    .description('a model (all versions, alias history) or model@version|@alias (lineage, metrics, gate, plots)')
    .action((ref: string) => showModel(ref, say));
  models
    .command('import <model> <file>')
    .description(
      'an ONNX model trained anywhere → evaluated on a dataset, gated, registered (lineage: imported) and released like a trained one',
    )
    .requiredOption('--signature <file>', 'its inputs, target and classes (flywheel-onnx-v1 JSON; see the README)')
    .option('--data <source>', 'the data to evaluate it on: a file, s3:// or http(s):// URL')
    .option('--dataset <name>', 'the dataset --data is versioned under (default: the model name)')
    .option(
      '--config <pipeline.yaml>',
      "a pipeline config whose data, gates, deploy and monitor apply (its training doesn't)",
    )
    .option('--wait', 'follow it stage by stage until it ends')
    .option('--token <token>', 'admin token: lets it replace what the model serves (default: register only)')
    .action((model: string, file: string, options: ImportOptions) =>
      runPipeline(importPipelineConfig(model, file, options), options, say, note),
    );
  const withToken = (c: Command) =>
    c
      .option('--token <token>', 'admin token (default: FLYWHEEL_TOKEN)')
      .option('--reason <text>', 'why (kept in the audit trail)');
  withToken(
    models.command('alias <ref> <alias>').description('point model@alias at a version (ref: model@version)'),
  ).action((ref: string, alias: string, options: { token?: string; reason?: string }) =>
    moveAlias(ref, alias, options, say),
  );
  withToken(
    models
      .command('rollback <model>')
      .description('restore the version that held the alias before the current one')
      .option('--alias <alias>', 'alias to roll back', 'champion'),
  ).action((model: string, options: { alias: string; token?: string; reason?: string }) =>
    rollback(model, options, say),
  );
  withToken(
    models
      .command('rollout <ref>')
      .description('canary, A/B or shadow rollout of model@version against @champion')
      .option('--strategy <kind>', 'canary | ab | shadow', 'canary')
      .option('--steps <list>', 'canary: percent per step', '5,25,50,100')
      .option('--step-duration <d>', 'canary: time per step', '5m')
      .option('--max-error-rate <share>', "canary: health gate on the candidate's error rate", '0.05')
      .option('--split <share>', 'A/B: share of keys sent to the candidate', '0.5')
      .option('--duration <d>', 'A/B and shadow: how long', '1h'),
  ).action((ref: string, options: RolloutOptions) => rollout(ref, options, say, note));
  withToken(
    models
      .command('approve <ref>')
      .description('approve (or --reject) a release waiting for model@version')
      .option('--reject', 'reject instead')
      .option('--comment <text>', 'kept with the decision'),
  ).action((ref: string, options: { reject?: boolean; comment?: string; token?: string }) =>
    approve(ref, options, say),
  );
  models
    .command('tag <ref> <pairs...>')
    .description('set tags on model@version: key=value …')
    .action(async (ref: string, pairs: string[]) => {
      const tags = Object.fromEntries(
        pairs.map((p) => {
          const eqAt = p.indexOf('=');
          if (eqAt < 1) throw new ConfigError(`tags are key=value, got "${p}"`);
          return [p.slice(0, eqAt), p.slice(eqAt + 1)];
        }),
      );
      // A tag is a write, checked against the caller's token at the server.
      const { name, version } = await findModelVersion(ref);
      await api('PATCH', modelPath(name, 'versions', version, 'tags'), { tags });
      say(`${name} v${version}: ${pairs.join(' ')}`);
    });
  withToken(
    models.command('archive <ref>').description('archive model@version (kept for lineage; no alias may point at it)'),
  ).action(async (ref: string, options: TokenOption) => {
    const { name, version } = await findModelVersion(ref);
    await asAdmin(`archiving ${name} v${version}`, options, () =>
      api('POST', modelPath(name, 'versions', version, 'archive'), {}, undefined, options),
    );
    say(`${name} v${version} archived`);
  });
  const hooks = models.command('webhook').description('registry webhooks: POSTs on new versions and alias moves');
  hooks
    .command('add <url>')
    .option('--model <name>', 'one model only (default: all)')
    .option(
      '--events <list>',
      'model_version.created,model_version_alias.moved',
      'model_version.created,model_version_alias.moved',
    )
    .option('--secret <secret>', 'HMAC-SHA256 key for the x-flywheel-signature header')
    .option('--token <token>', 'admin token (default: FLYWHEEL_TOKEN)')
    .action(async (url: string, options: TokenOption & { model?: string; events: string; secret?: string }) => {
      const events = options.events
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean);
      const hook = await asAdmin('adding a webhook', options, () =>
        api<WebhookJson>(
          'POST',
          '/api/v1/webhooks',
          {
            url,
            events,
            ...(options.model ? { modelName: options.model } : {}),
            ...(options.secret ? { secret: options.secret } : {}),
          },
          undefined,
          options,
        ),
      );
      say(
        `webhook #${hook.id} → ${hook.url} on ${hook.events.join(', ')}${hook.modelName ? ` for ${hook.modelName}` : ''}`,
      );
    });
  hooks
    .command('list')
    .option('--token <token>', 'admin token (default: FLYWHEEL_TOKEN)')
    .action(async (options: TokenOption) => {
      const { webhooks } = await asAdmin('listing webhooks', options, () =>
        api<{ webhooks: WebhookJson[] }>('GET', '/api/v1/webhooks', undefined, undefined, options),
      );
      if (!webhooks.length) return say('no webhooks');
      table(
        [
          ['ID', 'URL', 'EVENTS', 'MODEL', 'SIGNED'],
          ...webhooks.map((r) => [
            `#${r.id}`,
            r.url,
            r.events.join(','),
            r.modelName ?? '(all)',
            r.hasSecret ? 'yes' : 'no',
          ]),
        ],
        say,
      );
    });
  hooks
    .command('remove <id>')
    .option('--token <token>', 'admin token (default: FLYWHEEL_TOKEN)')
    .action((id: string, options: TokenOption) =>
      deleteById(
        { what: 'webhook', doing: 'removing a webhook', done: 'removed', path: '/api/v1/webhooks' },
        id,
        options,
        say,
      ),
    );

  program
    .command('approve <ref>')
    .description('approve a release waiting for model@version (as `models approve`)')
    .option('--reject', 'reject instead')
    .option('--comment <text>', 'kept with the decision')
    .option('--token <token>', 'admin token (default: FLYWHEEL_TOKEN)')
    .action((ref: string, options: { reject?: boolean; comment?: string; token?: string }) =>
      approve(ref, options, say),
    );

  const tokens = program
    .command('tokens')
    .description(
      'API tokens: read, write, admin (alias moves, deploys, rollbacks, approvals, tokens) and infer (inference keys)',
    );
  tokens
    .command('create <name>')
    .description("create a token (needs an admin token); the very first admin token: --local, on the stack's machine")
    .option('--scope <scope>', 'read | write | admin | infer', 'admin')
    .option('--token <token>', 'an admin token (default: FLYWHEEL_TOKEN)')
    .option(
      '--local',
      'operator bootstrap: write the database directly (needs its credentials; no admin token needed while none exists)',
    )
    .action(async (name: string, options: TokenOption & { scope: string; local?: boolean }) => {
      const token = options.local
        ? await bootstrapToken(name, options.scope as TokenScope, options.token ?? loadConfig().server.token)
        : (
            await asAdmin('creating a token', options, () =>
              api<{ token: string }>('POST', '/api/v1/tokens', { name, scope: options.scope }, undefined, options),
            ).catch((error: unknown) => {
              throw error instanceof ConfigError
                ? new ConfigError(
                    `${error.message} (no admin token yet? on the stack's machine: \`flywheel tokens create <name> --local\`)`,
                  )
                : error;
            })
          ).token;
      say(token);
      say(`(${options.scope} token "${name}": shown once, store it now)`);
    });
  tokens
    .command('list')
    .option('--token <token>', 'an admin token (default: FLYWHEEL_TOKEN)')
    .action(async (options: TokenOption) => {
      const { tokens: rows } = await asAdmin('listing tokens', options, () =>
        api<{ tokens: TokenJson[] }>('GET', '/api/v1/tokens', undefined, undefined, options),
      );
      if (!rows.length) return say('no tokens');
      table(
        [
          ['ID', 'NAME', 'SCOPE', 'CREATED', 'REVOKED'],
          ...rows.map((r) => [`#${r.id}`, r.name, r.scope, when(r.createdAt), when(r.revokedAt)]),
        ],
        say,
      );
    });
  tokens
    .command('revoke <id>')
    .option('--token <token>', 'an admin token (default: FLYWHEEL_TOKEN)')
    .action((id: string, options: TokenOption) =>
      deleteById(
        { what: 'token', doing: 'revoking a token', done: 'revoked', path: '/api/v1/tokens' },
        id,
        options,
        say,
      ),
    );
}

/** An admin's DELETE of `<path>/<id>`; a 404 is said plainly ("no webhook #3"), not raised. */
async function deleteById(
  target: { what: 'webhook' | 'token'; doing: string; done: string; path: string },
  id: string,
  options: TokenOption,
  say: Say,
): Promise<void> {
  try {
    await asAdmin(target.doing, options, () =>
      api('DELETE', `${target.path}/${idOf(id, target.what)}`, undefined, undefined, options),
    );
    say(`${target.what} ${id} ${target.done}`);
  } catch (error) {
    if (!(error instanceof ApiCallError && error.status === 404)) throw error;
    say(`no ${target.what} ${id}`);
  }
}

export interface ImportOptions {
  signature: string;
  data?: string;
  /** The dataset `--data` is versioned under. @default the model's name */
  dataset?: string;
  config?: string;
  wait?: boolean;
  token?: string;
}

/** The pipeline an import runs: the given config (or a minimal one on `--data`) with an `import` training step. */
export function importPipelineConfig(model: string, file: string, options: ImportOptions): PipelineConfig {
  let signature: Record<string, unknown>;
  try {
    signature = JSON.parse(readFileSync(options.signature, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`--signature ${options.signature}: ${(error as Error).message}`, options.signature);
  }
  if (typeof signature !== 'object' || signature === null || Array.isArray(signature))
    throw new ConfigError(`--signature ${options.signature}: must be a JSON object (flywheel-onnx-v1)`);
  const inputs = (signature.inputs ?? {}) as { layout?: string; columns?: unknown[] };
  const columns = (inputs.columns ?? []).map((c) =>
    typeof c === 'string' ? { name: c, type: 'numeric' } : (c as { name: string; type?: string }),
  );
  const features = {
    numeric: columns.filter((c) => c.type !== 'categorical').map((c) => c.name),
    categorical: columns.filter((c) => c.type === 'categorical').map((c) => c.name),
  };
  if (!options.config && !options.data) throw new ConfigError('name the data to evaluate on: --data or --config');
  const base: Record<string, unknown> = options.config
    ? { ...loadPipelineConfig(options.config) }
    : {
        name: `import-${model}`,
        data: {
          dataset: options.dataset ?? model,
          source:
            /^[a-z0-9]+:\/\//.test(options.data!) || isAbsolute(options.data!) ? options.data : resolve(options.data!),
        },
      };
  const training = {
    ...((base.training as Record<string, unknown>) ?? {}),
    runner: 'import',
    source: isAbsolute(file) || /^[a-z0-9]+:\/\//.test(file) ? file : resolve(file),
    signature,
    task: signature.task,
    target: signature.target,
    features,
    sweep: undefined,
    entrypoint: undefined,
  };
  return parsePipelineConfig({ ...base, model, training }, 'flywheel models import', { keepConfigDir: true });
}
