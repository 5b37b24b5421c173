/** Harness errors: the harness itself could not do its job (exit code 2). Verdicts are data, never these. */
export class HarnessError extends Error {
  override readonly name: string = 'HarnessError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Bad command-line flags or configuration. */
export class UsageError extends HarnessError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('E-USAGE', message);
  }
}
