/**
 * The models a serving process answers with (TF.js or ONNX, behind one runner interface): one per deployment, swapped
 * atomically when its alias moves, plus the candidate of a rollout's traffic route. Reloads on a Postgres NOTIFY from
 * alias moves and route changes (and polls), and reports what it loaded as a replica (store/servingReplicas.ts).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { servedView, type ServedFeatureView } from '../features/sql';
import type pg from 'pg';
import { ApiError } from '../config/errors';
import { listTrafficRoutes, servedVersions } from '../store/deployments';
import { findFeatureView } from '../features/store';
import { findModelVersion, findModelVersions, SERVING_CHANNEL } from '../store/registry';
import { activeTokenHashes, hashToken } from '../store/tokens';
import { pruneServingReplicas, removeServingReplica, reportServingReplica } from '../store/servingReplicas';
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';
import { loadTf, type TfModule } from '../training/backend';
import { loadRunner } from '../inference/load';
import type { ModelRunner } from '../inference/runner';
import { unitHash } from '../ml/hash';
import { componentLogger } from '../observability/log';

const log = componentLogger('serving');

export interface LoadedModel {
  name: string;
  version: number;
  alias: string;
  /** The model, TF.js or ONNX: its features, target and predictions. */
  runner: ModelRunner;
  /** Feature views to look inputs up in (a model trained on a feature-built table). */
  featureViews?: ServedFeatureView[];
}

/** Versions kept loaded besides the alias targets (for rollbacks, rollouts and `/versions/{v}` requests). */
const MAX_CACHED = 8;

export interface Route {
  mode: 'canary' | 'ab' | 'shadow';
  workflowId: string;
  weight: number;
  base: LoadedModel;
  candidate: LoadedModel;
}

/** Where one request goes: the model that answers, and a shadow that only listens. */
export interface Choice {
  served: LoadedModel;
  shadow?: LoadedModel;
}

export interface ServedModelsOptions {
  /** The alias it answers with. @default 'champion' */
  alias?: string;
  /** Inference needs an active infer or admin token. @default false */
  requireApiKey?: boolean;
  /** Where it is reachable, as its replica row tells deploys and operators. @default none */
  url?: string;
  /** How often it reports itself alive; deploys count it gone after 3 beats unseen. @default 5000 */
  beatMs?: number;
  /** Whether it registers as a serving replica (false behaves as a serving process older than the registry). */
  report?: boolean;
}

export class ServedModels {
  private readonly byName = new Map<string, LoadedModel>();
  private readonly routes = new Map<string, Route>();
  private apiKeys = new Set<string>();
  private listener?: pg.PoolClient;
  private dirty = false;
  private readonly byVersion = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel | undefined>>();
  private readonly failed = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private relisten?: NodeJS.Timeout;
  private stopped = false;
  private refreshing?: Promise<void>;
  private beat?: NodeJS.Timeout;
  /** Reports run one at a time, so a stop's delete comes after the last one. */
  private reporting: Promise<void> = Promise.resolve();
  private reported?: string;
  /** This process's replica row (random per start: a restarted process is a new replica). */
  readonly replicaId = randomUUID();
  tf?: TfModule;
  backend?: string;
  ready = false;

  private readonly views = new Map<string, { view: ServedFeatureView; at: number }>();

  constructor(
    readonly db: Db,
    private readonly store: ObjectStore,
    private readonly options: ServedModelsOptions = {},
  ) {}

  get alias(): string {
    return this.options.alias ?? 'champion';
  }

  get requiresApiKey(): boolean {
    return this.options.requireApiKey === true;
  }

  async start(pollMs = 1_000): Promise<void> {
    const loaded = await loadTf();
    this.tf = loaded.tf;
    this.backend = loaded.backend;
    await this.refresh();
    this.ready = true;
    const refresh = () =>
      void this.refresh().catch((error) => log.error(`model refresh failed: ${(error as Error).message}`));
    this.timer = setInterval(refresh, pollMs);
    this.timer.unref();
    if (this.options.report !== false) {
      this.beat = setInterval(() => void this.report(true), this.beatMs);
      this.beat.unref();
      await this.report(true);
    }
    await this.listen(refresh, pollMs);
  }

  private get beatMs(): number {
    return this.options.beatMs ?? 5_000;
  }

  /**
   * Writes this replica's row: what it answers with, each rollout candidate it loaded, what it could not load. After a
   * reload only when that changed; on a beat always (the row's last_seen_at is its liveness).
   */
  private report(beat = false): Promise<void> {
    if (this.options.report === false) return this.reporting;
    this.reporting = this.reporting.then(async () => {
      if (this.stopped || !this.ready) return;
      const state = {
        models: Object.fromEntries([...this.byName].map(([name, m]) => [name, m.version])),
        routes: Object.fromEntries([...this.routes].map(([name, r]) => [name, r.candidate.version])),
        failed: Object.fromEntries(this.failed),
      };
      const fingerprint = JSON.stringify(state);
      if (!beat && fingerprint === this.reported) return;
      try {
        await reportServingReplica(this.db, {
          id: this.replicaId,
          alias: this.alias,
          url: this.options.url ?? null,
          host: hostname(),
          pid: process.pid,
          beatMs: this.beatMs,
          ...state,
        });
        this.reported = fingerprint;
        if (beat) await pruneServingReplicas(this.db);
      } catch (error) {
        // Deploys count it gone after a few missed beats; it serves all the same.
        log.error(`serving: cannot report this replica (${(error as Error).message})`);
      }
    });
    return this.reporting;
  }

  /** Whether a LISTEN connection is open now (polling covers the gaps). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  /**
   * LISTENs on one pooled connection. When that connection drops (a Postgres restart, a killed backend), it is
   * released and opened again after a backoff, so alias moves reach serving at once again, not only at the next poll.
   */
  private async listen(refresh: () => void, pollMs: number, attempt = 0): Promise<void> {
    if (this.stopped) return;
    const retry = () => {
      if (this.stopped) return;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
      this.relisten = setTimeout(() => void this.listen(refresh, pollMs, attempt + 1), delay);
      this.relisten.unref();
    };
    let client: pg.PoolClient | undefined;
    let lost = false;
    const drop = () => {
      if (lost) return false;
      lost = true;
      if (this.listener === client) this.listener = undefined;
      client?.release(true);
      return true;
    };
    try {
      client = await this.db.$client.connect();
      client.on('notification', refresh);
      client.on('error', (error) => {
        log.error(`serving: NOTIFY listener lost (${error.message}); polling every ${pollMs} ms until it is back`);
        if (drop()) retry();
      });
      await client.query(`LISTEN ${SERVING_CHANNEL}`);
      this.listener = client;
      // A move made while the listener was down was picked up by polling; one refresh closes any gap.
      if (attempt > 0) refresh();
      attempt = 0;
    } catch (error) {
      log.error(`serving: cannot LISTEN (${(error as Error).message}); polling every ${pollMs} ms`);
      if (drop()) retry();
    }
  }

  /** Stops reloading and removes its replica row (best effort: a row left behind counts as gone after 3 beats). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.beat);
    clearTimeout(this.relisten);
    this.listener?.release(true);
    this.listener = undefined;
    await this.reporting;
    if (this.reported === undefined) return;
    await removeServingReplica(this.db, this.replicaId).catch((error: unknown) =>
      log.error(`serving: cannot remove this replica's row (${(error as Error).message})`),
    );
  }

  /** A key is required and this one is not an active infer or admin token: the reason, else undefined. */
  refuseKey(key: string | undefined): string | undefined {
    if (!this.requiresApiKey) return undefined;
    if (!key) return 'an API key is required (Authorization: Bearer <key> or x-api-key)';
    return this.apiKeys.has(hashToken(key)) ? undefined : 'the API key is unknown or revoked';
  }

  /**
   * The model for a request by alias: the alias target, or under a rollout the candidate for `weight` of the keys
   * (sticky per key and rollout), or the alias target with the candidate as a shadow.
   */
  choose(name: string, key: string): Choice | undefined {
    const served = this.byName.get(name);
    if (!served) return undefined;
    const route = this.routes.get(name);
    if (!route || route.base.version !== served.version) return { served };
    if (route.mode === 'shadow') return { served, shadow: route.candidate };
    return unitHash(`${route.workflowId}:${key}`) < route.weight ? { served: route.candidate } : { served };
  }

  /** A registered feature view as the lookup needs it (`name` = its latest version), cached for a minute. */
  async featureView(ref: string): Promise<ServedFeatureView | undefined> {
    const cached = this.views.get(ref);
    if (cached && Date.now() - cached.at < 60_000) return cached.view;
    const row = await findFeatureView(this.db, ref).catch((error: unknown) => {
      if (error instanceof ApiError && error.status === 404) return undefined;
      throw error;
    });
    if (!row) return undefined;
    const view = servedView(row);
    this.views.set(ref, { view, at: Date.now() });
    return view;
  }

  route(name: string): Route | undefined {
    return this.routes.get(name);
  }

  get(name: string): LoadedModel | undefined {
    return this.byName.get(name);
  }

  /** A specific version, loaded from the registry on first use. */
  async getVersion(name: string, version: number): Promise<LoadedModel | undefined> {
    const current = this.byName.get(name);
    if (current?.version === version) return current;
    const key = `${name}:${version}`;
    const cached = this.byVersion.get(key);
    if (cached) return cached;
    // Concurrent first requests for one version share its load (one ONNX session, one TF.js model).
    let loading = this.loading.get(key);
    if (!loading) {
      loading = (async () => {
        const row = await findModelVersion(this.db, name, version);
        if (!row) return undefined;
        const loaded = await this.load(name, version, 'version', row.artifactKey, row.params);
        this.remember(loaded);
        return loaded;
      })().finally(() => this.loading.delete(key));
      this.loading.set(key, loading);
    }
    return loading;
  }

  /** Caches a version by number; past `MAX_CACHED`, the oldest not in use is freed (after its requests finish). */
  private remember(loaded: LoadedModel): void {
    const key = `${loaded.name}:${loaded.version}`;
    this.byVersion.delete(key);
    this.byVersion.set(key, loaded);
    const inUse = (m: LoadedModel) =>
      [...this.byName.values(), ...[...this.routes.values()].flatMap((r) => [r.base, r.candidate])].some(
        (u) => u.runner === m.runner,
      );
    for (const [oldKey, old] of this.byVersion) {
      if (this.byVersion.size <= MAX_CACHED) break;
      if (oldKey === key || inUse(old)) continue;
      this.byVersion.delete(oldKey);
      setTimeout(() => old.runner.dispose(), 30_000).unref();
    }
  }

  list(): LoadedModel[] {
    return [...this.byName.values()];
  }

  /** Loads new targets first, then swaps the reference: in-flight requests finish on the model they started with. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      // A change notified while a refresh reads: read again when it ends.
      this.dirty = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.dirty = false;
          await this.reload();
        } while (this.dirty);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async reload(): Promise<void> {
    const served = await servedVersions(this.db, this.alias);
    const versions = await findModelVersions(
      this.db,
      served.map((d) => ({ modelName: d.name, version: d.version })),
    );
    const rows = served.flatMap((d) =>
      versions
        .filter((v) => v.modelName === d.name && v.version === d.version)
        .map((v) => ({ name: d.name, version: d.version, artifactKey: v.artifactKey, params: v.params })),
    );
    for (const row of rows) {
      const previous = this.byName.get(row.name);
      if (previous?.version === row.version || this.failed.get(row.name) === row.version) continue;
      try {
        // A version served before (a rollback, a promoted canary) is reused from the cache: the swap is immediate.
        const loaded =
          this.byVersion.get(`${row.name}:${row.version}`) ??
          (await this.load(row.name, row.version, this.alias, row.artifactKey, row.params));
        this.byName.set(row.name, { ...loaded, alias: this.alias });
        this.failed.delete(row.name);
      } catch (error) {
        // One unloadable model must not take the others down; it is reported once and retried when its alias moves.
        this.failed.set(row.name, row.version);
        log.error(`serving: cannot load ${row.name} v${row.version}: ${(error as Error).message}`);
        continue;
      }
      // Keep the previous version warm for a rollback; requests that started on it finish on it.
      if (previous) this.remember(previous);
    }
    for (const name of this.byName.keys()) if (!rows.some((r) => r.name === name)) this.byName.delete(name);

    const routes = await listTrafficRoutes(this.db);
    for (const route of routes) {
      const base = this.byName.get(route.modelName);
      if (!base) continue;
      try {
        const candidate = await this.getVersion(route.modelName, route.candidateVersion);
        const baseModel = await this.getVersion(route.modelName, route.baseVersion);
        if (!candidate || !baseModel) continue;
        this.routes.set(route.modelName, {
          mode: route.mode as Route['mode'],
          workflowId: route.workflowId,
          weight: route.weight,
          base: baseModel,
          candidate,
        });
      } catch (error) {
        log.error(
          `serving: cannot load the rollout candidate ${route.modelName} v${route.candidateVersion}: ${(error as Error).message}`,
        );
      }
    }
    for (const name of this.routes.keys()) if (!routes.some((r) => r.modelName === name)) this.routes.delete(name);
    if (this.requiresApiKey) this.apiKeys = await activeTokenHashes(this.db, ['infer', 'admin']);
    await this.report();
  }

  private async load(
    name: string,
    version: number,
    alias: string,
    artifactKey: string | null,
    params: Record<string, unknown>,
  ): Promise<LoadedModel> {
    if (!artifactKey) throw new Error(`v${version} was registered from an outside source and has no Flywheel artifact`);
    const runner = await loadRunner(this.store, artifactKey, { tf: this.tf, backend: this.backend });
    const featureViews = params.featureViews as ServedFeatureView[] | undefined;
    return {
      name,
      version,
      alias,
      runner,
      ...(featureViews?.length ? { featureViews } : {}),
    };
  }
}
