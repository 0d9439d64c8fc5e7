/**
 * The secret scanner's matching: planted tokens, URL passwords and known secrets found in nested payloads; grants,
 * hashes and redactions left alone.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { issueGrant } from '../../store/grants';
import { hashToken } from '../../store/tokens';
import {
  filesReadableByOthers,
  findSecrets,
  findSecretsInHistory,
  SecretMatcher,
  TOKEN_KIND,
  URL_PASSWORD_KIND,
} from '../secretScanner';

const token = 'fw_write_Zm9vYmFyYmF6cXV4cXV1eC1fXy0tAAAA';
const payload = (value: unknown) => ({
  metadata: { encoding: new TextEncoder().encode('json/plain') },
  data: new TextEncoder().encode(JSON.stringify(value)),
});

describe('SecretMatcher', () => {
  const matcher = new SecretMatcher([
    { kind: 'S3 secret key', value: 'c0OxEnmhMc1sAbCdEfGh12345' },
    { kind: 'webhook secret', value: 's3cret' },
  ]);

  it('finds tokens of every scope, URL passwords and known secrets, each once', () => {
    expect(matcher.kindsIn(`a ${token} b`)).toEqual([TOKEN_KIND]);
    expect(matcher.kindsIn('fw_admin_test_t-lx3abc-1a2b')).toEqual([TOKEN_KIND]);
    expect(matcher.kindsIn('source postgres://flywheel:hunter2@db:5432/f and mysql://root:pw@h/x')).toEqual([
      URL_PASSWORD_KIND,
    ]);
    expect(matcher.kindsIn('https://:onlypassword@host/')).toEqual([URL_PASSWORD_KIND]);
    expect(matcher.kindsIn('key=c0OxEnmhMc1sAbCdEfGh12345;')).toEqual(['S3 secret key']);
    expect(matcher.kindsIn('{"secret":"s3cret"}')).toEqual(['webhook secret']);
  });

  it('leaves grants, hashed tokens, redactions, env references and passwordless URLs alone', () => {
    const grant = issueGrant(
      { actor: 'token:ci', scope: 'admin', model: 'demand-model', action: 'release', workflowId: 'wf-1' },
      { key: Buffer.alloc(32, 7) },
    );
    expect(findSecrets(grant, matcher)).toEqual([]);
    expect(matcher.kindsIn(hashToken(token))).toEqual([]);
    expect(matcher.kindsIn('postgres://flywheel:***@db:5432/f with fw_admin_*** and fw_write_')).toEqual([]);
    expect(
      matcher.kindsIn(
        'postgres://app:${PGPASSWORD}@db/x, postgres://postgres@127.0.0.1:54329/flywheel_af855d5d, http://127.0.0.1:8470/api',
      ),
    ).toEqual([]);
    expect(
      matcher.kindsIn('at file:///work/main/workflows/pipeline.ts:12:5 (node:internal/process/task_queues:95:5)'),
    ).toEqual([]);
  });

  it('matches a short known secret only as a whole word, and skips one too short to look for', () => {
    expect(matcher.kindsIn('the s3cretary filed it')).toEqual([]);
    expect(new SecretMatcher([{ kind: 'webhook secret', value: 'abc' }]).tooShort).toEqual(['webhook secret']);
  });
});

describe('findSecrets', () => {
  const matcher = new SecretMatcher([]);

  it('decodes payload bytes, walks their JSON and names the path (a JSON-escaped quote does not hide a secret)', () => {
    const event = {
      eventId: 5,
      activityTaskCompletedEventAttributes: {
        scheduledEventId: 4,
        result: { payloads: [payload([{ id: 1, hook: { url: 'https://x/h', token } }])] },
      },
    };
    expect(findSecrets(event, matcher)).toEqual([
      { kind: TOKEN_KIND, path: 'activityTaskCompletedEventAttributes.result.payloads[0].data<json>[0].hook.token' },
    ]);
    expect(findSecrets({ data: payload({ source: 'postgres://u:p%22q@h/db' }).data }, matcher)).toEqual([
      { kind: URL_PASSWORD_KIND, path: 'data<json>.source' },
    ]);
    const quoted = new SecretMatcher([{ kind: 'webhook secret', value: 'say "when" \\ now-please' }]);
    expect(findSecrets({ data: payload({ hook: { secret: 'say "when" \\ now-please' } }).data }, quoted)).toEqual([
      { kind: 'webhook secret', path: 'data<json>.hook.secret' },
    ]);
    expect(findSecrets({ data: new TextEncoder().encode(`plain text ${token}`) }, matcher)).toEqual([
      { kind: TOKEN_KIND, path: 'data' },
    ]);
  });

  it('names a key that is itself a secret by its length only', () => {
    expect(findSecrets({ byToken: { [token]: 1 } }, matcher)).toEqual([
      { kind: TOKEN_KIND, path: `byToken.{a ${token.length}-character key}` },
    ]);
  });

  it('ties a history hit to its event and activity', () => {
    const events = [
      { eventId: 4, activityTaskScheduledEventAttributes: { activityType: { name: 'listWebhookTargets' } } },
      {
        eventId: 5,
        activityTaskCompletedEventAttributes: {
          scheduledEventId: 4,
          result: { payloads: [payload({ secret: token })] },
        },
      },
    ];
    expect(findSecretsInHistory(events, matcher)).toEqual([
      {
        kind: TOKEN_KIND,
        eventId: '5',
        eventType: 'ActivityTaskCompleted',
        subject: 'activity listWebhookTargets',
        path: 'activityTaskCompletedEventAttributes.result.payloads[0].data<json>.secret',
      },
    ]);
  });
});

describe('filesReadableByOthers', () => {
  const root = mkdtempSync(join(tmpdir(), 'flywheel-secret-scan-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('lists files others can reach and read, not those behind a folder they cannot enter', () => {
    chmodSync(root, 0o711);
    mkdirSync(join(root, 'open'));
    mkdirSync(join(root, 'closed'));
    const files = { 'open/config.json': 0o644, 'closed/config.json': 0o644, token: 0o600, 'group-only': 0o640 };
    for (const [name, mode] of Object.entries(files)) {
      writeFileSync(join(root, name), '{}');
      chmodSync(join(root, name), mode); // not left to the umask
    }
    chmodSync(join(root, 'open'), 0o755);
    chmodSync(join(root, 'closed'), 0o700);
    expect(filesReadableByOthers(root).sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: join(root, 'group-only'), mode: '0640', readers: ['group'] },
      { path: join(root, 'open', 'config.json'), mode: '0644', readers: ['group', 'others'] },
    ]);
  });
});
