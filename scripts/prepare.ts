/**
 * Prepares external services for a deployment (compose's `prepare` service; `flywheel up` does the same for the local
 * stack): applies the migrations, creates the bucket and registers Temporal's search attributes. Safe to run again.
 */
import { loadConfig } from '../config/env';
import { componentLogger } from '../observability/log';
import { closeDb, connectDb, migrateDb } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { registerSearchAttributes } from './stack';

const log = componentLogger('prepare');
const config = loadConfig();
const db = connectDb(config.databaseUrl, 1);
try {
  await migrateDb(db);
  log.info('database migrated');
} finally {
  await closeDb(db);
}
await new S3ObjectStore(config.s3).ensureBucket();
log.info({ bucket: config.s3.bucket }, 'bucket ready');
await registerSearchAttributes(config);
log.info({ namespace: config.temporal.namespace }, 'search attributes registered');
