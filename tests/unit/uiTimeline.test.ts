/** The pipeline timeline the UI draws: Temporal history events folded into scheduled / started / closed per step. */
import { describe, expect, it } from 'vitest';
import { timelineOf } from '../../server/api/timelines';

// Event times as protobuf Timestamps (the server's carry Long seconds: printed the same way).
const at = (ms: number) => ({ seconds: { toString: () => String(Math.floor(ms / 1000)) }, nanos: (ms % 1000) * 1e6 });

describe('timelineOf', () => {
  it('folds activities (retried, failed) and a child workflow into one step each, with queue wait and run time', () => {
    const steps = timelineOf([
      {
        eventId: 5,
        eventTime: at(1_000),
        activityTaskScheduledEventAttributes: { activityType: { name: 'ingestDataset' }, taskQueue: { name: 'q' } },
      },
      { eventId: 6, eventTime: at(1_250), activityTaskStartedEventAttributes: { scheduledEventId: 5, attempt: 2 } },
      { eventId: 7, eventTime: at(2_000), activityTaskCompletedEventAttributes: { scheduledEventId: 5 } },
      {
        eventId: 8,
        eventTime: at(2_100),
        startChildWorkflowExecutionInitiatedEventAttributes: {
          workflowType: { name: 'sweepWorkflow' },
          taskQueue: { name: 'q' },
        },
      },
      { eventId: 9, eventTime: at(2_150), childWorkflowExecutionStartedEventAttributes: { initiatedEventId: 8 } },
      { eventId: 10, eventTime: at(3_000), childWorkflowExecutionCompletedEventAttributes: { initiatedEventId: 8 } },
      {
        eventId: 11,
        eventTime: at(3_100),
        activityTaskScheduledEventAttributes: { activityType: { name: 'evaluateModel' }, taskQueue: { name: 'gpu' } },
      },
      { eventId: 12, eventTime: at(3_900), activityTaskStartedEventAttributes: { scheduledEventId: 11, attempt: 1 } },
      { eventId: 13, eventTime: at(4_000), activityTaskFailedEventAttributes: { scheduledEventId: 11 } },
      {
        eventId: 14,
        eventTime: at(4_100),
        activityTaskScheduledEventAttributes: { activityType: { name: 'deployModelVersion' } },
      },
    ]);
    expect(steps).toEqual([
      {
        kind: 'activity',
        name: 'ingestDataset',
        taskQueue: 'q',
        scheduledAt: 1_000,
        startedAt: 1_250,
        closedAt: 2_000,
        status: 'completed',
        attempt: 2,
      },
      {
        kind: 'child',
        name: 'sweepWorkflow',
        taskQueue: 'q',
        scheduledAt: 2_100,
        startedAt: 2_150,
        closedAt: 3_000,
        status: 'completed',
        attempt: null,
      },
      {
        kind: 'activity',
        name: 'evaluateModel',
        taskQueue: 'gpu',
        scheduledAt: 3_100,
        startedAt: 3_900,
        closedAt: 4_000,
        status: 'failed',
        attempt: 1,
      },
      {
        kind: 'activity',
        name: 'deployModelVersion',
        taskQueue: null,
        scheduledAt: 4_100,
        startedAt: null,
        closedAt: null,
        status: 'scheduled',
        attempt: null,
      },
    ]);
  });
});
