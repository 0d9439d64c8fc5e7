/**
 * Profiling threads and their end. Terminating a thread while its entry module is still evaluating aborts the whole
 * process in Node 20 (a V8 check, not an exception): one CI run lost its vitest fork that way when an ingest failed
 * on bad input within milliseconds. A profiler ends each thread only once that thread has loaded.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ParallelProfiler, RecordWidthError } from '../../ml/profiling/parallelProfile';

const chunk = (text: string) => Buffer.from(text);

/** Records, for every thread terminated, whether it had said 'ready' first. */
function watchThreads() {
  const ready = new WeakSet<Worker>();
  const ended: boolean[] = [];
  const emit = Worker.prototype.emit;
  vi.spyOn(Worker.prototype, 'emit').mockImplementation(function (this: Worker, event, ...args) {
    if (event === 'message' && (args[0] as { type?: string })?.type === 'ready') ready.add(this);
    return emit.call(this, event, ...args);
  });
  const terminate = Worker.prototype.terminate;
  vi.spyOn(Worker.prototype, 'terminate').mockImplementation(function (this: Worker) {
    ended.push(ready.has(this));
    return terminate.call(this);
  });
  return ended;
}

afterEach(() => vi.restoreAllMocks());

describe('ParallelProfiler', () => {
  it('profiles its share of the columns on each thread, and gives them back in column order', async () => {
    const profiler = new ParallelProfiler(['a', 'b', 'c'], 2);
    profiler.feed(chunk('a,b,c\n1,x,2.5\n2,y,3.5\n'), 1);
    profiler.feed(chunk('3,x,4.5\n'), 4);
    const profiles = await profiler.finish();
    expect(profiles.map((p) => p.name)).toEqual(['a', 'b', 'c']);
    expect(profiles.map((p) => p.count)).toEqual([3, 3, 3]);
  });

  it('fails with the file line of a ragged record that a thread found', async () => {
    const profiler = new ParallelProfiler(['a', 'b'], 2);
    profiler.feed(chunk('a,b\n1,2\n3\n'), 1);
    const error = await profiler.finish().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RecordWidthError);
    expect((error as RecordWidthError).message).toBe('line 3 has 1 fields, the header has 2');
  });

  it('ends no thread before it has loaded, when closed at once or while loading', async () => {
    const ended = watchThreads();
    for (const wait of [0, 0, 5, 20, 60]) {
      const profiler = new ParallelProfiler(['a', 'b', 'c'], 3);
      if (wait) await new Promise((resolve) => setTimeout(resolve, wait));
      await profiler.close();
    }
    expect(ended).toHaveLength(15);
    expect(ended.every(Boolean), 'every thread said ready before it was terminated').toBe(true);
  });
});
