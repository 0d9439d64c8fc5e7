/**
 * The API's one error type and its HTTP mapping. MLflow routes answer `{error_code, message}` (MLflow's shape);
 * Flywheel's own routes answer `{error: {code, message, field}}`. Codes are MLflow's, so one table serves both.
 */
import type { ZodError } from 'zod';

export const ERROR_STATUS = {
  INVALID_PARAMETER_VALUE: 400,
  BAD_REQUEST: 400,
  MALFORMED_REQUEST: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  RESOURCE_DOES_NOT_EXIST: 404,
  ENDPOINT_NOT_FOUND: 404,
  RESOURCE_ALREADY_EXISTS: 409,
  INVALID_STATE: 409,
  REQUEST_LIMIT_EXCEEDED: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INTERNAL_ERROR: 500,
  TEMPORARILY_UNAVAILABLE: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(field && !message.startsWith(field) ? `${field}: ${message}` : message);
    this.name = 'ApiError';
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const notFound = (what: string) => new ApiError('RESOURCE_DOES_NOT_EXIST', `${what} does not exist`);
export const invalid = (field: string, message: string) => new ApiError('INVALID_PARAMETER_VALUE', message, field);

/** A zod failure as one error naming the first offending field (`body.metrics[2].value`). */
export function fromZod(error: ZodError, where: 'body' | 'query' | 'path'): ApiError {
  const issue = error.issues[0]!;
  const field = [where, ...issue.path].reduce<string>(
    (out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${part}` : String(part)),
    '',
  );
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
      : issue.message;
  return new ApiError('INVALID_PARAMETER_VALUE', message, field);
}

/**
 * The innermost cause of `error` (the driver's error under drizzle's, the ApplicationFailure under Temporal's
 * wrappers): the one that names the file, column or host. The walk stops early at a link `through` rejects.
 * No runtime imports here, so workflow code may use it too.
 */
export function rootCause(
  error: unknown,
  through: (link: { message?: string; cause?: unknown }) => boolean = () => true,
): unknown {
  let current = error as { message?: string; cause?: unknown } | undefined;
  // A cause chain is short; the bound only stops a cycle.
  for (let depth = 0; depth < 64 && current?.cause && through(current); depth++)
    current = current.cause as typeof current;
  return current;
}
