/** The serving process: answers predictions with every deployed model's current alias target. */
import { createServer } from 'node:http';
import { connectDb } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { loadConfig } from '../config/env';
import { shortenSlices } from '../config/priority';
import { componentLogger } from '../observability/log';
import { enableProcessMetrics, trackBacklog } from '../observability/metrics';
import { createServingHandler, limitServer, LOOKUP_CONNECTIONS } from './app';
import { ServedModels } from './models';
import { PredictionLog } from './predictionLog';
import { PredictionRetention } from './retention';

const config = loadConfig();
const log = componentLogger('serving');
if (config.serving.sliceUs > 0) {
  const threads = shortenSlices(process.pid, config.serving.sliceUs);
  log.info(
    { sliceUs: config.serving.sliceUs, threads },
    threads > 0
      ? `flywheel serving: ${threads} threads run with ${config.serving.sliceUs} µs scheduler slices`
      : 'flywheel serving: the kernel keeps its default scheduler slice (custom slices need Linux 6.12 and perl)',
  );
}
enableProcessMetrics();
const db = connectDb(config.databaseUrl);
/**
 * Online feature lookups get connections of their own (serving/app.ts `lookupDb`), prepared and planned per call
 * unless FLYWHEEL_SERVING_PREPARED_LOOKUPS=0.
 */
const lookupDb = connectDb(config.databaseUrl, LOOKUP_CONNECTIONS, {
  customPlans: config.serving.preparedLookups,
  sessionSliceUs: config.serving.sliceUs,
});
const objects = new S3ObjectStore(config.s3);
const models = new ServedModels(db, objects, {
  alias: config.serving.alias,
  requireApiKey: config.serving.requireApiKey,
  url: config.serving.url,
});
const predictionLog = new PredictionLog(db);
trackBacklog(() => predictionLog.backlog);
const server = limitServer(createServer(createServingHandler(models, predictionLog, { lookupDb })));
server.listen(config.serving.port, config.serving.host, () =>
  log.info({ url: config.serving.url }, `flywheel serving on ${config.serving.url}`),
);
await models.start();
const retention = new PredictionRetention(db, {
  days: config.serving.predictionsRetentionDays,
  checkpoints: { days: config.serving.checkpointRetentionDays, objects },
});
retention.start();
const served = models.list().map((m) => `${m.name} v${m.version}`);
log.info(
  { backend: models.backend, models: served },
  `flywheel serving ready (backend ${models.backend}): ${served.join(', ') || 'no deployments yet'}`,
);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'flywheel serving: stopping');
    const stopping = models.stop();
    server.close(async () => {
      await stopping;
      await retention.stop();
      await predictionLog.close();
      await db.$client.end();
      await lookupDb.$client.end();
      process.exit(0);
    });
  });
}
