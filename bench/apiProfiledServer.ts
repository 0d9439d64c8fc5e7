/**
 * bench:api's profiled Flywheel server: server/main.ts, exiting on SIGTERM so that `node --cpu-prof` writes its
 * profile.
 */
process.once('SIGTERM', () => process.exit(0));
await import('../server/main');

export {};
