/**
 * The last file of every run (tests/sequencer.ts puts it there): no token, key, webhook secret or password in any
 * workflow history this run started or closed, in a stack log line it wrote, or in a `.flywheel/` file other users can
 * read; and the files that hold credentials are the owner's alone. A finding names the workflow, event and field (or
 * the file) and the kind of secret, never the secret.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { isNotNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { registryWebhooks } from '../../schema/models';
import { closeDb, connectDb, type Db } from '../../storage/db';
import { temporalClient } from '../../storage/temporal';
import { loadConfig } from '../../config/env';
import {
  filesReadableByOthers,
  findSecretsInHistory,
  octal,
  PLANTED_SECRET_PREFIX,
  SecretMatcher,
  secretsInFile,
  TOKEN_KIND,
  URL_PASSWORD_KIND,
  type KnownSecret,
} from '../secretScanner';
import { eventually, unique } from './harness';

const FETCH_CONCURRENCY = 6;
const SCAN_TIMEOUT_MS = 600_000;

const config = loadConfig();
const since = inject('suiteStartedAt');
let client: Client;
let db: Db;
let matcher: SecretMatcher;

beforeAll(async () => {
  client = await temporalClient(config.temporal);
  db = connectDb(config.databaseUrl, 1);
  matcher = new SecretMatcher(await knownSecrets());
});

afterAll(async () => {
  await client?.connection.close();
  if (db) await closeDb(db);
});

/** The stack's own secrets and every webhook secret stored; tokens and URL passwords are found by their shape. */
async function knownSecrets(): Promise<KnownSecret[]> {
  const secrets: KnownSecret[] = [];
  if (config.s3.secretKey) secrets.push({ kind: 'S3 (MinIO) secret key', value: config.s3.secretKey });
  const databasePassword = decodeURIComponent(new URL(config.databaseUrl).password);
  if (databasePassword) secrets.push({ kind: 'database password', value: databasePassword });
  if (config.temporal.apiKey) secrets.push({ kind: 'Temporal API key', value: config.temporal.apiKey });
  if (config.server.token) secrets.push({ kind: 'FLYWHEEL_TOKEN', value: config.server.token });
  const keyFile = join(config.stateDir, 'grant-key');
  const grantKey = config.grantKey
    ? Buffer.from(config.grantKey, 'utf8')
    : existsSync(keyFile)
      ? readFileSync(keyFile)
      : undefined;
  if (grantKey) {
    if (config.grantKey) secrets.push({ kind: 'grant signing key', value: config.grantKey });
    for (const encoding of ['hex', 'base64', 'base64url'] as const)
      secrets.push({ kind: 'grant signing key', value: grantKey.toString(encoding) });
  }
  const hooks = await db
    .selectDistinct({ secret: registryWebhooks.secret })
    .from(registryWebhooks)
    .where(isNotNull(registryWebhooks.secret));
  for (const hook of hooks) secrets.push({ kind: 'registry webhook secret', value: hook.secret! });
  return secrets;
}

/** `text`, or a note that it is withheld because it holds a secret (a workflow id built from one, say). */
function shown(text: string): string {
  const kinds = matcher.kindsIn(text);
  return kinds.length ? `[withheld: holds a ${kinds.join(', ')}]` : text;
}

async function forEachLimited<T>(items: readonly T[], limit: number, act: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await act(items[next++]!);
    }),
  );
}

interface Execution {
  workflowId: string;
  runId: string;
  type: string;
  taskQueue: string;
}

/** Every execution that started or closed since the run began, page by page. */
async function executionsOfThisRun(): Promise<Execution[]> {
  const executions: Execution[] = [];
  for await (const info of client.workflow.list({
    query: `StartTime >= "${since}" OR CloseTime >= "${since}"`,
    pageSize: 500,
  })) {
    executions.push({ workflowId: info.workflowId, runId: info.runId, type: info.type, taskQueue: info.taskQueue });
  }
  return executions;
}

/** One line per secret in the execution's history: where it is and what kind, never what. */
async function leaksIn(execution: Execution): Promise<string[]> {
  const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
  return findSecretsInHistory(history.events ?? [], matcher).map(
    (hit) =>
      `${shown(execution.type)} ${shown(execution.workflowId)} (run ${execution.runId}, queue ${shown(execution.taskQueue)}): ` +
      `event ${hit.eventId} ${hit.eventType}${hit.subject ? ` of ${shown(hit.subject)}` : ''}, at ${shown(hit.path)}: a ${hit.kind}`,
  );
}

describe('no secret outlives the suite', () => {
  it('finds a token and a URL password planted in a real workflow history (the scan can see)', async () => {
    const workflowId = unique(`${PLANTED_SECRET_PREFIX}canary`);
    // No worker polls this queue: the workflow never runs, but its input is in the history at once.
    const handle = await client.workflow.start('secretScanCanary', {
      workflowId,
      taskQueue: unique('secret-scan-canary'),
      args: [
        {
          nested: {
            token: `fw_admin_${randomBytes(18).toString('base64url')}`,
            source: `postgres://canary:${randomBytes(9).toString('base64url')}@127.0.0.1:1/none`,
          },
        },
      ],
    });
    try {
      const listed = await eventually(
        async () => (await executionsOfThisRun()).find((e) => e.workflowId === workflowId),
        30_000,
        'the canary in the list of this run',
      );
      const found = (await leaksIn(listed)).join('\n');
      expect(found).toMatch(
        new RegExp(
          `WorkflowExecutionStarted, at workflowExecutionStartedEventAttributes\\.input\\.payloads\\[0\\]\\.data<json>\\.nested\\.token: a ${TOKEN_KIND}`,
        ),
      );
      expect(found).toContain(`.nested.source: a ${URL_PASSWORD_KIND}`);
    } finally {
      await handle.terminate('secret scan canary');
    }
  });

  it(
    'leaves no token, key, webhook secret or password in any workflow history of the run',
    async () => {
      const executions = (await executionsOfThisRun()).filter((e) => !e.workflowId.startsWith(PLANTED_SECRET_PREFIX));
      const leaks: string[] = [];
      await forEachLimited(executions, FETCH_CONCURRENCY, async (execution) => {
        leaks.push(...(await leaksIn(execution)));
      });
      expect(
        leaks,
        `secrets in ${new Set(leaks.map((l) => l.split(' (run ')[0])).size} of the ${executions.length} workflow histories since ${since}`,
      ).toEqual([]);
    },
    SCAN_TIMEOUT_MS,
  );

  it.skipIf(!existsSync(join(config.stateDir, 'logs')))('writes no secret to a stack log during the run', () => {
    const logs = join(config.stateDir, 'logs');
    const sizesAtStart = inject('stackLogSizes');
    const leaks: string[] = [];
    for (const name of readdirSync(logs)) {
      const path = join(logs, name);
      const before = sizesAtStart[name] ?? 0;
      // A log shorter than at the start was rotated or truncated: all of it is this run's.
      const from = statSync(path).size >= before ? before : 0;
      for (const kind of secretsInFile(path, matcher, from)) leaks.push(`${path} (from byte ${from}): a ${kind}`);
    }
    expect(leaks).toEqual([]);
  });

  it.skipIf(!existsSync(config.stateDir))(
    'keeps credential files private and no secret in a state file other users can read',
    () => {
      const problems: string[] = [];
      const mode = (path: string) => lstatSync(path).mode & 0o777;
      const stateDir = config.stateDir;
      // 0711 lets the embedded Postgres (its own user) reach its data folder; nobody else may list or read the folder.
      if (mode(stateDir) & 0o066) problems.push(`${stateDir} is ${octal(lstatSync(stateDir))}, want 0700 or 0711`);
      for (const name of ['logs', 'minio', 'postgres']) {
        const path = join(stateDir, name);
        if (existsSync(path) && mode(path) & 0o077) problems.push(`${path} is ${octal(lstatSync(path))}, want 0700`);
      }
      for (const name of [
        'cli-token',
        'grant-key',
        'stack.json',
        'temporal.db',
        'temporal.db-wal',
        'temporal.db-shm',
        'temporal.db-journal',
      ]) {
        const path = join(stateDir, name);
        if (existsSync(path) && mode(path) & 0o077) problems.push(`${path} is ${octal(lstatSync(path))}, want 0600`);
      }
      for (const file of filesReadableByOthers(stateDir)) {
        for (const kind of secretsInFile(file.path, matcher))
          problems.push(`${file.path} (${file.mode}, readable by ${file.readers.join(' and ')}) holds a ${kind}`);
      }
      expect(problems).toEqual([]);
    },
  );
});
