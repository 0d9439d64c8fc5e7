/**
 * Finds secrets where none may be: Flywheel tokens, passwords in `scheme://user:password@` URLs and the stack's own
 * known secrets (S3 key, database password, grant key, webhook secrets), in nested values such as Temporal history
 * events (payload bytes decoded, JSON walked) and in files other users may read. A hit names where and which kind of
 * secret, never the secret itself.
 */
import { lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { TOKEN_SCOPES } from '../store/tokens';

/** A secret known by value: `kind` is what a hit reports (e.g. `MinIO secret key`). */
export interface KnownSecret {
  kind: string;
  value: string;
}

export interface SecretHit {
  kind: string;
  /** Where in the value: `a.b[0].data<json>.c`. */
  path: string;
}

/**
 * Workflow ids of histories a test plants a secret in on purpose (to show it is ignored, or found): every scan skips
 * them.
 */
export const PLANTED_SECRET_PREFIX = 'planted-secret-';

export const TOKEN_KIND = 'Flywheel API token';
export const URL_PASSWORD_KIND = 'password in a URL';

// At least 8 characters after the scope: a redacted `fw_admin_***` or a bare prefix is no token.
const TOKEN_PATTERN = new RegExp(`(?<![A-Za-z0-9])fw_(?:${TOKEN_SCOPES.join('|')})_[A-Za-z0-9_-]{8,}`);
const URL_PASSWORD_PATTERN = /[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'<>\\]*:([^\s/?#@"'<>\\]+)@/gi;
/** What stands in for a password without being one: a redaction mask or a reference to an environment variable. */
const PASSWORD_PLACEHOLDER = /^(\*+|x+|redacted|\[redacted\]|<[^>]*>|\$\{[^}]+\}|\$[A-Z_][A-Z0-9_]*|%2A+)$/i;
/** Shorter known secrets (a test's `s3cret`) match only as a whole word, so they do not hit inside innocent text. */
const WHOLE_WORD_BELOW = 12;
const MIN_KNOWN_LENGTH = 4;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class SecretMatcher {
  private readonly known: { kind: string; value: string; word?: RegExp }[];
  /** Known secrets too short to look for without false alarms (reported, so a test can say what it skipped). */
  readonly tooShort: string[] = [];

  constructor(known: readonly KnownSecret[] = []) {
    const seen = new Set<string>();
    this.known = [];
    for (const secret of known) {
      if (seen.has(secret.value)) continue;
      seen.add(secret.value);
      if (secret.value.length < MIN_KNOWN_LENGTH) {
        this.tooShort.push(secret.kind);
        continue;
      }
      const word =
        secret.value.length < WHOLE_WORD_BELOW
          ? new RegExp(`(?<![A-Za-z0-9_-])${escapeRegExp(secret.value)}(?![A-Za-z0-9_-])`)
          : undefined;
      this.known.push({ kind: secret.kind, value: secret.value, word });
    }
  }

  /** The kinds of secret in `text`, each once. */
  kindsIn(text: string): string[] {
    const kinds = new Set<string>();
    if (TOKEN_PATTERN.test(text)) kinds.add(TOKEN_KIND);
    for (const match of text.matchAll(URL_PASSWORD_PATTERN)) {
      if (!PASSWORD_PLACEHOLDER.test(match[1]!)) kinds.add(URL_PASSWORD_KIND);
    }
    for (const secret of this.known) {
      if (secret.word ? secret.word.test(text) : text.includes(secret.value)) kinds.add(secret.kind);
    }
    return [...kinds];
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Every secret in a nested value: strings are matched; bytes (a Temporal payload's `data`) are decoded as UTF-8 and,
 * when they parse as JSON, walked leaf by leaf, so an escaped character cannot hide a password.
 */
export function findSecrets(
  value: unknown,
  matcher: SecretMatcher,
  path = '',
  seen = new WeakSet<object>(),
): SecretHit[] {
  if (typeof value === 'string') return matcher.kindsIn(value).map((kind) => ({ kind, path }));
  if (value instanceof Uint8Array) {
    const text = utf8.decode(value);
    const json = parseJson(text);
    return json === undefined
      ? matcher.kindsIn(text).map((kind) => ({ kind, path }))
      : findSecrets(json, matcher, `${path}<json>`, seen);
  }
  if (value === null || typeof value !== 'object' || seen.has(value)) return [];
  seen.add(value);
  if (Array.isArray(value)) return value.flatMap((item, i) => findSecrets(item, matcher, `${path}[${i}]`, seen));
  return Object.entries(value).flatMap(([key, inner]) => {
    const inKey = matcher.kindsIn(key);
    // A key that is itself a secret is named by its length only, here and in the paths below it.
    const segment = inKey.length > 0 ? `{a ${key.length}-character key}` : key;
    const at = path ? `${path}.${segment}` : segment;
    return [...inKey.map((kind) => ({ kind, path: at })), ...findSecrets(inner, matcher, at, seen)];
  });
}

function parseJson(text: string): unknown {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[' && first !== '"') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The few attribute fields that tie an event to its activity or child workflow. */
interface EventAttributes {
  activityType?: { name?: string } | null;
  workflowType?: { name?: string } | null;
  scheduledEventId?: { toString(): string } | number | null;
  initiatedEventId?: { toString(): string } | number | null;
}

export interface HistoryHit extends SecretHit {
  eventId: string;
  /** `ActivityTaskCompleted`, `WorkflowExecutionStarted`… */
  eventType: string;
  /** The activity or child workflow the event belongs to, when it belongs to one. */
  subject?: string;
}

/** The secrets in one workflow history, each with its event id, event type and the activity or child it concerns. */
export function findSecretsInHistory(events: readonly object[], matcher: SecretMatcher): HistoryHit[] {
  const scheduled = new Map<string, string>();
  const hits: HistoryHit[] = [];
  // As the client's `fetchHistory()` returns them: protobuf objects, one `…EventAttributes` set, ids possibly Longs.
  for (const event of events as Record<string, unknown>[]) {
    const eventId = String(event.eventId ?? '?');
    const attributesKey = Object.keys(event).find((key) => key.endsWith('EventAttributes') && event[key]);
    const attributes = (attributesKey ? event[attributesKey] : undefined) as EventAttributes | undefined;
    const eventType = attributesKey
      ? attributesKey[0]!.toUpperCase() + attributesKey.slice(1, -'EventAttributes'.length)
      : 'Unknown';
    if (attributesKey === 'activityTaskScheduledEventAttributes')
      scheduled.set(eventId, `activity ${attributes?.activityType?.name}`);
    if (attributesKey === 'startChildWorkflowExecutionInitiatedEventAttributes')
      scheduled.set(eventId, `child workflow ${attributes?.workflowType?.name}`);
    const subject =
      scheduled.get(eventId) ??
      scheduled.get(String(attributes?.scheduledEventId ?? attributes?.initiatedEventId ?? ''));
    for (const hit of findSecrets(event, matcher)) hits.push({ ...hit, eventId, eventType, subject });
  }
  return hits;
}

export interface FileExposure {
  path: string;
  /** e.g. `0644`. */
  mode: string;
  /** Who besides the owner may read it: every folder above it lets them through and the file lets them read. */
  readers: ('group' | 'others')[];
}

const CLASSES = [
  { name: 'group', read: 0o040, search: 0o010 },
  { name: 'others', read: 0o004, search: 0o001 },
] as const;

export const octal = (stats: Stats) => `0${(stats.mode & 0o777).toString(8).padStart(3, '0')}`;

/**
 * The files under `root` that group or others can read (through folders they may enter). Folders they cannot enter
 * are not walked, so a private MinIO or Postgres data folder costs nothing. Symbolic links are not followed.
 */
export function filesReadableByOthers(root: string): FileExposure[] {
  const rootStats = lstatSync(root);
  const reach = CLASSES.filter((c) => rootStats.mode & c.search).map((c) => c.name);
  const exposed: FileExposure[] = [];
  const walk = (dir: string, through: readonly ('group' | 'others')[]) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      const stats = lstatSync(path);
      if (stats.isDirectory()) {
        const next = through.filter((name) => stats.mode & CLASSES.find((c) => c.name === name)!.search);
        if (next.length > 0) walk(path, next);
      } else if (stats.isFile()) {
        const readers = through.filter((name) => stats.mode & CLASSES.find((c) => c.name === name)!.read);
        if (readers.length > 0) exposed.push({ path, mode: octal(stats), readers });
      }
    }
  };
  if (reach.length > 0) walk(root, reach);
  return exposed;
}

/** The secret kinds in a file's bytes (read whole; the files scanned are the stack's own, not data sets). */
export function secretsInFile(path: string, matcher: SecretMatcher, fromByte = 0): string[] {
  const bytes = readFileSync(path);
  return matcher.kindsIn(utf8.decode(bytes.subarray(Math.min(fromByte, bytes.length))));
}
