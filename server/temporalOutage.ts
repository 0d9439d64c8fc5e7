/**
 * Temporal being unreachable (restarting, a network fault) as a named, retryable 503 instead of a 500 or a "failure".
 */
import { isGrpcServiceError } from '@temporalio/client';
import { ApiError } from '../config/errors';

/** gRPC codes that say "not now" rather than "no": UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED. */
const TRANSIENT_GRPC_CODES = new Set([14, 4, 8]);

/** A 503 naming Temporal when `error` (or a cause of it) is an outage; undefined for anything else. */
export function temporalOutage(error: unknown): ApiError | undefined {
  for (
    let current = error as { message?: string; cause?: unknown } | undefined, depth = 0;
    current && depth < 8;
    current = current.cause as typeof current, depth++
  ) {
    const transient =
      (isGrpcServiceError(current) && TRANSIENT_GRPC_CODES.has(current.code)) ||
      // What Connection.connect throws when nothing answers at the address.
      /^Failed to connect before the deadline/.test(current.message ?? '');
    if (transient)
      return new ApiError(
        'TEMPORARILY_UNAVAILABLE',
        `Temporal is unavailable (${current.message ?? 'no answer'}); try again shortly`,
      );
  }
  return undefined;
}
