/** `flywheel server`: the API server process. */
import { componentLogger } from '../observability/log';
import { startServer } from './start';

const log = componentLogger('server');
startServer().then(
  (server) => log.info({ url: server.url }, `Flywheel server listening on ${server.url}`),
  (error: unknown) => {
    log.fatal({ err: error }, `server: ${(error as Error).message}`);
    process.exit(1);
  },
);
