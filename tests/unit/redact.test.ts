import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../config/redact';

describe('redactSecrets', () => {
  it('takes URL passwords, Flywheel tokens and authorization headers out of a log line', () => {
    const line = 'POST /x: error connecting to postgres://flywheel:s3cret@db:5432/f with fw_admin_AbC-12_x and Authorization: Bearer abc.def';
    const redacted = redactSecrets(line);
    expect(redacted).not.toMatch(/s3cret|AbC-12_x|abc\.def/);
    expect(redacted).toContain('postgres://flywheel:***@db:5432/f');
    expect(redacted).toContain('fw_admin_***');
  });
});
