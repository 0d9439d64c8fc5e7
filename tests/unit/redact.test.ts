import { describe, expect, it } from 'vitest';
import { inlineSecretProblem, redactSecrets } from '../../config/redact';
import { parsePipelineConfig } from '../../config/pipeline';
import { resolveSecretReferences } from '../../storage/sources';

describe('redactSecrets', () => {
  it('takes URL passwords, Flywheel tokens and authorization headers out of a log line', () => {
    const line =
      'POST /x: error connecting to postgres://flywheel:s3cret@db:5432/f with fw_admin_AbC-12_x and Authorization: Bearer abc.def';
    const redacted = redactSecrets(line);
    expect(redacted).not.toMatch(/s3cret|AbC-12_x|abc\.def/);
    expect(redacted).toContain('postgres://flywheel:***@db:5432/f');
    expect(redacted).toContain('fw_admin_***');
  });
});

describe('secrets in source URLs', () => {
  it('refuses a password written into a source URL and accepts a ${VAR} reference or no password', () => {
    expect(inlineSecretProblem('postgres://reader:hunter2@db:5432/warehouse')).toMatch(/password.*\$\{SOME_VARIABLE\}/);
    expect(inlineSecretProblem('https://user:pw@example.com/data.csv')).toBeDefined();
    expect(inlineSecretProblem('postgres://reader:${WAREHOUSE_PASSWORD}@db/warehouse')).toBeUndefined();
    expect(inlineSecretProblem('postgres://postgres@127.0.0.1:54329/flywheel')).toBeUndefined();
    expect(inlineSecretProblem('./data/x.csv')).toBeUndefined();
  });

  it('resolves ${VAR} references from the worker environment when the source is opened, and names a missing one', () => {
    const env = { WAREHOUSE_PASSWORD: 'p@ss/word' };
    expect(resolveSecretReferences('postgres://reader:${WAREHOUSE_PASSWORD}@db/w', env)).toBe(
      'postgres://reader:p%40ss%2Fword@db/w',
    );
    expect(() => resolveSecretReferences('postgres://reader:${NOPE}@db/w', env)).toThrow(
      /\$\{NOPE\} is not set where this worker runs/,
    );
  });

  it('a pipeline config with an inline password is refused at load, naming the field', () => {
    const config = {
      pipeline: 'p',
      model: 'm',
      data: { dataset: 'd', source: 'postgres://u:secret@h/db', query: 'select 1' },
      training: { task: 'regression', target: 'y', features: { numeric: ['x'] } },
    };
    expect(() => parsePipelineConfig(config)).toThrow(/data\.source.*password/);
  });
});
