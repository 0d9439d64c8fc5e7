/**
 * Release grants: secrets by reference. The caller (CLI, API server, the monitor's retraining) verifies an admin token
 * itself and hands the workflow a short-lived statement signed with HMAC-SHA256 — who, which model, which action, which
 * workflow — instead of the token, so no secret reaches Temporal's history. A grant is useless after it expires, for
 * another model, action, alias, version or workflow; alias moves are once per workflow, so replaying one moves nothing.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Db } from '../storage/db';
import { loadConfig, type FlywheelConfig } from '../config/env';
import { verifyToken } from './tokens';

export const GRANT_ACTIONS = ['alias', 'rollback', 'rollout', 'approve', 'release'] as const;
export type GrantAction = (typeof GRANT_ACTIONS)[number];
/** `admin`: a person's admin token; `system`: the monitor's retraining, which may release only through gates. */
export const GRANT_SCOPES = ['admin', 'system'] as const;
export type GrantScope = (typeof GRANT_SCOPES)[number];

/** How long a grant is valid: it is checked when its workflow begins. @default 10 minutes */
export const GRANT_TTL_MS = 10 * 60_000;
const KEY_FILE = 'grant-key';
const MIN_KEY_BYTES = 32;

const claimsSchema = z
  .object({
    id: z.string().min(1),
    /** Recorded as the actor of what the grant allows: `token:<name>`, `alert:<id>`. */
    actor: z.string().min(1),
    scope: z.enum(GRANT_SCOPES),
    model: z.string().min(1),
    action: z.enum(GRANT_ACTIONS),
    /** The workflow it was issued for (its children may present it too). */
    workflowId: z.string().min(1),
    alias: z.string().min(1).optional(),
    version: z.number().int().positive().optional(),
    /** Epoch ms. */
    expiresAt: z.number().int(),
  })
  .strict();
export type GrantClaims = z.infer<typeof claimsSchema>;
const grantSchema = z.object({ claims: claimsSchema, signature: z.string().regex(/^[0-9a-f]{64}$/) }).strict();
export type Grant = z.infer<typeof grantSchema>;
export type GrantRequest = Omit<GrantClaims, 'id' | 'expiresAt'>;

export class GrantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrantError';
  }
}

let cachedKey: { source: string; key: Buffer } | undefined;

/**
 * The signing key the workers, the server and the CLI share: FLYWHEEL_GRANT_KEY (at least 32 characters; set it where
 * they run on different machines), else `<state dir>/grant-key`, 32 random bytes created 0600 on first use.
 */
export function grantKey(config: Pick<FlywheelConfig, 'stateDir' | 'grantKey'> = loadConfig()): Buffer {
  const fromEnv = config.grantKey;
  const stateDir = config.stateDir;
  const source = fromEnv ? 'env' : join(stateDir, KEY_FILE);
  if (cachedKey?.source === source) return cachedKey.key;
  let key: Buffer;
  if (fromEnv) {
    if (fromEnv.length < MIN_KEY_BYTES)
      throw new GrantError(`FLYWHEEL_GRANT_KEY must have at least ${MIN_KEY_BYTES} characters`);
    key = Buffer.from(fromEnv, 'utf8');
  } else key = readOrCreateKey(source);
  cachedKey = { source, key };
  return key;
}

function readOrCreateKey(file: string): Buffer {
  try {
    return checkedKey(readFileSync(file), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  // Written aside and linked into place: a process racing this one reads a whole key or creates none.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(draft, randomBytes(MIN_KEY_BYTES), { mode: 0o600 });
  try {
    linkSync(draft, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(draft);
  }
  return checkedKey(readFileSync(file), file);
}

function checkedKey(key: Buffer, file: string): Buffer {
  if (key.length < MIN_KEY_BYTES)
    throw new GrantError(
      `${file} holds ${key.length} bytes; a grant key needs ${MIN_KEY_BYTES} (delete it to create a new one)`,
    );
  return key;
}

/** The signed text: the claims in a fixed order, so a JSON round trip through Temporal cannot change it. */
function signed(claims: GrantClaims, key: Buffer): string {
  const text = JSON.stringify([
    claims.id,
    claims.actor,
    claims.scope,
    claims.model,
    claims.action,
    claims.workflowId,
    claims.alias ?? null,
    claims.version ?? null,
    claims.expiresAt,
  ]);
  return createHmac('sha256', key).update(text).digest('hex');
}

export function issueGrant(request: GrantRequest, options: { ttlMs?: number; now?: number; key?: Buffer } = {}): Grant {
  const claims: GrantClaims = {
    id: randomUUID(),
    ...request,
    expiresAt: (options.now ?? Date.now()) + (options.ttlMs ?? GRANT_TTL_MS),
  };
  const parsed = claimsSchema.parse(claims);
  return { claims: parsed, signature: signed(parsed, options.key ?? grantKey()) };
}

/**
 * A grant from an admin token the caller checked itself, or null when the token is missing, unknown, revoked or not
 * admin.
 */
export async function grantFromToken(
  db: Db,
  token: string | undefined,
  request: Omit<GrantRequest, 'actor' | 'scope'>,
): Promise<Grant | null> {
  const found = await verifyToken(db, token, ['admin']);
  return found ? issueGrant({ ...request, actor: `token:${found.name}`, scope: 'admin' }) : null;
}

export interface GrantExpectation {
  model: string;
  /** Actions that satisfy the request. */
  actions: readonly GrantAction[];
  /** Workflows the grant may have been issued for. */
  workflowIds: readonly string[];
  /** When set, the grant must name this alias (and `version` this version). */
  alias?: string;
  version?: number;
  /** Only for a grant its parent workflow already checked when it began. @default true */
  checkExpiry?: boolean;
  now?: number;
  key?: Buffer;
}

/** The claims of a valid grant; otherwise a GrantError saying what is wrong with it. */
export function verifyGrant(grant: unknown, expected: GrantExpectation): GrantClaims {
  if (grant === undefined || grant === null) throw new GrantError('no grant was given');
  const parsed = grantSchema.safeParse(grant);
  if (!parsed.success)
    throw new GrantError(
      `the grant is malformed (${parsed.error.issues[0]?.path.join('.') || 'grant'}: ${parsed.error.issues[0]?.message})`,
    );
  const { claims, signature } = parsed.data;
  const expectedSignature = Buffer.from(signed(claims, expected.key ?? grantKey()), 'hex');
  if (!timingSafeEqual(expectedSignature, Buffer.from(signature, 'hex')))
    throw new GrantError("the grant's signature does not match: it was altered, forged or signed with another key");
  if (expected.checkExpiry !== false && claims.expiresAt <= (expected.now ?? Date.now())) {
    throw new GrantError(
      `the grant expired at ${new Date(claims.expiresAt).toISOString()} (grants live ${GRANT_TTL_MS / 60_000} minutes)`,
    );
  }
  if (claims.model !== expected.model)
    throw new GrantError(`the grant is for model "${claims.model}", not "${expected.model}"`);
  if (!expected.actions.includes(claims.action))
    throw new GrantError(`the grant allows ${claims.action}, not ${expected.actions.join(' or ')}`);
  if (!expected.workflowIds.includes(claims.workflowId))
    throw new GrantError(
      `the grant was issued for workflow ${claims.workflowId}, not ${expected.workflowIds.join(' or ')}`,
    );
  if (expected.alias !== undefined && claims.alias !== expected.alias)
    throw new GrantError(`the grant is for ${claims.alias ? `@${claims.alias}` : 'no alias'}, not @${expected.alias}`);
  if (expected.version !== undefined && claims.version !== expected.version)
    throw new GrantError(
      `the grant is for ${claims.version ? `v${claims.version}` : 'no version'}, not v${expected.version}`,
    );
  return claims;
}
