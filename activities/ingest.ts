/**
 * Ingest: a table from a file, URL, s3:// object or SQL query becomes an immutable dataset version.
 * One streaming pass converts it to canonical CSV, hashes that, and profiles every column. The version id is the
 * hash of the canonical form, so the same table twice — even from another format — is one version, uploaded once.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { heartbeat, log } from '@temporalio/activity';
import { CanonicalCsvWriter } from '../ml/formats/csv';
import { ParallelProfiler, RecordWidthError } from '../ml/profiling/parallelProfile';
import { ProfileBuilder, type ColumnProfile } from '../ml/profiling/profile';
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';
import { CsvInputError } from '../ml/formats/csvStream';
import { nameProblem } from '../config/pipeline';
import { findDatasetVersionRow, recordDatasetVersion } from '../store/datasets';
import { checkLocalPath, localAccess, localPath, redact, SourceError } from '../storage/sources';
import { detectFormat, readTable, type DataFormat, type TableSpec } from '../storage/tables';
import type { ServedFeatureView } from '../features/sql';
import { activityCancellation } from './datasetColumns';
import { featureTrainingQuery, readerRoleReady, type FeatureTableSpec } from '../features/activities';
import { badInput, type ActivityDeps } from './deps';

export interface IngestInput {
  workflowId: string;
  dataset: string;
  table: TableSpec;
  /** The table holds entity rows: the version is these rows with the views' features joined on point in time. */
  features?: FeatureTableSpec;
}

export interface IngestResult {
  datasetVersionId: string;
  contentHash: string;
  objectKey: string;
  rowCount: number;
  format: DataFormat;
  /** A CSV's delimiter when none was configured and it was not a comma (read from the first line). */
  delimiter?: string;
  /** True when this content was already a version: nothing was uploaded again. */
  reused: boolean;
  /** Set for a feature-built table: the views joined, as serving needs them for lookups. */
  featureViews?: ServedFeatureView[];
}

export function datasetObjectKey(dataset: string, contentHash: string): string {
  return `datasets/${dataset}/${contentHash}.csv`;
}

/** The ingest itself, outside any activity context (the benchmark calls it directly). */
export async function ingestTable(
  { db, store }: { db: Db; store: ObjectStore },
  input: IngestInput,
  onProgress: (bytes: number) => void = () => undefined,
  options: { profileThreads?: number } = {},
): Promise<IngestResult & { profile: ColumnProfile[] }> {
  checkDatasetName(input.dataset);
  const workDir = await mkdtemp(join(tmpdir(), 'flywheel-ingest-'));
  const threads =
    options.profileThreads ??
    (availableParallelism() > 1 && (await expectedSize(input.table, store)) >= PARALLEL_FROM_BYTES ? 2 : 0);
  let parallel: ParallelProfiler | undefined;
  try {
    const copyPath = join(workDir, 'canonical.csv');
    const fd = openSync(copyPath, 'w');
    const hash = createHash('sha256');
    let bytes = 0;
    const sink = (chunk: Buffer, firstLine = 0) => {
      hash.update(chunk);
      writeSync(fd, chunk);
      parallel?.feed(chunk, firstLine);
      bytes += chunk.length;
    };
    const writer = new CanonicalCsvWriter(sink);
    let profiler: ProfileBuilder | undefined;
    const readInput = () =>
      readTable(input.table, store, {
        onHeader: (columns) => {
          if (threads > 0) parallel = new ParallelProfiler(columns, threads);
          else profiler = new ProfileBuilder(columns);
          writer.header(columns);
        },
        onRecord: (record) => {
          writer.record(record);
          profiler?.add(record);
        },
        onProgress,
        signal: activityCancellation(),
        pace: () => parallel?.ready(),
        // Already-canonical lines go straight to the profiling threads, which parse them there.
        onPlainLines:
          threads > 0
            ? (lines, firstLine) => {
                writer.flush();
                sink(lines, firstLine);
              }
            : undefined,
      });
    let read: Awaited<ReturnType<typeof readTable>>;
    try {
      read = await guard(input, async () => {
        const result = await readInput();
        writer.flush();
        return result;
      });
    } finally {
      closeSync(fd);
    }

    const contentHash = hash.digest('hex');
    const id = `${input.dataset}@${contentHash.slice(0, 16)}`;
    const existing = await findDatasetVersionRow(db, id);
    if (existing) {
      return {
        datasetVersionId: id,
        contentHash,
        objectKey: existing.objectKey,
        rowCount: existing.rowCount,
        format: read.format,
        delimiter: read.detectedDelimiter,
        reused: true,
        profile: existing.profile,
      };
    }
    // Upload first, then the row: a crash in between leaves an object the retry finds by its hash and size.
    // The upload runs while the profiling threads finish; if they find a bad line after all, the object goes again.
    const objectKey = datasetObjectKey(input.dataset, contentHash);
    const upload = (async () => {
      if ((await store.sizeOf(objectKey)) !== bytes) await store.putFile(objectKey, copyPath, 'text/csv');
    })();
    let profile: ColumnProfile[];
    try {
      profile = await guard(input, async () => (parallel ? parallel.finish() : profiler!.finish()));
      await upload;
    } catch (error) {
      if (
        await upload.then(
          () => true,
          () => false,
        )
      )
        await store.remove(objectKey).catch(() => undefined);
      throw error;
    }
    await recordDatasetVersion(db, {
      id,
      datasetName: input.dataset,
      contentHash,
      objectKey,
      sourceUri: redact(input.table.source),
      format: read.format,
      rowCount: read.rows,
      byteSize: bytes,
      columns: profile.map((p) => ({ name: p.name, type: p.type })),
      profile,
      createdByWorkflowId: input.workflowId,
    });
    return {
      datasetVersionId: id,
      contentHash,
      objectKey,
      rowCount: read.rows,
      format: read.format,
      delimiter: read.detectedDelimiter,
      reused: false,
      profile,
    };
  } finally {
    await parallel?.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

/** The name becomes object keys and ids: one that could climb out of its folder or into SQL never gets that far. */
function checkDatasetName(dataset: string): void {
  const problem = nameProblem(dataset);
  if (problem) throw badInput('ConfigError', `dataset: ${problem}`);
}

/** Runs a step of the read, turning what is wrong with the input into a non-retryable IngestError. */
async function guard<T>(input: IngestInput, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof SourceError || error instanceof CsvInputError) throw badInput('IngestError', error.message);
    if (error instanceof RecordWidthError)
      throw badInput('IngestError', `${redact(input.table.source)}: ${error.message}`);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EISDIR')
      throw badInput('IngestError', `${input.table.source}: ${(error as Error).message}`);
    throw error;
  }
}

/** From this size on, columns are profiled on two threads while the main one parses, hashes and writes. */
const PARALLEL_FROM_BYTES = 16 << 20;

/** The source's size when it is cheap to know (an allowed local file, an S3 object); 0 otherwise. */
async function expectedSize(table: TableSpec, store: ObjectStore): Promise<number> {
  const { source } = table;
  try {
    const path = localPath(source);
    if (path) return (await stat(await checkLocalPath(path, localAccess(table.configDir)))).size;
    const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(source);
    if (s3) return (await store.sizeOf(s3[2]!, s3[1]!)) ?? 0;
  } catch {
    // the read itself will report a missing or unreadable source
  }
  return 0;
}

export function createIngestActivities(deps: ActivityDeps) {
  return {
    async ingestDataset(input: IngestInput): Promise<IngestResult> {
      checkDatasetName(input.dataset);
      // Progress every 8 MiB, and a beat every 20 s even while a slow source (a long SQL query) sends nothing yet.
      let bytes = 0;
      const beat = setInterval(() => heartbeat({ bytes }), 20_000);
      try {
        if (input.features) {
          // Entity rows → scratch table → point-in-time join in Postgres → versioned like any SQL source.
          const scratch = `fs_entities_${createHash('sha256').update(input.workflowId).digest('hex').slice(0, 16)}`;
          const built = await featureTrainingQuery(deps.db, deps.store, scratch, input.table, input.features, () =>
            heartbeat({ bytes }),
          );
          try {
            // The join runs as the reader role: it needs the grant on the scratch table just made.
            await readerRoleReady(deps.db);
            const databaseUrl = (deps.db.$client.options as { connectionString?: string }).connectionString;
            if (!databaseUrl)
              throw new Error('the database pool has no connection string to run the feature join with');
            const { profile: _profile, ...result } = await ingestTable(
              deps,
              { ...input, table: { source: databaseUrl, format: 'sql', query: built.query } },
              (read) => heartbeat({ bytes: (bytes = read) }),
            );
            log.info('feature-built dataset version', {
              id: result.datasetVersionId,
              rows: result.rowCount,
              views: built.views.map((v) => v.ref),
            });
            return { ...result, format: detectFormat(input.table), featureViews: built.views };
          } finally {
            await built.drop();
          }
        }
        if (detectFormat(input.table) === 'sql') await readerRoleReady(deps.db);
        const { profile: _profile, ...result } = await ingestTable(deps, input, (read) =>
          heartbeat({ bytes: (bytes = read) }),
        );
        log.info('dataset version', { id: result.datasetVersionId, rows: result.rowCount, reused: result.reused });
        return result;
      } finally {
        clearInterval(beat);
      }
    },
  };
}
