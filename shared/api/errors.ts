// The one error shape of the agent-status HTTP API, and the codes it uses. Every non-2xx answer of
// the edge functions is an ErrorBody; clients branch on `code`, humans read `message` and `hint`.
import { z } from 'zod';

/** Error codes and the HTTP status each is sent with. */
export const ERROR_STATUS = {
  invalid_json: 400,
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unprocessable: 422,
  too_many_requests: 429,
  internal: 500,
  unavailable: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

export const ErrorBody = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(ERROR_CODES).describe('Stable, machine-readable reason; see ERROR_STATUS for its HTTP status.'),
      message: z.string().describe('What went wrong, for a human.'),
      hint: z.string().optional().describe('What to do about it, when there is something to do.'),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBody>;

/** SQLSTATEs raised by the SQL API (supabase/schemas/20_checks.sql) and the error codes they become. */
export const SQLSTATE_ERROR: Record<string, ErrorCode> = {
  '22023': 'invalid_request',
  '28000': 'unauthorized',
  '42501': 'forbidden',
  P0002: 'not_found',
  '55000': 'conflict',
  /** an idempotency key sent again with another request */
  P0422: 'unprocessable',
};
