/**
 * /api/v1/tokens (admin): list, create, revoke API tokens. A token's text is answered once, on create; only its
 * sha256 is stored. The very first admin token has no admin to ask: `flywheel tokens create --local` on the stack's
 * machine.
 */
import { z } from 'zod';
import { INT32_MAX } from '../mlflow/wire';
import { notFound } from '../../config/errors';
import { issueToken, listTokens, revokeToken, TOKEN_SCOPES, type TokenRecord } from '../../store/tokens';
import { route, type RouteSpec } from '../route';

const BASE = '/api/v1/tokens';
const tags = ['Tokens'];

const tokenJson = (t: TokenRecord) => ({
  id: t.id,
  name: t.name,
  scope: t.scope,
  createdAt: t.createdAt,
  revokedAt: t.revokedAt,
});

export const tokenRoutes: RouteSpec[] = [
  route({
    method: 'get',
    path: BASE,
    summary: 'API tokens (names, scopes, creation and revocation times; never the tokens)',
    tags,
    scope: 'admin',
    handler: async ({ deps }) => ({ tokens: (await listTokens(deps.db)).map(tokenJson) }),
  }),
  route({
    method: 'post',
    path: BASE,
    summary: 'Create a token: its text is in this answer only',
    tags,
    scope: 'admin',
    body: z
      .object({
        name: z
          .string()
          .min(1)
          .max(200)
          .regex(/^[^\s]/, 'must not start with a space'),
        scope: z.enum(TOKEN_SCOPES).describe('read | write | admin | infer'),
      })
      .strict(),
    handler: async ({ body, c, deps }) => {
      const { record, token } = await issueToken(deps.db, body.name, body.scope);
      return c.json({ ...tokenJson(record), token }, 201);
    },
  }),
  route({
    method: 'delete',
    path: `${BASE}/{id}`,
    summary: 'Revoke a token (within a second everywhere it is checked)',
    tags,
    scope: 'admin',
    params: z.object({ id: z.coerce.number().int().positive().max(INT32_MAX) }),
    handler: async ({ params, deps }) => {
      const revoked = await revokeToken(deps.db, params.id);
      if (!revoked) throw notFound(`token #${params.id}`);
      return tokenJson(revoked);
    },
  }),
];
