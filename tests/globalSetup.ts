/**
 * Runs once before any test file: notes when the run began and how long each stack log was then, so the secret scan
 * (tests/integration/zz-secrets.test.ts) reads only this run's workflow histories and log lines.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../config/env';

declare module 'vitest' {
  export interface ProvidedContext {
    /** ISO time the run began (a few seconds early, so a workflow started in the same second is not missed). */
    suiteStartedAt: string;
    /** Bytes in each `<stateDir>/logs/*` file when the run began. */
    stackLogSizes: Record<string, number>;
  }
}

export default function setup(project: TestProject): void {
  const logs = join(loadConfig().stateDir, 'logs');
  const sizes = existsSync(logs)
    ? Object.fromEntries(readdirSync(logs).map((name) => [name, statSync(join(logs, name)).size]))
    : {};
  project.provide('suiteStartedAt', new Date(Date.now() - 5_000).toISOString());
  project.provide('stackLogSizes', sizes);
}
