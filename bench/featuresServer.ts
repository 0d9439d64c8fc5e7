/**
 * bench:features' serving process: Flywheel's HTTP handler (serving/app.ts `createServingHandler`, what serving/main.ts
 * runs) in a process of its own, so that the load generator never shares its event loop. It serves
 * `POST /v2/features` from the online store like the stack's serving process, on 127.0.0.1 and a free port, and
 * prints `{"port": N}` once listening. Models are not loaded (`ServedModels.start()` is not called: no TF.js, no
 * polling): the online lookup does not need them. `GET /bench/pauses` answers what the process paused for since the
 * last `GET /bench/pauses?reset=1` (bench/pauseProbe.ts: event-loop stalls, GC pauses, pg pool waits). Stops on
 * SIGTERM / SIGINT.
 *
 * Started by bench/features.ts as `node --import tsx bench/featuresServer.ts`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServingHandler, LOOKUP_CONNECTIONS } from '../serving/app';
import { ServedModels } from '../serving/models';
import { PredictionLog } from '../serving/predictionLog';
import { closeDb, connectDb } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { loadConfig } from '../config/env';
import { shortenSlices } from '../config/priority';
import { PauseProbe, stampResponses } from './pauseProbe';

const config = loadConfig();
// as serving/main.ts does
if (config.serving.sliceUs > 0) shortenSlices(process.pid, config.serving.sliceUs);
const db = connectDb(config.databaseUrl);
const models = new ServedModels(db, new S3ObjectStore(config.s3));
const predictionLog = new PredictionLog(db);
const lookupDb = connectDb(config.databaseUrl, LOOKUP_CONNECTIONS, {
  customPlans: config.serving.preparedLookups,
  sessionSliceUs: config.serving.sliceUs,
});
const probe = new PauseProbe(() => ({ serving: db.$client, lookups: lookupDb.$client }));
stampResponses();
const handler = createServingHandler(models, predictionLog, { lookupDb });
const server = createServer((request, response) => {
  if (request.method !== 'GET' || !request.url?.startsWith('/bench/pauses')) return handler(request, response);
  const text = JSON.stringify(probe.snapshot());
  if (request.url.endsWith('reset=1')) probe.reset();
  response.writeHead(200, { 'content-type': 'application/json' }).end(text);
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as AddressInfo).port })));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.closeAllConnections();
    server.close(async () => {
      await predictionLog.close();
      await closeDb(db);
      await closeDb(lookupDb);
      process.exit(0);
    });
  });
}
