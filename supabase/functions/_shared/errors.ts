// One error type for the functions, and the translation of database and PostgREST errors into it.
// Whatever fails, the client gets {error: {code, message, hint?}}; stack traces stay in the logs.
import { ERROR_STATUS, SQLSTATE_ERROR, type ErrorBody, type ErrorCode } from '../../../shared/api/errors.ts';

/** An error answer of the functions' HTTP API (the runner and the dashboard have their own, named for what failed). */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.hint = options.hint || undefined;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  body(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) } };
  }
}

export const UNAVAILABLE_HINT = 'The database is unreachable or overloaded; retry with backoff.';

/**
 * An error raised by the SQL API (SQLSTATE, message, hint) as an ApiError. Input and constraint
 * errors (classes 22 and 23) are the caller's; anything else is ours and says nothing more.
 */
export function fromSqlError(sqlstate: string | undefined, message: string, hint?: string | null, cause?: unknown): ApiError {
  // a lock wait or a statement that ran out of time: the database gave up, so nothing was written
  if (sqlstate === '55P03' || sqlstate === '57014')
    return new ApiError('unavailable', 'the status database was busy and gave up waiting; nothing was changed', {
      hint: UNAVAILABLE_HINT,
      cause,
    });
  // stack depth exceeded: input nested past what the server parses (the schemas bound it first)
  if (sqlstate === '54001')
    return new ApiError('invalid_request', 'the request nests too deeply for the database', {
      hint: 'Send flatter JSON: see the depth limit in docs/api.md.',
      cause,
    });
  const code = sqlstate && (SQLSTATE_ERROR[sqlstate] ?? (/^2[23]/.test(sqlstate) ? 'invalid_request' : undefined));
  if (code) return new ApiError(code, message, { hint: hint ?? undefined, cause });
  return new ApiError('unavailable', 'the status database could not handle the request', { hint: UNAVAILABLE_HINT, cause });
}
