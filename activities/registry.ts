/**
 * Register: a model version with lineage (run, dataset version, params, code version, workflow) and its release
 * evaluation; idempotent per workflow. A candidate that failed its gate is registered too (tag gate=failed), never
 * promoted.
 */
import { registerPipelineVersion, type PipelineVersionInput } from '../store/registry';
import type { ActivityDeps } from './deps';

export type RegisterInput = PipelineVersionInput;

export interface RegisterResult {
  modelName: string;
  version: number;
}

export function createRegistryActivities({ db }: ActivityDeps) {
  return {
    async registerModelVersion(input: RegisterInput): Promise<RegisterResult> {
      return registerPipelineVersion(db, input);
    },
  };
}
