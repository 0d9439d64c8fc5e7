/** The serving process: answers predictions with every deployed model's current alias target. */
import { createServer } from 'node:http';
import { connectDb } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { loadConfig } from '../config/env';
import { createServingHandler, limitServer } from './app';
import { ServedModels } from './models';
import { PredictionLog } from './predictionLog';
import { PredictionRetention } from './retention';

const config = loadConfig();
const db = connectDb(config.databaseUrl);
const models = new ServedModels(db, new S3ObjectStore(config.s3), {
  alias: config.serving.alias,
  requireApiKey: config.serving.requireApiKey,
});
const predictionLog = new PredictionLog(db);
const server = limitServer(createServer(createServingHandler(models, predictionLog)));
server.listen(config.serving.port, config.serving.host, () => console.log(`flywheel serving on ${config.serving.url}`));
await models.start();
const retention = new PredictionRetention(db, { days: config.serving.predictionsRetentionDays });
retention.start();
console.log(
  `flywheel serving ready (backend ${models.backend}): ${
    models
      .list()
      .map((m) => `${m.name} v${m.version}`)
      .join(', ') || 'no deployments yet'
  }`,
);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    models.stop();
    server.close(async () => {
      await retention.stop();
      await predictionLog.close();
      await db.$client.end();
      process.exit(0);
    });
  });
}
