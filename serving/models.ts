/** The models a serving process answers with: one per deployment, swapped atomically when its alias moves. */
import type { LayersModel } from '@tensorflow/tfjs';
import { and, eq } from 'drizzle-orm';
import { deployments } from '../schema/deployments';
import { modelVersions } from '../schema/models';
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';
import { loadTf, type TfModule } from '../training/backend';
import { deserializeModel, disposeModel, type ModelArtifact } from '../training/model';
import type { Preprocessor } from '../ml/preprocess';

export interface LoadedModel {
  name: string;
  version: number;
  alias: string;
  model: LayersModel;
  preprocessor: Preprocessor;
}

export class ServedModels {
  private readonly byName = new Map<string, LoadedModel>();
  private readonly byVersion = new Map<string, LoadedModel>();
  private readonly failed = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  tf?: TfModule;
  backend?: string;
  ready = false;

  constructor(private readonly db: Db, private readonly store: ObjectStore, private readonly alias = 'production') {}

  async start(pollMs = 1_000): Promise<void> {
    const loaded = await loadTf();
    this.tf = loaded.tf;
    this.backend = loaded.backend;
    await this.refresh();
    this.ready = true;
    this.timer = setInterval(() => void this.refresh().catch((error) => console.error(`model refresh failed: ${(error as Error).message}`)), pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
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
    const [row] = await this.db.select().from(modelVersions).where(and(eq(modelVersions.modelName, name), eq(modelVersions.version, version)));
    if (!row) return undefined;
    const loaded = await this.load(name, version, 'version', row.artifactKey);
    this.byVersion.set(key, loaded);
    return loaded;
  }

  list(): LoadedModel[] {
    return [...this.byName.values()];
  }

  /** Loads new targets first, then swaps the reference: in-flight requests finish on the model they started with. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const rows = await this.db.select({ name: deployments.modelName, version: deployments.version, artifactKey: modelVersions.artifactKey })
          .from(deployments)
          .innerJoin(modelVersions, and(eq(modelVersions.modelName, deployments.modelName), eq(modelVersions.version, deployments.version)))
          .where(eq(deployments.alias, this.alias));
        for (const row of rows) {
          const previous = this.byName.get(row.name);
          if (previous?.version === row.version || this.failed.get(row.name) === row.version) continue;
          try {
            this.byName.set(row.name, await this.load(row.name, row.version, this.alias, row.artifactKey));
            this.failed.delete(row.name);
          } catch (error) {
            // One unloadable model must not take the others down; it is reported once and retried when its alias moves.
            this.failed.set(row.name, row.version);
            console.error(`serving: cannot load ${row.name} v${row.version}: ${(error as Error).message}`);
            continue;
          }
          // Requests that started on the previous model finish on it; free it afterwards.
          if (previous) setTimeout(() => disposeModel(previous.model), 30_000).unref();
        }
        for (const name of this.byName.keys()) if (!rows.some((r) => r.name === name)) this.byName.delete(name);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async load(name: string, version: number, alias: string, artifactKey: string): Promise<LoadedModel> {
    const artifact = await this.store.getJson<ModelArtifact>(artifactKey);
    return { name, version, alias, model: await deserializeModel(this.tf!, artifact), preprocessor: artifact.preprocessor };
  }
}
