import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/env';

describe('prediction retention setting', () => {
  it('keeps 30 days by default, 0 keeps everything, and anything else must be a whole number of days', () => {
    expect(loadConfig({}).serving.predictionsRetentionDays).toBe(30);
    expect(loadConfig({ FLYWHEEL_PREDICTIONS_RETENTION_DAYS: '0' }).serving.predictionsRetentionDays).toBe(0);
    expect(loadConfig({ FLYWHEEL_PREDICTIONS_RETENTION_DAYS: '7' }).serving.predictionsRetentionDays).toBe(7);
    expect(() => loadConfig({ FLYWHEEL_PREDICTIONS_RETENTION_DAYS: '1.5' })).toThrow(
      /FLYWHEEL_PREDICTIONS_RETENTION_DAYS must be a positive integer, got "1.5"/,
    );
    expect(() => loadConfig({ FLYWHEEL_PREDICTIONS_RETENTION_DAYS: '-3' })).toThrow(
      /FLYWHEEL_PREDICTIONS_RETENTION_DAYS/,
    );
  });
});
