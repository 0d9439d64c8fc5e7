import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkName, ConfigError, loadPipelineConfig, parsePipelineConfig } from '../../config/pipeline';
import { checkLocalPath, localPath, SourceError, type LocalAccess } from '../../storage/sources';
import { loadConfig } from '../../config/env';

let dir: string;
let access: LocalAccess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flywheel-roots-'));
  await mkdir(join(dir, 'data'));
  await mkdir(join(dir, 'state'));
  await writeFile(join(dir, 'data', 'sales.csv'), 'a\n1\n');
  await writeFile(join(dir, 'state', 'stack.json'), '{}');
  await writeFile(join(dir, 'outside.csv'), 'a\n1\n');
  await symlink('/etc/passwd', join(dir, 'data', 'passwd.csv'));
  await symlink(join(dir, 'state', 'stack.json'), join(dir, 'data', 'stack.csv'));
  access = { roots: [join(dir, 'data')], stateDir: join(dir, 'state') };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('local sources are read only from allowed folders', () => {
  it('reads a file under a root, by path or file:// URL (percent-decoded)', async () => {
    expect(await checkLocalPath(join(dir, 'data', 'sales.csv'), access)).toMatch(/sales\.csv$/);
    expect(localPath(pathToFileURL(join(dir, 'data', 'my sales.csv')).href)).toBe(join(dir, 'data', 'my sales.csv'));
  });

  it('refuses /etc/passwd and a path that climbs out, naming the path and the allowed roots', async () => {
    await expect(checkLocalPath('/etc/passwd', access)).rejects.toThrow(
      new RegExp(
        `^/etc/passwd: not under an allowed data folder \\(.*${dir.split('/').pop()}/data\\); .*FLYWHEEL_DATA_ROOTS`,
      ),
    );
    await expect(checkLocalPath(join(dir, 'data', '..', 'outside.csv'), access)).rejects.toThrow(SourceError);
  });

  it('resolves symlinks first: a link inside a root to a file outside it is refused', async () => {
    await expect(checkLocalPath(join(dir, 'data', 'passwd.csv'), access)).rejects.toThrow(
      /passwd\.csv \(→ \/etc\/passwd\): not under an allowed data folder/,
    );
  });

  it('never reads the state folder, even when a root contains it or a link points into it', async () => {
    const wide = { ...access, roots: ['/'] };
    await expect(checkLocalPath(join(dir, 'state', 'stack.json'), wide)).rejects.toThrow(
      /lies in Flywheel's state folder/,
    );
    await expect(checkLocalPath(join(dir, 'data', 'stack.csv'), wide)).rejects.toThrow(
      /lies in Flywheel's state folder/,
    );
    await expect(
      checkLocalPath(join(loadConfig().stateDir, 'stack.json'), { roots: ['/'], stateDir: '/nonexistent' }),
    ).rejects.toThrow(/state folder|no such file/);
  });

  it('names a missing file as before', async () => {
    await expect(checkLocalPath(join(dir, 'data', 'nope.csv'), access)).rejects.toThrow(
      `${join(dir, 'data', 'nope.csv')}: no such file`,
    );
  });

  it('takes FLYWHEEL_DATA_ROOTS (colon-separated) before ./data', () => {
    expect(loadConfig({ FLYWHEEL_DATA_ROOTS: '/srv/a::/srv/b' }).dataRoots).toEqual([
      '/srv/a',
      '/srv/b',
      join(process.cwd(), 'data'),
    ]);
  });

  it('records the folder of a loaded config, and drops a configDir from any other input', async () => {
    const file = join(dir, 'pipeline.yaml');
    await writeFile(
      file,
      [
        'name: p',
        'model: m',
        'data: { dataset: d, source: ./data/sales.csv, configDir: / }',
        'training: { task: regression, target: a, features: { numeric: [a] } }',
      ].join('\n'),
    );
    const loaded = loadPipelineConfig(file);
    expect(loaded.data).toMatchObject({ source: join(dir, 'data', 'sales.csv'), configDir: dir });
    const fromApi = parsePipelineConfig({
      name: 'p',
      model: 'm',
      data: { dataset: 'd', source: '/etc/passwd', configDir: '/' },
      training: { task: 'regression', target: 'a', features: { numeric: ['a'] } },
    });
    expect(fromApi.data.configDir).toBeUndefined();
    expect(parsePipelineConfig(loaded, 'stored', { keepConfigDir: true }).data.configDir).toBe(dir);
  });
});

describe('names', () => {
  const config = (data: Record<string, unknown>, top: Record<string, unknown> = {}) => ({
    name: 'p',
    model: 'm',
    data: { dataset: 'd', source: '/x.csv', ...data },
    training: { task: 'regression', target: 'a', features: { numeric: ['a'] } },
    ...top,
  });

  it('refuses a dataset, model or pipeline name that could become a path or SQL, naming the field', () => {
    expect(() => parsePipelineConfig(config({ dataset: '../../etc/evil' }))).toThrow(
      /data\.dataset: must be 1-128 letters, digits, "\.", "_" or "-", starting with a letter or digit \(got "\.\.\/\.\.\/etc\/evil"\)/,
    );
    expect(() => parsePipelineConfig(config({}, { model: "x'; DROP TABLE runs; --" }))).toThrow(/model: must be 1-128/);
    expect(() => parsePipelineConfig(config({}, { name: 'a'.repeat(129) }))).toThrow(/name: must be 1-128/);
    expect(parsePipelineConfig(config({ dataset: 'Sales_2026.v2-eu' }, { name: 'a'.repeat(128) })).data.dataset).toBe(
      'Sales_2026.v2-eu',
    );
    expect(() => checkName('dataset', '../x')).toThrow(ConfigError);
    expect(() => checkName('dataset', 'ok')).not.toThrow();
  });
});
