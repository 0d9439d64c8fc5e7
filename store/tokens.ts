/**
 * API tokens. Scopes: `read` (query the API), `write` (log runs, create experiments, register versions; implies read),
 * `admin` (alias moves, deploys, rollbacks, approvals, tokens; implies write), `infer` (inference only, when serving
 * requires a key; admin tokens call inference too). Only a sha256 is stored; the token is shown once, at creation.
 */
import { createHash, randomBytes } from 'node:crypto';
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import { apiTokens } from '../schema/models';
import type { Db } from '../storage/db';

export const TOKEN_SCOPES = ['read', 'write', 'admin', 'infer'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** The scopes whose tokens satisfy a route that needs `scope`. */
export function scopesGranting(scope: TokenScope): TokenScope[] {
  switch (scope) {
    case 'read':
      return ['read', 'write', 'admin'];
    case 'write':
      return ['write', 'admin'];
    case 'admin':
      return ['admin'];
    case 'infer':
      return ['infer', 'admin'];
  }
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/** The active token with one of `scopes`, or null. */
export async function verifyToken(
  db: Db,
  token: string | undefined,
  scopes: TokenScope[],
): Promise<{ name: string; scope: TokenScope } | null> {
  if (!token) return null;
  const [row] = await db
    .select({ name: apiTokens.name, scope: apiTokens.scope })
    .from(apiTokens)
    .where(and(eq(apiTokens.hash, hashToken(token)), isNull(apiTokens.revokedAt), inArray(apiTokens.scope, scopes)));
  return row ? { name: row.name, scope: row.scope as TokenScope } : null;
}

export interface TokenRecord {
  id: number;
  name: string;
  scope: TokenScope;
  createdAt: Date;
  revokedAt: Date | null;
}

const tokenColumns = {
  id: apiTokens.id,
  name: apiTokens.name,
  scope: apiTokens.scope,
  createdAt: apiTokens.createdAt,
  revokedAt: apiTokens.revokedAt,
};

/** Issues a token (the caller has authorised it): returns its record and the token text, which is not stored. */
export async function issueToken(
  db: Db,
  name: string,
  scope: TokenScope,
): Promise<{ record: TokenRecord; token: string }> {
  if (!TOKEN_SCOPES.includes(scope as TokenScope))
    throw new TokenError(`scope "${scope}" is not one of ${TOKEN_SCOPES.join(', ')}`);
  const token = `fw_${scope}_${randomBytes(24).toString('base64url')}`;
  const [record] = await db
    .insert(apiTokens)
    .values({ name, scope, hash: hashToken(token) })
    .returning(tokenColumns);
  return { record: record as TokenRecord, token };
}

/** Whether any active admin token exists (until one does, the first may be created without one). */
export async function hasAdminToken(db: Db): Promise<boolean> {
  const admins = await db
    .select({ id: apiTokens.id })
    .from(apiTokens)
    .where(and(eq(apiTokens.scope, 'admin'), isNull(apiTokens.revokedAt)))
    .limit(1);
  return admins.length > 0;
}

/**
 * Creates a token on the stack's machine (`flywheel tokens create --local`). The first admin token needs none
 * (bootstrap); after that an admin token must authorise it. Returns the token text, which is not stored.
 */
export async function createToken(db: Db, name: string, scope: TokenScope, authorisedBy?: string): Promise<string> {
  if (!TOKEN_SCOPES.includes(scope as TokenScope))
    throw new TokenError(`scope "${scope}" is not one of ${TOKEN_SCOPES.join(', ')}`);
  if ((await hasAdminToken(db)) && !(await verifyToken(db, authorisedBy, ['admin']))) {
    throw new TokenError('creating a token needs an admin token once one exists (--token or FLYWHEEL_TOKEN)');
  }
  return (await issueToken(db, name, scope)).token;
}

/** Every token, revoked ones too, oldest first; never a hash. */
export async function listTokens(db: Db): Promise<TokenRecord[]> {
  return (await db.select(tokenColumns).from(apiTokens).orderBy(asc(apiTokens.id))) as TokenRecord[];
}

/** Revokes a token; undefined when there is no token `id`. Revoking a revoked token keeps its first revocation time. */
export async function revokeToken(db: Db, id: number): Promise<TokenRecord | undefined> {
  const [revoked] = await db
    .update(apiTokens)
    .set({ revokedAt: sql`coalesce(${apiTokens.revokedAt}, now())` })
    .where(eq(apiTokens.id, id))
    .returning(tokenColumns);
  return revoked as TokenRecord | undefined;
}

/** The hashes of active tokens with one of `scopes` (the serving process checks keys against these). */
export async function activeTokenHashes(db: Db, scopes: TokenScope[]): Promise<Set<string>> {
  const rows = await db
    .select({ hash: apiTokens.hash })
    .from(apiTokens)
    .where(and(isNull(apiTokens.revokedAt), inArray(apiTokens.scope, scopes)));
  return new Set(rows.map((r) => r.hash));
}
