/** Flywheel's own API under /api/v1; each module declares one area. */
import type { RouteSpec } from '../route';
import { datasetRoutes } from './datasets';
import { modelRoutes } from './models';
import { pipelineRoutes } from './pipelines';
import { runRoutes } from './runs';
import { scheduleRoutes } from './schedules';

export const apiRoutes: RouteSpec[] = [
  ...runRoutes,
  ...pipelineRoutes,
  ...modelRoutes,
  ...datasetRoutes,
  ...scheduleRoutes,
];
