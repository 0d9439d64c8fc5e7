/** Loads the columns a stage needs from a stored dataset version, as raw strings (training and evaluation). */
import { Context, heartbeat } from '@temporalio/activity';
import type { RawColumns } from '../training/preprocess';
import { findDatasetVersionRow, type DatasetVersionRow } from '../store/datasets';
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';
import { INGESTED_CSV_LIMITS, readCsv } from '../ml/formats/csvStream';
import { badInput } from './deps';

/** The running activity's cancellation signal; undefined when called outside an activity (benchmarks, tests). */
export function activityCancellation(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

export async function loadDatasetColumns(
  db: Db,
  store: ObjectStore,
  datasetVersionId: string,
  wanted: string[],
): Promise<{ version: DatasetVersionRow; columns: RawColumns; rowCount: number }> {
  const version = await findDatasetVersionRow(db, datasetVersionId);
  if (!version) throw badInput('NotFoundError', `dataset version ${datasetVersionId} does not exist`);
  const columns: RawColumns = Object.fromEntries(wanted.map((name) => [name, [] as string[]]));
  let indices: number[] = [];
  const { rows } = await readCsv(
    await store.getStream(version.objectKey),
    {
      sourceName: version.id,
      ...INGESTED_CSV_LIMITS,
      signal: activityCancellation(),
      onProgress: (bytes) => heartbeat({ loadingBytes: bytes }),
    },
    (header) => {
      const missing = wanted.filter((name) => !header.includes(name));
      if (missing.length)
        throw badInput(
          'TrainingError',
          `dataset ${version.id} has no column(s) ${missing.map((m) => `"${m}"`).join(', ')}; it has: ${header.join(', ')}`,
        );
      indices = wanted.map((name) => header.indexOf(name));
    },
    (record) => {
      for (let k = 0; k < wanted.length; k++) columns[wanted[k]!]!.push(record.text(indices[k]!));
    },
  );
  return { version, columns, rowCount: rows };
}
