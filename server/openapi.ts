/** The OpenAPI 3 document, generated from the declared routes' zod schemas (served at /openapi.json). */
import type { ZodTypeAny } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import type { RouteSpec } from './route';

const jsonSchema = (schema: ZodTypeAny) => {
  const { $schema: _ignored, ...rest } = zodToJsonSchema(schema, {
    target: 'openApi3',
    $refStrategy: 'none',
  }) as Record<string, unknown>;
  return rest;
};

function parameters(schema: ZodTypeAny | undefined, location: 'path' | 'query') {
  if (!schema) return [];
  const described = jsonSchema(schema) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(described.properties ?? {}).map(([name, property]) => ({
    name,
    in: location,
    required: location === 'path' || (described.required ?? []).includes(name),
    schema: property,
  }));
}

const errorSchema = {
  type: 'object',
  description: 'MLflow routes answer {error_code, message}; Flywheel routes {error: {code, message, field}}',
  properties: {
    error_code: { type: 'string' },
    message: { type: 'string' },
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
    },
  },
};

export function openApiDocument(routes: RouteSpec[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of routes) {
    const operation: Record<string, unknown> = {
      operationId: `${spec.method}${spec.path.replace(/[{}+]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: spec.summary,
      tags: spec.tags,
      parameters: [...parameters(spec.params, 'path'), ...parameters(spec.query, 'query')],
      responses: {
        200: {
          description: 'OK',
          content: { 'application/json': { schema: spec.response ? jsonSchema(spec.response) : { type: 'object' } } },
        },
        400: { description: 'Bad request (names the field)', content: { 'application/json': { schema: errorSchema } } },
        ...(spec.scope === 'public'
          ? {}
          : {
              401: { description: 'No or unknown token', content: { 'application/json': { schema: errorSchema } } },
              403: { description: 'Token lacks the scope', content: { 'application/json': { schema: errorSchema } } },
            }),
        404: { description: 'Not found', content: { 'application/json': { schema: errorSchema } } },
      },
      ...(spec.scope === 'public' ? {} : { security: [{ bearer: [] }], 'x-flywheel-scope': spec.scope }),
    };
    if (spec.body)
      operation.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(spec.body) } } };
    if (spec.rawBody)
      operation.requestBody = {
        required: true,
        content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
      };
    (paths[spec.path.replace(/\+\}/g, '}')] ??= {})[spec.method] = operation;
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'Flywheel API',
      version,
      description:
        "Flywheel's own API under /api/v1 and MLflow's REST API under /api/2.0/mlflow (also /ajax-api/2.0/mlflow).",
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'a Flywheel token (flywheel tokens create)' },
      },
    },
    paths,
  };
}
