// POST /functions/v1/command: an operator (a signed-in user on the allowlist, or an operator token)
// asks the runners to start, stop or restart one agent, a host's agents or all agents.
import { COMMAND_MAX_BYTES, CommandRequest, type CommandResponse } from '../../../shared/api/command.ts';
import { bearer, createApp, refuseOtherMethods, validBody } from '../_shared/app.ts';
import { enqueueCommands } from '../_shared/database.ts';
import { ApiError } from '../_shared/errors.ts';

const app = createApp('command', { maxBytes: COMMAND_MAX_BYTES });

// Tokens made by create_api_token start with as<kind>_; anything else is taken for a session JWT.
const API_TOKEN = /^as[aro]_/;
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,200}$/;

app.post('/', async (c) => {
  const token = bearer(c);
  if (!token) {
    throw new ApiError('unauthorized', 'an operator session or operator token is required', {
      hint: 'Send Authorization: Bearer <session JWT or operator token>.',
    });
  }
  const request = await validBody(c, CommandRequest);
  // A client that retries after a timeout sends the same key and gets the commands its first try made.
  const key = c.req.header('idempotency-key') ?? null;
  if (key !== null && !IDEMPOTENCY_KEY.test(key)) {
    throw new ApiError('invalid_request', 'the Idempotency-Key header must be 1 to 200 printable characters', {
      hint: 'Send a random id (a UUID) per request, the same one when you retry it.',
    });
  }
  const commands = await enqueueCommands(API_TOKEN.test(token) ? { operatorToken: token } : { jwt: token }, request, key);
  return c.json({ command_ids: commands.map((command) => command.id), commands } satisfies CommandResponse, 202);
});
refuseOtherMethods(app, 'command');

Deno.serve(app.fetch);
