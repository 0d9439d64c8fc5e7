/** All stage activities of the main worker, built from real dependencies. */
import type { ActivityDeps } from './deps';
import { createDeployActivities } from './deploy';
import { createEvaluateActivities } from './evaluate';
import { createFeatureActivities } from '../features/activities';
import { createIngestActivities } from './ingest';
import { createMonitorActivities } from './monitor';
import { createPythonRunActivities } from './pythonRun';
import { createRegistryActivities } from './registry';
import { createReleaseActivities } from './release';
import { createRunActivities } from './runs';
import { createValidateActivities } from './validate';

export function createStageActivities(deps: ActivityDeps) {
  return {
    ...createIngestActivities(deps),
    ...createValidateActivities(deps),
    ...createEvaluateActivities(deps),
    ...createRegistryActivities(deps),
    ...createDeployActivities(deps),
    ...createReleaseActivities(deps),
    ...createFeatureActivities(deps),
    ...createMonitorActivities(deps),
    ...createRunActivities(deps),
    ...createPythonRunActivities(deps),
  };
}

export type StageActivities = ReturnType<typeof createStageActivities>;
export type { TrainInput, TrainResult } from './train';
export type { PythonTrainInput, PythonTrainOutput } from './pythonRun';
export type { IngestResult } from './ingest';
export type { ValidateInput, ValidateResult } from './validate';
export { createTrainActivities } from './train';
