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

/**
 * The message of a caught value: `e.message` for an Error, otherwise `String(e)` (a thrown string, number or object),
 * so a catch clause never needs `(e as Error).message`, which gives `undefined` for anything that is not an Error.
 */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
