/** MLflow's REST API (2.0), route by route; each module declares one area. */
import type { RouteSpec } from '../route';
import { trackingRoutes } from './tracking';
import { artifactRoutes } from './artifacts';
import { loggedModelRoutes } from './loggedModels';
import { registryRoutes } from './registry';

export const mlflowRoutes: RouteSpec[] = [
  ...trackingRoutes,
  ...artifactRoutes,
  ...loggedModelRoutes,
  ...registryRoutes,
];
