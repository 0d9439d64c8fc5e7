// The pipeline's stage summaries and refusals, pinned word for word: the CLI, the UI and the tests read them.
import { describe, expect, it } from 'vitest';
import {
  deploySummary,
  describeAuthority,
  evaluateSummary,
  gateFailedMessage,
  ingestSummary,
  recordSummary,
  releaseReason,
  releaseRefusal,
  releaseRejectedMessage,
  rolloutSummary,
  round,
  trainSummary,
  validateSummary,
} from '../../workflows/summaries';

const model = { modelName: 'churn', version: 3 };
const run = { runId: 'run-abc', backend: 'tensorflow', epochs: 12, taskQueue: 'flywheel-train-cpu' };

describe('pipeline summaries', () => {
  it('record names the release authority, or only the pipeline for a run from before grants', () => {
    expect(recordSummary('churn-daily', null)).toBe('pipeline churn-daily stored');
    expect(recordSummary('churn-daily', { actor: 'alert:7', scope: 'system', newModel: false })).toBe(
      'pipeline churn-daily stored; release authorised by alert:7 (through its gates only)',
    );
    expect(describeAuthority({ actor: null, scope: null, newModel: true })).toBe(
      'a new model: its first release needs no grant',
    );
    expect(describeAuthority({ actor: null, scope: null, newModel: false })).toBe(
      'no release grant: a new version is registered, deployed only if an admin approves it',
    );
  });

  it('ingest, validate and train say what they produced', () => {
    expect(
      ingestSummary({
        datasetVersionId: 'churn@ab12',
        rowCount: 500,
        format: 'csv',
        reused: true,
        featureViews: [
          {
            ref: 'customer_stats@1',
            entities: ['customer_id'],
            features: ['orders'],
            ttlSeconds: 60,
            onMissing: 'null',
          },
        ],
      }),
    ).toBe(
      'churn@ab12: 500 rows from csv with features of customer_stats@1 joined point in time (already stored; reused)',
    );
    expect(validateSummary({ contract: 'pinned', reference: 'churn@prod', warnings: ['a', 'b'] })).toBe(
      'pinned schema holds; distributions checked against churn@prod (2 warnings)',
    );
    expect(trainSummary({ ...run, resumedFromEpoch: 4 }, undefined)).toBe(
      'run-abc: 12 epochs on tensorflow (flywheel-train-cpu), resumed after epoch 5',
    );
    const best = { ...run, artifactKey: 'k', finalLoss: 0.2, objective: 0.12345, stoppedEarly: false };
    const sweep = {
      best: { ...best, trial: 1, params: { learningRate: 0.01 } },
      trials: [
        { index: 0, params: {}, status: 'finished' as const, stoppedEarly: true },
        { index: 1, params: {}, status: 'finished' as const },
        { index: 2, params: {}, status: 'failed' as const },
      ],
    };
    expect(trainSummary(run, sweep)).toBe(
      'sweep of 3 trials (1 stopped early, 1 failed); best trial 2 {"learningRate":0.01}: val_loss 0.123, ' +
        'run-abc on tensorflow',
    );
  });

  it('evaluate lists metrics to three decimals, without count, and the champion on the same rows', () => {
    expect(
      evaluateSummary({
        metrics: { rmse: 1.23456, r2: 0.8, count: 100 },
        baseline: { version: 2, metrics: { rmse: 1.5, count: 100 }, scoredOn: 'this holdout' },
      }),
    ).toBe('rmse=1.235 r2=0.8 (champion v2 on this holdout: rmse=1.5)');
    expect(round(0.12349)).toBe(0.123);
  });

  it('gate failures, rejections and refusals keep their wording', () => {
    expect(gateFailedMessage(['r2: 0.12 < 0.3 (min)'], model)).toBe(
      'evaluation gate failed: r2: 0.12 < 0.3 (min). churn v3 is registered but not promoted',
    );
    expect(releaseRejectedMessage(model, false, { actor: 'timeout', comment: 'no decision within 1h' }, '1h')).toBe(
      'release of churn v3 expired after 1h: no decision within 1h; it stays registered, not promoted',
    );
    expect(releaseRefusal({ actor: null, scope: null, newModel: false }, undefined, 1, model)).toBe(
      'churn v3 is registered, tagged release=unauthorised, not deployed: churn already existed, and releasing a new ' +
        "version of it needs a release grant (flywheel run --token <admin token>, an admin token over the API) or an admin's " +
        'approval (deploy.approval)',
    );
    expect(releaseRefusal({ actor: 'alert:7', scope: 'system', newModel: false }, undefined, 0, model)).toContain(
      'a retraining started by alert:7 may replace the champion only through evaluation gates',
    );
    expect(releaseRefusal({ actor: 'alert:7', scope: 'system', newModel: false }, undefined, 1, model)).toBeUndefined();
    expect(releaseRefusal({ actor: null, scope: null, newModel: false }, 'token:ops', 0, model)).toBeUndefined();
  });

  it('the release reason names the trigger and who authorised it', () => {
    expect(
      releaseReason('churn-daily', { kind: 'schedule' }, undefined, { actor: null, scope: null, newModel: true }),
    ).toBe('pipeline churn-daily (schedule); authorised by first release of a new model');
    expect(
      releaseReason('churn-daily', { kind: 'drift', reason: 'drift on tenure' }, { actor: 'token:ops' }, null),
    ).toBe('drift on tenure; authorised by approval by token:ops');
    expect(releaseReason('churn-daily', undefined, undefined, null)).toBe('pipeline churn-daily (cli)');
  });

  it('a canary summary lists its steps', () => {
    const steps = [10, 50].map((percent) => ({ percent, startedAt: 0 }));
    expect(
      rolloutSummary('canary', { steps }, { modelName: 'churn', alias: 'production', candidate: 3, champion: 2 }),
    ).toBe('canary 10 % → 50 % healthy; churn@production → v3 (was v2)');
  });

  it('a deploy summary says how many of the live serving replicas confirmed the version, and which lag', () => {
    const confirmed = { previousVersion: 1, serving: 'confirmed' as const, replicas: 3 };
    expect(deploySummary(confirmed, 'demand', 'champion', 2)).toBe(
      'demand@champion → v2 (was v1); confirmed by 3 of 3 serving replicas',
    );
    expect(deploySummary({ ...confirmed, previousVersion: null, replicas: 1 }, 'demand', 'champion', 1)).toBe(
      'demand@champion → v1 (was none); confirmed by 1 of 1 serving replica',
    );
    const lagging = ['http://10.0.0.2:8080', 'http://10.0.0.3:8080', 'web-4:311', 'web-5:312'];
    expect(deploySummary({ ...confirmed, serving: 'partial', replicas: 1, lagging }, 'demand', 'champion', 2)).toBe(
      'demand@champion → v2 (was v1); confirmed by 1 of 5 serving replicas, not yet by http://10.0.0.2:8080, ' +
        'http://10.0.0.3:8080, web-4:311 and 1 more',
    );
    // Recorded before replicas reported, or no replica registered: what the serving URL answered.
    expect(deploySummary({ previousVersion: 1, serving: 'unverified' }, 'demand', 'champion', 2)).toBe(
      'demand@champion → v2 (was v1); serving unverified',
    );
  });
});
