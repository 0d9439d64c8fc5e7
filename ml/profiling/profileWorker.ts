/** Worker side of `ParallelProfiler`: parses canonical CSV chunks and profiles its share of the columns. */
import { parentPort, workerData } from 'node:worker_threads';
import { CsvParser, type CsvRecordView } from '../formats/csv';
import { ProfileBuilder } from './profile';

const { names, positions, width } = workerData as { names: string[]; positions: number[]; width: number };
const builder = new ProfileBuilder(names, 1, positions);
const parser = new CsvParser();
let header = true;
// Lines nobody has parsed yet arrive with the file line they start at; their width is checked here.
let check = { firstLine: 0, base: 0 };
const onRecord = (record: CsvRecordView) => {
  if (header) {
    header = false;
    return;
  }
  if (check.firstLine > 0 && record.count !== width) {
    throw Object.assign(new Error('ragged'), {
      line: check.firstLine + record.line - check.base,
      fields: record.count,
    });
  }
  builder.add(record);
};

type Message = { type: 'chunk'; data: SharedArrayBuffer; length: number; firstLine: number } | { type: 'end' };
parentPort!.on('message', (message: Message) => {
  try {
    if (message.type === 'chunk') {
      check = { firstLine: message.firstLine, base: parser.nextLine };
      parser.push(Buffer.from(message.data, 0, message.length), onRecord);
      parentPort!.postMessage({ type: 'ack' });
    } else {
      parser.end(onRecord);
      parentPort!.postMessage({ type: 'done', profiles: builder.finish() });
    }
  } catch (error) {
    const { line, fields } = error as { line?: number; fields?: number };
    parentPort!.postMessage(
      line ? { type: 'width', line, fields } : { type: 'error', message: (error as Error).message },
    );
  }
});
// Loaded: from now on the thread may be terminated safely (see profileWorker.mjs).
parentPort!.postMessage({ type: 'ready' });
