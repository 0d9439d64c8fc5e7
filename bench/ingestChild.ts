/**
 * bench:ingest, one measured Flywheel ingest in a process of its own, so that the peak RSS it reports is this ingest's
 * alone. bench/ingest.ts starts it as `node --import tsx bench/ingestChild.ts <csv path> <dataset>` and cleans up
 * after it (object and rows), also when it fails.
 *
 * The timed part is the `ingestTable` call only: one streaming pass (canonical CSV + sha256 + per-column profile),
 * upload to the object store, version row into Postgres. Connections are opened before it, as a worker's are.
 * Prints one JSON line on stdout: seconds, rows, bytes, ids, and `max_rss_kb` (process.resourceUsage().maxRSS, KiB,
 * the whole process: Node, tsx, drivers and the ingest) with `baseline_rss_kb` (RSS just before the ingest).
 */
import { statSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { ingestTable } from '../activities/ingest';
import { connectDb } from '../storage/db';
import { S3ObjectStore } from '../storage/objectStore';
import { loadConfig } from '../config/env';

const [path, dataset] = process.argv.slice(2);
if (!path || !dataset) {
  console.error('usage: node --import tsx bench/ingestChild.ts <csv path> <dataset>');
  process.exit(2);
}

const config = loadConfig();
const db = connectDb(config.databaseUrl, 2);
const store = new S3ObjectStore(config.s3);
try {
  // Warm both connections so the timed call measures the ingest, not the first TCP/TLS handshakes.
  await db.execute(sql`select 1`);
  await store.sizeOf(`datasets/${dataset}/warm-up`);

  const size = statSync(path).size;
  let nextReport = size / 4;
  const onProgress = (bytes: number) => {
    if (bytes < nextReport) return;
    console.error(`    flywheel ${dataset}: ${Math.round((100 * bytes) / size)} % read`);
    nextReport += size / 4;
  };

  const baselineRss = process.memoryUsage().rss;
  const started = performance.now();
  const result = await ingestTable(
    { db, store },
    { workflowId: `bench-ingest-${dataset}`, dataset, table: { source: path } },
    onProgress,
  );
  const seconds = (performance.now() - started) / 1000;
  const maxRssKb = process.resourceUsage().maxRSS;

  console.log(
    JSON.stringify({
      seconds,
      rows: result.rowCount,
      bytes: size,
      reused: result.reused,
      dataset_version_id: result.datasetVersionId,
      object_key: result.objectKey,
      profiled_columns: result.profile.length,
      column_types: result.profile.map((p) => p.type),
      max_rss_kb: maxRssKb,
      baseline_rss_kb: Math.round(baselineRss / 1024),
    }),
  );
} finally {
  await db.$client.end();
}
