/** Flywheel's own API under /api/v1; each module declares one area. */
import type { RouteSpec } from '../route';
import { datasetRoutes } from './datasets';
import { evaluationRoutes } from './evaluations';
import { featureRoutes } from './features';
import { modelRoutes } from './models';
import { monitorRoutes } from './monitors';
import { pipelineRoutes } from './pipelines';
import { queueWaitRoutes } from './queueWaits';
import { runRoutes } from './runs';
import { scheduleRoutes } from './schedules';
import { timelineRoutes } from './timelines';
import { tokenRoutes } from './tokens';
import { uploadRoutes } from './uploads';
import { webhookRoutes } from './webhooks';

export const apiRoutes: RouteSpec[] = [
  ...runRoutes,
  ...pipelineRoutes,
  ...modelRoutes,
  ...datasetRoutes,
  ...featureRoutes,
  ...scheduleRoutes,
  ...tokenRoutes,
  ...webhookRoutes,
  ...uploadRoutes,
  // Read-only views the UI draws (web/).
  ...monitorRoutes,
  ...evaluationRoutes,
  ...timelineRoutes,
  ...queueWaitRoutes,
];
