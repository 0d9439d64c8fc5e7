import { describe, expect, it } from 'vitest';
import { ConfigError, parsePipelineConfig } from '../../config/pipeline';
import { durationMs } from '../../config/duration';

const valid = {
  name: 'p',
  model: 'm',
  data: { dataset: 'd', source: '/tmp/x.csv' },
  schema: { columns: { x: { type: 'number' }, y: { type: 'number' } } },
  training: { task: 'regression', target: 'y', features: { numeric: ['x'] } },
};

describe('pipeline config', () => {
  it('fills documented defaults', () => {
    const config = parsePipelineConfig(valid);
    expect(config.training.epochs).toBe(20);
    expect(config.deploy.alias).toBe('champion');
    expect(config.monitor.meanShiftThreshold).toBe(0.05);
  });

  it('names an unknown field with its path', () => {
    const bad = { ...valid, training: { ...valid.training, epoch: 3 } };
    expect(() => parsePipelineConfig(bad, 'p.yaml')).toThrowError(
      /p\.yaml is invalid:\n {2}training\.epoch: unknown field/,
    );
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

  it('rejects an unknown activation or optimizer, naming the choices', () => {
    const activation = { ...valid, training: { ...valid.training, model: { activation: 'swish' } } };
    expect(() => parsePipelineConfig(activation)).toThrowError(
      /training\.model\.activation: Invalid enum value\. Expected 'relu' \| 'tanh' \| 'sigmoid' \| 'elu', received 'swish'/,
    );
    const optimizer = { ...valid, training: { ...valid.training, optimizer: 'lbfgs' } };
    expect(() => parsePipelineConfig(optimizer)).toThrowError(/training\.optimizer: Invalid enum value/);
  });

  it('parses durations', () => {
    expect(durationMs('90s')).toBe(90_000);
    expect(durationMs('1h')).toBe(3_600_000);
    expect(() => durationMs('soon')).toThrow();
  });

  it('leaves the schema optional (inferred from the first version) and defaults the distribution check', () => {
    const { schema: _schema, ...inferred } = valid;
    const config = parsePipelineConfig(inferred);
    expect(config.schema).toBeUndefined();
    expect(config.validation).toEqual({
      reference: 'latest',
      drift: { enabled: true, psiThreshold: 0.25, severity: 'error' },
    });
  });

  it('checks source options: a SQL source needs a query, a headerless CSV needs column names', () => {
    const sql = { ...valid, data: { dataset: 'd', source: 'postgres://u@h/db' } };
    expect(() => parsePipelineConfig(sql)).toThrowError(/data\.query: a postgres:\/\/ source needs a query/);
    expect(parsePipelineConfig({ ...sql, data: { ...sql.data, query: 'SELECT 1 AS x, 2 AS y' } }).data.query).toBe(
      'SELECT 1 AS x, 2 AS y',
    );
    const headerless = { ...valid, data: { ...valid.data, header: false } };
    expect(() => parsePipelineConfig(headerless)).toThrowError(
      /data\.columns: a CSV without a header needs column names/,
    );
    expect(() => parsePipelineConfig({ ...valid, data: { ...valid.data, format: 'xlsx' } })).toThrowError(
      /data\.format/,
    );
  });

  it('accepts unique, mostly and severity per column, and rejects a mostly above 1', () => {
    const columns = { x: { type: 'number', unique: true, mostly: 0.99, severity: 'warning' }, y: { type: 'number' } };
    expect(parsePipelineConfig({ ...valid, schema: { columns } }).schema!.columns.x).toMatchObject({
      unique: true,
      mostly: 0.99,
      severity: 'warning',
    });
    expect(() =>
      parsePipelineConfig({ ...valid, schema: { columns: { ...columns, x: { type: 'number', mostly: 1.5 } } } }),
    ).toThrowError(/schema\.columns\.x\.mostly/);
  });
});

describe('training runners', () => {
  const python = { ...valid.training, runner: 'python', entrypoint: 'train.py:fit', params: { depth: 3 } };

  it('takes a Python step with its entrypoint and parameters', () => {
    const config = parsePipelineConfig({ ...valid, training: python });
    expect(config.training.runner).toBe('python');
    expect(config.training.params).toEqual({ depth: 3 });
    expect(parsePipelineConfig(valid).training.runner).toBe('tfjs');
  });

  it('names what a Python step or an import lacks', () => {
    expect(() => parsePipelineConfig({ ...valid, training: { ...python, entrypoint: undefined } })).toThrowError(
      /training\.entrypoint: a Python step needs an entrypoint/,
    );
    expect(() => parsePipelineConfig({ ...valid, training: { ...python, entrypoint: 'train.py' } })).toThrowError(
      /training\.entrypoint: must be "module:function"/,
    );
    const imported = { ...valid.training, runner: 'import' };
    expect(() => parsePipelineConfig({ ...valid, training: imported })).toThrowError(/training\.source: .*ONNX file/);
    expect(() => parsePipelineConfig({ ...valid, training: imported })).toThrowError(/training\.signature/);
  });

  it("lets a sweep over a Python step vary the user's parameters, and only TF.js names otherwise", () => {
    const sweep = { method: 'random', trials: 3, parameters: { depth: { values: [2, 3, 4] } } };
    const config = parsePipelineConfig({ ...valid, training: { ...python, sweep } });
    expect(Object.keys(config.training.sweep!.parameters)).toEqual(['depth']);
    expect(() => parsePipelineConfig({ ...valid, training: { ...valid.training, sweep } })).toThrowError(
      /training\.sweep\.parameters\.depth: cannot be swept/,
    );
  });
});
