/** `flywheel server`: the API server process. */
import { startServer } from './start';

startServer().then(
  (server) => console.log(`Flywheel server listening on ${server.url}`),
  (error: unknown) => {
    console.error(`server: ${(error as Error).message}`);
    process.exit(1);
  },
);
