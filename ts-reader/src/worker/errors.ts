/** Errors a step handler may throw to choose how its failure is retried. */

/** A failure worth retrying (the default for any thrown error). */
export class RetryableError extends Error {
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryableError';
  }
}

/** A failure that retrying cannot fix (bad input, a missing resource): the step goes to error. */
export class PermanentError extends Error {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}
