/**
 * The path of Debian's chromium for browser tests and bench/ui.ts (driven by playwright-core; no browser download):
 * installed with apt-get when missing and running as root, else a message saying how to install it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { childEnv } from '../config/env';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

export class ChromiumMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChromiumMissingError';
  }
}

const found = () => CANDIDATES.find((path) => existsSync(path));

function aptGet(args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(
      'apt-get',
      args,
      { env: childEnv({ DEBIAN_FRONTEND: 'noninteractive' }), timeout: 900_000, maxBuffer: 64 * 1024 * 1024 },
      (error, _stdout, stderr) =>
        error ? reject(new ChromiumMissingError(`apt-get ${args.join(' ')}: ${stderr || error.message}`)) : resolve(),
    ),
  );
}

let installing: Promise<string> | undefined;

export function chromiumPath(log: (line: string) => void = (line) => console.error(line)): Promise<string> {
  const path = found();
  if (path) return Promise.resolve(path);
  if (process.getuid?.() !== 0)
    return Promise.reject(
      new ChromiumMissingError(
        "Debian's chromium is not installed (no /usr/bin/chromium): run `sudo apt-get install -y chromium`",
      ),
    );
  return (installing ??= (async () => {
    log('installing Debian chromium with apt-get (once) …');
    await aptGet(['update']);
    await aptGet(['install', '-y', '--no-install-recommends', 'chromium']);
    const installed = found();
    if (!installed)
      throw new ChromiumMissingError('apt-get installed chromium, but /usr/bin/chromium is still missing');
    return installed;
  })());
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  chromiumPath().then(
    (path) => console.log(path),
    (error: unknown) => {
      console.error((error as Error).message);
      process.exit(1);
    },
  );
}
