// Queue waits across pipelines: timeline steps folded per stage and task queue, and the table `status --queues` prints.
import { describe, expect, it } from 'vitest';
import { printQueueWaits } from '../../cli/timings';
import { queueWaitsOf } from '../../server/api/queueWaits';
import type { TimelineStep } from '../../server/api/timelines';

const activity = (
  name: string,
  taskQueue: string,
  times: { scheduledAt: number; startedAt: number | null; closedAt?: number | null; attempt?: number },
): TimelineStep => ({
  kind: 'activity',
  name,
  taskQueue,
  scheduledAt: times.scheduledAt,
  startedAt: times.startedAt,
  closedAt: times.closedAt ?? null,
  status: times.closedAt ? 'completed' : times.startedAt === null ? 'scheduled' : 'running',
  attempt: times.startedAt === null ? null : (times.attempt ?? 1),
});

describe('queueWaitsOf', () => {
  it('gives each stage and queue its count, p50, p95 and max queue wait and p95 run time', () => {
    // Twenty ingests waiting 10, 20, … 200 ms and running 100 ms each, on one queue.
    const ingests = Array.from({ length: 20 }, (_, i) =>
      activity('ingestDataset', 'main', { scheduledAt: 0, startedAt: (i + 1) * 10, closedAt: (i + 1) * 10 + 100 }),
    );
    const rows = queueWaitsOf([
      ...ingests,
      activity('trainModel', 'train-cpu', { scheduledAt: 1_000, startedAt: 1_500, closedAt: 9_500 }),
      activity('trainModel', 'train-gpu', { scheduledAt: 1_000, startedAt: 1_040, closedAt: 3_040 }),
    ]);
    expect(rows).toEqual([
      {
        stage: 'ingestDataset',
        taskQueue: 'main',
        count: 20,
        retried: 0,
        queueWaitP50Ms: 105,
        queueWaitP95Ms: 191,
        queueWaitMaxMs: 200,
        runTimeP95Ms: 100,
      },
      {
        stage: 'trainModel',
        taskQueue: 'train-cpu',
        count: 1,
        retried: 0,
        queueWaitP50Ms: 500,
        queueWaitP95Ms: 500,
        queueWaitMaxMs: 500,
        runTimeP95Ms: 8_000,
      },
      {
        stage: 'trainModel',
        taskQueue: 'train-gpu',
        count: 1,
        retried: 0,
        queueWaitP50Ms: 40,
        queueWaitP95Ms: 40,
        queueWaitMaxMs: 40,
        runTimeP95Ms: 2_000,
      },
    ]);
  });

  it("leaves out retried activities' waits, activities not started yet, and child workflows", () => {
    const rows = queueWaitsOf([
      activity('deployModelVersion', 'main', { scheduledAt: 0, startedAt: 30, closedAt: 80 }),
      // Attempt 3: schedule → start spans two failed attempts and their backoff, not a queue wait.
      activity('deployModelVersion', 'main', { scheduledAt: 0, startedAt: 9_000, closedAt: 9_100, attempt: 3 }),
      activity('deployModelVersion', 'main', { scheduledAt: 0, startedAt: null }),
      // Running: it waited, and has no run time yet.
      activity('evaluateModel', 'main', { scheduledAt: 0, startedAt: 70 }),
      {
        kind: 'child',
        name: 'sweepWorkflow',
        taskQueue: 'main',
        scheduledAt: 0,
        startedAt: 5,
        closedAt: 50,
        status: 'completed',
        attempt: null,
      },
    ]);
    expect(rows).toEqual([
      {
        stage: 'deployModelVersion',
        taskQueue: 'main',
        count: 2,
        retried: 1,
        queueWaitP50Ms: 30,
        queueWaitP95Ms: 30,
        queueWaitMaxMs: 30,
        runTimeP95Ms: 98,
      },
      {
        stage: 'evaluateModel',
        taskQueue: 'main',
        count: 1,
        retried: 0,
        queueWaitP50Ms: 70,
        queueWaitP95Ms: 70,
        queueWaitMaxMs: 70,
        runTimeP95Ms: null,
      },
    ]);
    expect(
      queueWaitsOf([activity('deployModelVersion', 'main', { scheduledAt: 0, startedAt: 5, attempt: 2 })]),
    ).toEqual([
      {
        stage: 'deployModelVersion',
        taskQueue: 'main',
        count: 1,
        retried: 1,
        queueWaitP50Ms: null,
        queueWaitP95Ms: null,
        queueWaitMaxMs: null,
        runTimeP95Ms: null,
      },
    ]);
  });
});

describe('printQueueWaits', () => {
  it('prints one row per stage and queue, retries noted', () => {
    const lines: string[] = [];
    printQueueWaits(
      {
        pipelines: 2,
        oldestStartedAt: '2027-01-05T10:00:00.000Z',
        newestStartedAt: '2027-01-05T10:00:02.000Z',
        stages: [
          {
            stage: 'trainModel',
            taskQueue: 'flywheel-train-cpu',
            count: 2,
            retried: 1,
            queueWaitP50Ms: 40,
            queueWaitP95Ms: 1_500,
            queueWaitMaxMs: 1_640,
            runTimeP95Ms: 12_345,
          },
        ],
      },
      (line) => lines.push(line),
    );
    expect(lines).toEqual([
      'queue wait (schedule → start) and run time per stage over 2 pipelines started 2027-01-05 10:00:00 … 2027-01-05 10:00:02 UTC:',
      '  stage       queue               count          wait p50  wait p95  wait max  run p95',
      '  trainModel  flywheel-train-cpu  2 (1 retried)  40ms      1.500s    1.640s    12.3s',
      "  retried activities' waits are left out: the history keeps only their last attempt's start",
    ]);
  });

  it('says so when no pipeline matched', () => {
    const lines: string[] = [];
    printQueueWaits({ pipelines: 0, oldestStartedAt: null, newestStartedAt: null, stages: [] }, (l) => lines.push(l));
    expect(lines).toEqual(['no pipelines found']);
  });
});
