/** Flywheel's own API under /api/v1; each module declares one area. */
import type { RouteSpec } from '../route';
import { modelRoutes } from './models';

export const apiRoutes: RouteSpec[] = [
  ...modelRoutes,
];
