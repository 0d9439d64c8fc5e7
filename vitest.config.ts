import { defineConfig } from 'vitest/config';
import { SecretScanLastSequencer } from './tests/sequencer';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Integration tests share one local stack on 2 cores: run files one after another.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Notes when the run began; the secret scan (zz-secrets.test.ts) runs last and reads only what this run wrote.
    globalSetup: ['tests/globalSetup.ts'],
    sequence: { sequencer: SecretScanLastSequencer },
  },
});
