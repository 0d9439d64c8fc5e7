/**
 * API tokens. Scopes: `read` (query the API), `write` (log runs, create experiments, register versions; implies read),
 * `admin` (alias moves, deploys, rollbacks, approvals, tokens; implies write), `infer` (inference only, when serving
 * requires a key; admin tokens call inference too). Only a sha256 is stored; the token is shown once, at creation.
 */
import { createHash, randomBytes } from 'node:crypto';
import { and, eq, inArray, isNull } from 'drizzle-orm';
import { apiTokens } from '../schema/models';
import type { Db } from '../storage/db';

export const TOKEN_SCOPES = ['read', 'write', 'admin', 'infer'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** The scopes whose tokens satisfy a route that needs `scope`. */
export function scopesGranting(scope: TokenScope): TokenScope[] {
  switch (scope) {
    case 'read': return ['read', 'write', 'admin'];
    case 'write': return ['write', 'admin'];
    case 'admin': return ['admin'];
    case 'infer': return ['infer', 'admin'];
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
export async function verifyToken(db: Db, token: string | undefined, scopes: TokenScope[]): Promise<{ name: string; scope: TokenScope } | null> {
  if (!token) return null;
  const [row] = await db.select({ name: apiTokens.name, scope: apiTokens.scope }).from(apiTokens)
    .where(and(eq(apiTokens.hash, hashToken(token)), isNull(apiTokens.revokedAt), inArray(apiTokens.scope, scopes)));
  return row ? { name: row.name, scope: row.scope as TokenScope } : null;
}

/**
 * Creates a token. The first admin token needs none (bootstrap); after that an admin token must authorise it.
 * Returns the token text, which is not stored.
 */
export async function createToken(db: Db, name: string, scope: TokenScope, authorisedBy?: string): Promise<string> {
  if (!TOKEN_SCOPES.includes(scope as TokenScope)) throw new TokenError(`scope "${scope}" is not one of ${TOKEN_SCOPES.join(', ')}`);
  const admins = await db.select({ id: apiTokens.id }).from(apiTokens).where(and(eq(apiTokens.scope, 'admin'), isNull(apiTokens.revokedAt))).limit(1);
  if (admins.length > 0 && !(await verifyToken(db, authorisedBy, ['admin']))) {
    throw new TokenError('creating a token needs an admin token once one exists (--token or FLYWHEEL_TOKEN)');
  }
  const token = `fw_${scope}_${randomBytes(24).toString('base64url')}`;
  await db.insert(apiTokens).values({ name, scope, hash: hashToken(token) });
  return token;
}

/** The hashes of active tokens with one of `scopes` (the serving process checks keys against these). */
export async function activeTokenHashes(db: Db, scopes: TokenScope[]): Promise<Set<string>> {
  const rows = await db.select({ hash: apiTokens.hash }).from(apiTokens).where(and(isNull(apiTokens.revokedAt), inArray(apiTokens.scope, scopes)));
  return new Set(rows.map((r) => r.hash));
}
