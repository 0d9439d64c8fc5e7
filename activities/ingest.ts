/** Ingest: a CSV from a path, URL or s3:// becomes an immutable dataset version, stored under its content hash. */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { heartbeat, log } from '@temporalio/activity';
import { eq } from 'drizzle-orm';
import { ProfileBuilder } from '../ml/profile';
import { datasets, datasetVersions } from '../schema/datasets';
import { CsvInputError, readCsv } from '../storage/csvStream';
import { openSource, SourceError } from '../storage/sources';
import { badInput, type ActivityDeps } from './deps';

export interface IngestInput {
  workflowId: string;
  dataset: string;
  source: string;
  delimiter: string;
}

export interface IngestResult {
  datasetVersionId: string;
  contentHash: string;
  objectKey: string;
  rowCount: number;
  /** True when this content was already a version: nothing was uploaded again. */
  reused: boolean;
}

export function datasetObjectKey(dataset: string, contentHash: string): string {
  return `datasets/${dataset}/${contentHash}.csv`;
}

export function createIngestActivities({ db, store }: ActivityDeps) {
  return {
    async ingestDataset(input: IngestInput): Promise<IngestResult> {
      const workDir = await mkdtemp(join(tmpdir(), 'flywheel-ingest-'));
      try {
        const copyPath = join(workDir, 'data.csv');
        const copy = createWriteStream(copyPath);
        const hash = createHash('sha256');
        let profile: ProfileBuilder | undefined;
        let columns: string[] = [];
        let stats: { rows: number; bytes: number };
        try {
          const stream = await openSource(input.source, store);
          stats = await readCsv(
            stream,
            {
              delimiter: input.delimiter,
              sourceName: input.source,
              onProgress: (bytes) => heartbeat({ bytes }),
              onChunk: (chunk) => {
                hash.update(chunk);
                if (!copy.write(chunk)) return new Promise<void>((resolve) => copy.once('drain', () => resolve()));
              },
            },
            (header) => {
              columns = header;
              profile = new ProfileBuilder(header);
            },
            (fields) => profile!.addRow(fields),
          );
        } catch (error) {
          if (error instanceof SourceError || error instanceof CsvInputError) throw badInput('IngestError', error.message);
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'EACCES' || code === 'EISDIR') throw badInput('IngestError', `${input.source}: ${(error as Error).message}`);
          throw error;
        } finally {
          await new Promise<void>((resolve) => copy.end(() => resolve()));
        }
        if (stats.rows === 0) throw badInput('IngestError', `${input.source}: the file has a header but no data rows`);

        const contentHash = hash.digest('hex');
        const id = `${input.dataset}@${contentHash.slice(0, 16)}`;
        const existing = await db.select({ id: datasetVersions.id, objectKey: datasetVersions.objectKey, rowCount: datasetVersions.rowCount })
          .from(datasetVersions).where(eq(datasetVersions.id, id));
        if (existing[0]) return { datasetVersionId: id, contentHash, objectKey: existing[0].objectKey, rowCount: existing[0].rowCount, reused: true };

        // Upload first, then the row: a crash in between leaves an object the retry finds by its hash.
        const objectKey = datasetObjectKey(input.dataset, contentHash);
        if ((await store.sizeOf(objectKey)) !== stats.bytes) await store.putFile(objectKey, copyPath, 'text/csv');
        const profiles = profile!.finish();
        await db.transaction(async (tx) => {
          await tx.insert(datasets).values({ name: input.dataset }).onConflictDoNothing();
          await tx.insert(datasetVersions).values({
            id,
            datasetName: input.dataset,
            contentHash,
            objectKey,
            sourceUri: input.source,
            rowCount: stats.rows,
            byteSize: stats.bytes,
            columns: columns.map((name, i) => ({ name, type: profiles[i]!.type })),
            profile: profiles,
            createdByWorkflowId: input.workflowId,
          }).onConflictDoNothing();
        });
        log.info('dataset version stored', { id, rows: stats.rows, bytes: stats.bytes });
        return { datasetVersionId: id, contentHash, objectKey, rowCount: stats.rows, reused: false };
      } finally {
        await rm(workDir, { recursive: true, force: true });
      }
    },
  };
}
