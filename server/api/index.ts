/** Flywheel's own API under /api/v1; each module declares one area. */
import type { RouteSpec } from '../route';
import { modelRoutes } from './models';
import { pipelineRoutes } from './pipelines';
import { runRoutes } from './runs';

export const apiRoutes: RouteSpec[] = [
  ...runRoutes,
  ...pipelineRoutes,
  ...modelRoutes,
];
