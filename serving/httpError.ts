/** A request the serving process answers with `status` and `message` (4xx: the caller's to fix). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
