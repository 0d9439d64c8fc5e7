/**
 * `flywheel models …`: the registry (list, show, tag, archive, webhooks) and releases that go through workflows
 * (alias moves, rollbacks, rollouts, approvals), authorised by an admin token (--token or FLYWHEEL_TOKEN) that the CLI
 * checks itself: the workflow gets a signed grant for that one move, never the token;
 * `flywheel tokens …` creates and revokes tokens.
 */
import type { Command } from 'commander';
import { asc, eq } from 'drizzle-orm';
import { ConfigError } from '../config/pipeline';
import { durationMs } from '../config/duration';
import { trafficRoutes } from '../schema/deployments';
import { apiTokens } from '../schema/models';
import type { Db } from '../storage/db';
import { temporalClient } from '../storage/temporal';
import {
  addWebhook, archiveModelVersion, findModelVersion as findVersion, findRegisteredModel, findVersionByAlias, listAliasEvents, listApprovals,
  listModelVersions, listRegisteredModels, listWebhooks, removeWebhook, WEBHOOK_EVENTS, type WebhookEventName,
} from '../store/registry';
import { grantFromToken, type Grant, type GrantRequest } from '../store/grants';
import { createToken, TOKEN_SCOPES, verifyToken, type TokenScope } from '../store/tokens';
import { loadConfig } from '../temporal.config';
import type { ApprovalDecision } from '../workflows/pipeline';
import type { AliasInput, AliasResult, RolloutInput, RolloutResult } from '../workflows/release';
import { api } from './api';
import { table, when, withDb, type Say } from './output';
import { failureMessage, uiLink } from './pipelines';

const tokenOf = (options: { token?: string }) => options.token ?? process.env.FLYWHEEL_TOKEN;

/** Actions the CLI does itself (no workflow to authorise them) check the admin token here. */
async function requireAdmin(db: Db, options: { token?: string }, action: string): Promise<void> {
  if (!(await verifyToken(db, tokenOf(options), ['admin']))) throw new ConfigError(`${action} needs an admin token (--token or FLYWHEEL_TOKEN)`);
}
const actorHint = () => `cli:${process.env.USER ?? 'unknown'}`;

/** A grant for one workflow from the admin token checked here: the token itself never reaches Temporal's history. */
async function grantFor(options: { token?: string }, request: string, claims: Omit<GrantRequest, 'actor' | 'scope'>): Promise<Grant> {
  const token = tokenOf(options);
  const grant = await withDb((db) => grantFromToken(db, token, claims));
  if (!grant) {
    throw new ConfigError(`${request} needs an admin token (--token or FLYWHEEL_TOKEN; create one with \`flywheel tokens create <name> --scope admin\`)${token ? ': the token given is unknown, revoked or not an admin token' : ''}`);
  }
  return grant;
}

/** `model@version`, `model@alias` or `model` (= @champion). */
async function findModelVersion(db: Db, ref: string): Promise<{ name: string; version: number }> {
  const at = ref.lastIndexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const pointer = at < 0 ? 'champion' : ref.slice(at + 1).replace(/^v(?=\d+$)/, '');
  const model = await findRegisteredModel(db, name);
  if (!model) throw new ConfigError(`no registered model "${name}" (see \`flywheel models list\`)`);
  if (/^\d+$/.test(pointer)) {
    const row = await findVersion(db, name, Number(pointer));
    if (!row) throw new ConfigError(`model ${name} has no version ${pointer}`);
    return { name, version: row.version };
  }
  const aliased = await findVersionByAlias(db, name, pointer);
  if (!aliased) throw new ConfigError(`model ${name} has no alias @${pointer}`);
  return { name, version: aliased.version };
}

async function runWorkflow<T>(type: string, workflowId: string, args: unknown[], say: Say): Promise<T> {
  const config = loadConfig();
  const client = await temporalClient(config.temporal);
  try {
    const handle = await client.workflow.start(type, { workflowId, taskQueue: config.taskQueues.main, args });
    return await handle.result() as T;
  } catch (error) {
    say(`workflow ${workflowId}: ${uiLink(config, workflowId)}`);
    throw new Error(failureMessage(error));
  } finally {
    await client.connection.close();
  }
}

async function listModels(say: Say): Promise<void> {
  await withDb(async (db) => {
    const models = await listRegisteredModels(db);
    if (!models.length) return say('no registered models yet');
    const rows = [['MODEL', 'TASK', 'VERSIONS', 'ALIASES', 'ROLLOUT']];
    for (const m of models) {
      const n = m.versionCount;
      const aliases = m.aliases;
      const [route] = await db.select().from(trafficRoutes).where(eq(trafficRoutes.modelName, m.name));
      rows.push([m.name, m.task ?? '-', String(n), aliases.map((a) => `@${a.alias}=v${a.version}`).join(' ') || '-',
        route ? `${route.mode} v${route.candidateVersion} ${Math.round(route.weight * 100)} %` : '-']);
    }
    table(rows, say);
  });
}

async function showModel(ref: string, say: Say): Promise<void> {
  await withDb(async (db) => {
    if (!ref.includes('@')) {
      const model = await findRegisteredModel(db, ref);
      if (!model) throw new ConfigError(`no registered model "${ref}"`);
      const versions = await listModelVersions(db, ref);
      const aliases = model.aliases;
      say(`${ref} (${model.task})  ${aliases.map((a) => `@${a.alias}=v${a.version}`).join(' ')}`);
      const rows = [['VERSION', 'STATUS', 'GATE', 'REGISTERED', 'METRICS', 'ALIASES']];
      for (const v of versions) {
        rows.push([`v${v.version}`, v.status, v.tags.gate ?? '-', when(v.createdAt),
          Object.entries(v.metrics).filter(([k]) => ['rmse', 'r2', 'accuracy', 'roc_auc', 'f1'].includes(k)).map(([k, x]) => `${k}=${Number(x.toPrecision(4))}`).join(' '),
          v.aliases.map((a) => `@${a}`).join(' ')]);
      }
      table(rows, say);
      const events = await listAliasEvents(db, { modelName: ref, limit: 10 });
      if (events.length) say('alias moves (newest first):');
      for (const e of events) say(`  ${when(e.at)}  @${e.alias}  v${e.fromVersion ?? '-'} → ${e.toVersion === null ? 'deleted' : `v${e.toVersion}`}  by ${e.actor}: ${e.reason}`);
      return;
    }
    const { name, version } = await findModelVersion(db, ref);
    const v = await findVersion(db, name, version);
    say(`${name} v${version}  ${v!.status}  ${v!.aliases.map((a) => `@${a}`).join(' ')}`);
    table([
      ['registered', when(v!.createdAt)], ['run', v!.runId ?? '-'], ['dataset', v!.datasetVersionId ?? '-'], ['workflow', v!.workflowId ?? (v!.source ? `API, source ${v!.source}` : '-')],
      ['code', v!.codeVersion ?? '-'], ['tags', Object.entries(v!.tags).map(([k, x]) => `${k}=${x}`).join(' ') || '-'],
    ], say);
    say('metrics (holdout):');
    for (const [k, x] of Object.entries(v!.metrics)) say(`  ${k.padEnd(30)} ${Number(x.toPrecision(5))}${v!.evaluation?.baseline?.metrics[k] !== undefined ? `   champion v${v!.evaluation.baseline.version}: ${Number(v!.evaluation.baseline.metrics[k]!.toPrecision(5))}` : ''}`);
    const evaluation = v!.evaluation;
    if (evaluation) {
      say(`gate: ${evaluation.gate.passed ? 'passed' : 'FAILED'}`);
      for (const c of evaluation.gate.checks) say(`  ${c.passed ? '✓' : '✗'} ${c.metric} ${c.rule}${c.skipped ? ` (skipped: ${c.skipped})` : ''}`);
      for (const f of evaluation.gate.failures) say(`    ${f}`);
      say(`report: s3://…/${evaluation.reportKey}`);
      for (const [plot, key] of Object.entries(evaluation.plots)) say(`  plot ${plot.padEnd(18)} ${key}`);
    }
    const approvals = await listApprovals(db, name, version);
    for (const a of approvals) say(`approval: ${a.status}${a.actor ? ` by ${a.actor}` : ''}${a.comment ? `: ${a.comment}` : ''} (${a.workflowId})`);
  });
}

async function moveAlias(ref: string, alias: string, options: { token?: string; reason?: string }, say: Say): Promise<void> {
  const { name, version } = await withDb((db) => findModelVersion(db, ref));
  const workflowId = `alias-${name}-${alias}-${Date.now().toString(36)}`;
  const grant = await grantFor(options, `moving ${name}@${alias}`, { model: name, action: 'alias', workflowId, alias, version });
  const input: AliasInput = { action: 'alias', modelName: name, alias, version, grant, reason: options.reason ?? `set by ${actorHint()}` };
  const result = await runWorkflow<AliasResult>('aliasWorkflow', workflowId, [input], say);
  say(`${name}@${alias}: v${result.fromVersion ?? '-'} → v${result.toVersion} (by ${result.actor})`);
}

async function rollback(model: string, options: { alias: string; token?: string; reason?: string }, say: Say): Promise<void> {
  const started = performance.now();
  const workflowId = `rollback-${model}-${options.alias}-${Date.now().toString(36)}`;
  const grant = await grantFor(options, `rolling back ${model}@${options.alias}`, { model, action: 'rollback', workflowId, alias: options.alias });
  const input: AliasInput = { action: 'rollback', modelName: model, alias: options.alias, grant, reason: options.reason ?? `rollback by ${actorHint()}` };
  const result = await runWorkflow<AliasResult>('aliasWorkflow', workflowId, [input], say);
  // The serving process reloads on the NOTIFY of the move; confirm it answers with the restored version.
  const config = loadConfig();
  let confirmed = false;
  for (let i = 0; i < 50 && !confirmed; i++) {
    const body = await fetch(`${config.serving.url}/v2/models/${encodeURIComponent(model)}`).then((r) => (r.ok ? r.json() : undefined), () => undefined) as { versions?: string[] } | undefined;
    confirmed = body?.versions?.includes(String(result.toVersion)) ?? false;
    if (!confirmed) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  say(`${model}@${options.alias}: v${result.fromVersion} → v${result.toVersion} (rolled back by ${result.actor}); serving ${confirmed ? 'answers with it' : 'not confirmed'} after ${Math.round(performance.now() - started)} ms`);
}

async function rollout(ref: string, options: { strategy: string; steps: string; stepDuration: string; split: string; duration: string; maxErrorRate: string; token?: string; reason?: string; wait?: boolean }, say: Say): Promise<void> {
  const { name, version } = await withDb((db) => findModelVersion(db, ref));
  durationMs(options.stepDuration);
  durationMs(options.duration);
  let strategy: RolloutInput['strategy'];
  if (options.strategy === 'canary') {
    const steps = options.steps.split(',').map(Number);
    if (steps.some((s) => !(s > 0 && s <= 100)) || steps[steps.length - 1] !== 100) throw new ConfigError(`--steps must be percentages ending at 100, got "${options.steps}"`);
    strategy = { kind: 'canary', steps, stepDuration: options.stepDuration, health: { maxErrorRate: Number(options.maxErrorRate), maxPredictionPsi: 0.25, minRequests: 20 } };
  } else if (options.strategy === 'ab') {
    const split = Number(options.split);
    if (!(split > 0 && split < 1)) throw new ConfigError(`--split must be a share between 0 and 1, got "${options.split}"`);
    strategy = { kind: 'ab', split, duration: options.duration };
  } else if (options.strategy === 'shadow') strategy = { kind: 'shadow', duration: options.duration };
  else throw new ConfigError(`--strategy must be canary, ab or shadow, got "${options.strategy}"`);
  const workflowId = `rollout-${name}-v${version}-${Date.now().toString(36)}`;
  const grant = await grantFor(options, `a rollout of ${name} v${version}`, { model: name, action: 'rollout', workflowId, alias: 'champion', version });
  const input: RolloutInput = { modelName: name, alias: 'champion', candidateVersion: version, strategy, reason: options.reason ?? `${options.strategy} by ${actorHint()}`, grant };
  say(`${options.strategy} of ${name} v${version}: workflow ${workflowId} (${uiLink(loadConfig(), workflowId)})`);
  const result = await runWorkflow<RolloutResult>('rolloutWorkflow', workflowId, [input], say);
  say(`outcome: ${result.outcome}${result.reason ? ` (${result.reason})` : ''}`);
  for (const s of result.steps) {
    if (s.health) say(`  ${String(s.percent).padStart(3)} %  requests ${s.health.candidate.requests}  errors ${(s.health.candidate.errorRate * 100).toFixed(1)} %  p99 ${s.health.candidate.p99Ms?.toFixed(2) ?? '-'} ms  psi ${s.health.predictionPsi?.toFixed(3) ?? '-'}`);
  }
  for (const v of result.variants ?? []) say(`  v${v.version}: ${v.requests} requests, ${v.errors} errors, ${v.labels} labels${v.metric ? `, ${v.metric.name} ${v.metric.value.toFixed(4)}` : ''}`);
  if (result.shadow) say(`  shadow: ${result.shadow.requests} mirrored, ${result.shadow.errors} failed, ${result.shadow.meanAbsDifference !== null ? `mean |difference| ${result.shadow.meanAbsDifference.toFixed(4)}` : `agreement ${((result.shadow.agreement ?? 0) * 100).toFixed(1)} %`}`);
}

export async function approve(ref: string, options: { reject?: boolean; comment?: string; token?: string }, say: Say): Promise<void> {
  const { name, version } = await withDb(async (db) => {
    const at = ref.lastIndexOf('@');
    if (at < 0 || !/^v?\d+$/.test(ref.slice(at + 1))) throw new ConfigError(`approve takes <model>@<version>, got "${ref}"`);
    return findModelVersion(db, ref);
  });
  const [pending] = await withDb((db) => listApprovals(db, name, version, 'pending'));
  if (!pending) throw new ConfigError(`no release of ${name} v${version} is waiting for an approval`);
  const grant = await grantFor(options, `approving ${name} v${version}`, { model: name, action: 'approve', workflowId: pending.workflowId, version });
  const config = loadConfig();
  const client = await temporalClient(config.temporal);
  try {
    const decision: ApprovalDecision = { version, approved: !options.reject, grant, comment: options.comment };
    const { actor } = await client.workflow.getHandle(pending.workflowId).executeUpdate('approve', { args: [decision] }) as { actor: string };
    say(`${name} v${version} ${options.reject ? 'rejected' : 'approved'} by ${actor}; release ${pending.workflowId} goes on`);
  } catch (error) {
    throw new Error(failureMessage(error));
  } finally {
    await client.connection.close();
  }
}

export function registerModelCommands(program: Command, say: Say): void {
  const models = program.command('models').description('the model registry: versions, aliases, releases');
  models.command('list').description('registered models with their aliases and rollouts').action(() => listModels(say));
  models.command('show <ref>').description('a model (all versions, alias history) or model@version|@alias (lineage, metrics, gate, plots)')
    .action((ref: string) => showModel(ref, say));
  const withToken = (c: Command) => c.option('--token <token>', 'admin token (default: FLYWHEEL_TOKEN)').option('--reason <text>', 'why (kept in the audit trail)');
  withToken(models.command('alias <ref> <alias>').description('point model@alias at a version (ref: model@version)'))
    .action((ref: string, alias: string, options: { token?: string; reason?: string }) => moveAlias(ref, alias, options, say));
  withToken(models.command('rollback <model>').description('restore the version that held the alias before the current one')
    .option('--alias <alias>', 'alias to roll back', 'champion'))
    .action((model: string, options: { alias: string; token?: string; reason?: string }) => rollback(model, options, say));
  withToken(models.command('rollout <ref>').description('canary, A/B or shadow rollout of model@version against @champion')
    .option('--strategy <kind>', 'canary | ab | shadow', 'canary')
    .option('--steps <list>', 'canary: percent per step', '5,25,50,100')
    .option('--step-duration <d>', 'canary: time per step', '5m')
    .option('--max-error-rate <share>', 'canary: health gate on the candidate\'s error rate', '0.05')
    .option('--split <share>', 'A/B: share of keys sent to the candidate', '0.5')
    .option('--duration <d>', 'A/B and shadow: how long', '1h'))
    .action((ref: string, options: Parameters<typeof rollout>[1]) => rollout(ref, options, say));
  withToken(models.command('approve <ref>').description('approve (or --reject) a release waiting for model@version')
    .option('--reject', 'reject instead').option('--comment <text>', 'kept with the decision'))
    .action((ref: string, options: { reject?: boolean; comment?: string; token?: string }) => approve(ref, options, say));
  models.command('tag <ref> <pairs...>').description('set tags on model@version: key=value …').action(async (ref: string, pairs: string[]) => {
    const tags = Object.fromEntries(pairs.map((p) => {
      const eqAt = p.indexOf('=');
      if (eqAt < 1) throw new ConfigError(`tags are key=value, got "${p}"`);
      return [p.slice(0, eqAt), p.slice(eqAt + 1)];
    }));
    // Through the API: a tag is a write, checked against the caller's token at the server.
    const at = ref.lastIndexOf('@');
    const name = at < 0 ? ref : ref.slice(0, at);
    const pointer = at < 0 ? 'champion' : ref.slice(at + 1).replace(/^v(?=\d+$)/, '');
    const model = await api<{ versions: { version: number; aliases: string[] }[] }>('GET', `/api/v1/models/${encodeURIComponent(name)}`);
    const version = /^\d+$/.test(pointer) ? Number(pointer) : model.versions.find((v) => v.aliases.includes(pointer))?.version;
    if (version === undefined) throw new ConfigError(`model ${name} has no alias @${pointer}`);
    await api('PATCH', `/api/v1/models/${encodeURIComponent(name)}/versions/${version}/tags`, { tags });
    say(`${name} v${version}: ${pairs.join(' ')}`);
  });
  withToken(models.command('archive <ref>').description('archive model@version (kept for lineage; no alias may point at it)'))
    .action(async (ref: string, options: { token?: string }) => withDb(async (db) => {
      await requireAdmin(db, options, 'archiving');
      const { name, version } = await findModelVersion(db, ref);
      const held = (await findVersion(db, name, version))!.aliases;
      if (held.length) throw new ConfigError(`${name} v${version} holds ${held.map((a) => `@${a}`).join(', ')}; move the alias first`);
      await archiveModelVersion(db, name, version);
      say(`${name} v${version} archived`);
    }));
  const hooks = models.command('webhook').description('registry webhooks: POSTs on new versions and alias moves');
  hooks.command('add <url>').option('--model <name>', 'one model only (default: all)')
    .option('--events <list>', 'model_version.created,model_version_alias.moved', 'model_version.created,model_version_alias.moved')
    .option('--secret <secret>', 'HMAC-SHA256 key for the x-flywheel-signature header')
    .option('--token <token>', 'admin token (default: FLYWHEEL_TOKEN)')
    .action(async (url: string, options: { model?: string; events: string; secret?: string; token?: string }) => withDb(async (db) => {
      await requireAdmin(db, options, 'adding a webhook');
      if (!/^https?:\/\//.test(url)) throw new ConfigError(`webhook url must be http(s)://, got "${url}"`);
      const events = options.events.split(',').map((e) => e.trim());
      const bad = events.filter((e) => !WEBHOOK_EVENTS.includes(e as WebhookEventName));
      if (bad.length) throw new ConfigError(`unknown event(s) ${bad.join(', ')}`);
      const row = await addWebhook(db, { url, events: events as WebhookEventName[], modelName: options.model ?? null, secret: options.secret ?? null });
      say(`webhook #${row.id} → ${url} on ${events.join(', ')}${options.model ? ` for ${options.model}` : ''}`);
    }));
  hooks.command('list').action(() => withDb(async (db) => {
    const rows = await listWebhooks(db);
    if (!rows.length) return say('no webhooks');
    table([['ID', 'URL', 'EVENTS', 'MODEL'], ...rows.map((r) => [`#${r.id}`, r.url, r.events.join(','), r.modelName ?? '(all)'])], say);
  }));
  hooks.command('remove <id>').option('--token <token>', 'admin token (default: FLYWHEEL_TOKEN)').action((id: string, options: { token?: string }) => withDb(async (db) => {
    await requireAdmin(db, options, 'removing a webhook');
    const removed = await removeWebhook(db, Number(id.replace(/^#/, '')));
    say(removed ? `webhook ${id} removed` : `no webhook ${id}`);
  }));

  program.command('approve <ref>').description('approve a release waiting for model@version (as `models approve`)')
    .option('--reject', 'reject instead').option('--comment <text>', 'kept with the decision').option('--token <token>', 'admin token (default: FLYWHEEL_TOKEN)')
    .action((ref: string, options: { reject?: boolean; comment?: string; token?: string }) => approve(ref, options, say));

  const tokens = program.command('tokens').description('API tokens: admin (alias moves, deploys, rollbacks, approvals) and infer (inference keys)');
  tokens.command('create <name>').option('--scope <scope>', TOKEN_SCOPES.join(' | '), 'admin').option('--token <token>', 'an admin token (needed once one exists)')
    .action((name: string, options: { scope: string; token?: string }) => withDb(async (db) => {
      const token = await createToken(db, name, options.scope as TokenScope, tokenOf(options));
      say(token);
      say(`(${options.scope} token "${name}": shown once, store it now)`);
    }));
  tokens.command('list').action(() => withDb(async (db) => {
    const rows = await db.select().from(apiTokens).orderBy(asc(apiTokens.id));
    if (!rows.length) return say('no tokens');
    table([['ID', 'NAME', 'SCOPE', 'CREATED', 'REVOKED'], ...rows.map((r) => [`#${r.id}`, r.name, r.scope, when(r.createdAt), when(r.revokedAt)])], say);
  }));
  tokens.command('revoke <id>').option('--token <token>', 'an admin token').action((id: string, options: { token?: string }) => withDb(async (db) => {
    await requireAdmin(db, options, 'revoking');
    const revoked = await db.update(apiTokens).set({ revokedAt: new Date() }).where(eq(apiTokens.id, Number(id.replace(/^#/, '')))).returning();
    say(revoked.length ? `token ${id} revoked` : `no token ${id}`);
  }));
}
