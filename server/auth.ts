/**
 * Bearer-token auth. Every route but `public` ones needs a token whose scope grants the route's (admin ⊃ write ⊃ read);
 * only hashes are stored, and verified tokens are cached for a second, so a revocation takes effect within one.
 */
import type { Context } from 'hono';
import { scopesGranting, verifyToken, type TokenScope } from '../store/tokens';
import type { ServerDeps } from './deps';
import { ApiError } from '../config/errors';

export interface Principal {
  /** The token's name (`anonymous` on public routes without one): recorded as the actor of what it changes. */
  name: string;
  scope: TokenScope | 'none';
}

const CACHE_MS = 1_000;
const cache = new Map<string, { at: number; found: { name: string; scope: TokenScope } | null }>();

function bearer(c: Context): string | undefined {
  const header = c.req.header('authorization');
  if (!header) return undefined;
  const match = /^(Bearer|Basic)\s+(\S+)$/i.exec(header.trim());
  if (!match) throw new ApiError('UNAUTHENTICATED', 'authorization header: expected "Bearer <token>"');
  if (match[1]!.toLowerCase() === 'bearer') return match[2];
  // MLflow clients with MLFLOW_TRACKING_USERNAME/PASSWORD send Basic auth: the password is the token.
  const decoded = Buffer.from(match[2]!, 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1) || undefined;
}

async function lookup(deps: ServerDeps, token: string): Promise<{ name: string; scope: TokenScope } | null> {
  const hit = cache.get(token);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.found;
  const found = await verifyToken(deps.db, token, ['read', 'write', 'admin', 'infer']);
  if (cache.size > 10_000) cache.clear();
  cache.set(token, { at: Date.now(), found });
  return found;
}

export async function authenticate(c: Context, needed: TokenScope | 'public', deps: ServerDeps): Promise<Principal> {
  const token = bearer(c);
  if (needed === 'public') {
    const found = token ? await lookup(deps, token) : null;
    return found ?? { name: 'anonymous', scope: 'none' };
  }
  if (!token)
    throw new ApiError(
      'UNAUTHENTICATED',
      `this route needs a token with scope "${needed}" (Authorization: Bearer <token>)`,
    );
  const found = await lookup(deps, token);
  if (!found) throw new ApiError('UNAUTHENTICATED', 'the token is unknown or revoked');
  if (!scopesGranting(needed).includes(found.scope)) {
    throw new ApiError(
      'PERMISSION_DENIED',
      `token "${found.name}" has scope "${found.scope}"; this route needs "${needed}"`,
    );
  }
  return found;
}
