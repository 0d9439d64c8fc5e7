/**
 * Builds the web UI (web/ → web/dist, Vite) when web/dist is missing or older than its sources: a hash of web/'s
 * sources is stored in web/dist, so a fresh clone, `npm run demo` and `npm test` serve the UI of the code checked out.
 * `tsx scripts/ui.ts [--force]` builds from the command line.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PROJECT_ROOT } from '../config/env';

export const WEB_DIR = join(PROJECT_ROOT, 'web');
export const UI_DIST = join(WEB_DIR, 'dist');
const HASH_FILE = '.source-hash';
const VITE = join(PROJECT_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');

export class UiBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UiBuildError';
  }
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== UI_DIST && entry.name !== 'node_modules' && !entry.name.startsWith('dist'))
        files.push(...sourceFiles(path));
    } else files.push(path);
  }
  return files;
}

/** sha256 over web/'s source files (names and contents, in a stable order). */
export function uiSourceHash(): string {
  const hash = createHash('sha256');
  for (const file of sourceFiles(WEB_DIR).sort()) {
    hash.update(relative(WEB_DIR, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

/** The hash the built UI was made from; undefined when there is no build. */
export function builtUiHash(): string | undefined {
  const file = join(UI_DIST, HASH_FILE);
  return existsSync(join(UI_DIST, 'index.html')) && existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

export const uiIsBuilt = () => existsSync(join(UI_DIST, 'index.html'));

let building: Promise<string> | undefined;

/**
 * web/dist, built first when missing or stale. The build goes to a scratch folder that then replaces web/dist, so a
 * server never serves half a build. Without Vite (an install without devDependencies) a stale build is still served.
 */
export function ensureUiBuilt(options: { force?: boolean; log?: (line: string) => void } = {}): Promise<string> {
  return (building ??= build(options).finally(() => (building = undefined)));
}

async function build(options: { force?: boolean; log?: (line: string) => void }): Promise<string> {
  const wanted = uiSourceHash();
  if (!options.force && builtUiHash() === wanted) return UI_DIST;
  if (!existsSync(VITE)) {
    if (uiIsBuilt()) return UI_DIST;
    throw new UiBuildError(
      `the web UI is not built (no ${relative(PROJECT_ROOT, UI_DIST)}) and Vite is not installed: run \`npm ci\` (with devDependencies), then \`npx tsx scripts/ui.ts\``,
    );
  }
  const scratch = `${UI_DIST}-build-${process.pid}`;
  options.log?.('building the web UI (vite build web/) …');
  const started = Date.now();
  try {
    await new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        [
          VITE,
          'build',
          '--config',
          join(WEB_DIR, 'vite.config.ts'),
          '--outDir',
          scratch,
          '--emptyOutDir',
          '--logLevel',
          'warn',
        ],
        { cwd: WEB_DIR, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
        (error, _stdout, stderr) =>
          error ? reject(new UiBuildError(`vite build of web/ failed: ${stderr || error.message}`)) : resolve(),
      ),
    );
  } catch (error) {
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  }
  writeFileSync(join(scratch, HASH_FILE), `${wanted}\n`);
  rmSync(UI_DIST, { recursive: true, force: true });
  renameSync(scratch, UI_DIST);
  options.log?.(
    `built the web UI in ${((Date.now() - started) / 1000).toFixed(1)} s → ${relative(PROJECT_ROOT, UI_DIST)}`,
  );
  return UI_DIST;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  ensureUiBuilt({ force: process.argv.includes('--force'), log: (line) => console.error(line) }).then(
    (dir) => console.log(dir),
    (error: unknown) => {
      console.error((error as Error).message);
      process.exit(1);
    },
  );
}
