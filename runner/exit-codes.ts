// What the agent-status CLI's exit code means, so scripts can branch without parsing text. `run` is
// the exception: it exits with its child's code (128 + signal number when a signal ended it).
export const EXIT = {
  /** done, or every check passed */
  ok: 0,
  /** it ran and the answer is "no": a command failed or expired, a test or doctor check failed */
  failed: 1,
  /** bad arguments or input (also input the API refused as invalid) */
  usage: 2,
  /** the API could not be reached (stack down, wrong URL, network) */
  unreachable: 3,
  /** not allowed: no or bad credentials, revoked token, not an operator */
  auth: 4,
  /** no such agent, token, operator or host */
  notFound: 5,
  /** refused in the current state, e.g. no runner manages the agent */
  conflict: 6,
  /** gave up waiting (a command no runner finished in time) */
  timeout: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports as one message with a hint and exits with its code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}
