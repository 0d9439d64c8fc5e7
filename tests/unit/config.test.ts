import { describe, expect, it } from 'vitest';
import { ConfigError, parsePipelineConfig } from '../../config/pipeline';
import { durationMs } from '../../config/duration';

const valid = {
  name: 'p', model: 'm',
  data: { dataset: 'd', source: '/tmp/x.csv' },
  schema: { columns: { x: { type: 'number' }, y: { type: 'number' } } },
  training: { task: 'regression', target: 'y', features: { numeric: ['x'] } },
};

describe('pipeline config', () => {
  it('fills documented defaults', () => {
    const config = parsePipelineConfig(valid);
    expect(config.training.epochs).toBe(20);
    expect(config.deploy.alias).toBe('production');
    expect(config.monitor.meanShiftThreshold).toBe(0.05);
  });

  it('names an unknown field with its path', () => {
    const bad = { ...valid, training: { ...valid.training, epoch: 3 } };
    expect(() => parsePipelineConfig(bad, 'p.yaml')).toThrowError(/p\.yaml is invalid:\n {2}training\.epoch: unknown field/);
  });

  it('names a field of the wrong type', () => {
    const bad = { ...valid, training: { ...valid.training, learningRate: -1 } };
    expect(() => parsePipelineConfig(bad)).toThrowError(/training\.learningRate/);
  });

  it('rejects a target that the schema does not declare', () => {
    const bad = { ...valid, training: { ...valid.training, target: 'z' } };
    expect(() => parsePipelineConfig(bad)).toThrowError(ConfigError);
    expect(() => parsePipelineConfig(bad)).toThrowError(/training\.target: column "z" is not declared/);
  });

  it('parses durations', () => {
    expect(durationMs('90s')).toBe(90_000);
    expect(durationMs('1h')).toBe(3_600_000);
    expect(() => durationMs('soon')).toThrow();
  });
});
