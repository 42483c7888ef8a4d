// What the three functions share: a Hono app under the function's base path, CORS for browser
// callers, a body limit checked before anything is parsed, JSON parsing and schema checks that
// answer 400 with the fields to fix, and one error handler that never leaks a stack trace.
import { Hono, type Context } from 'npm:hono@4.13.19';
import { cors } from 'npm:hono@4.13.19/cors';
import { bodyLimit } from 'npm:hono@4.13.19/body-limit';
import type { z } from 'npm:zod@4.6.7';
import { describeIssues } from '../../../shared/api/parse.ts';
import type { FunctionName } from '../../../shared/api/paths.ts';
import { ApiError } from './errors.ts';

/** `method`: what the function answers (POST for the agents' and operators' calls, GET for read-only scrapes and badges). */
export function createApp(name: FunctionName, options: { maxBytes: number; method?: 'POST' | 'GET' }) {
  const method = options.method ?? 'POST';
  const app = new Hono({ strict: false }).basePath(`/${name}`);

  // Both middlewares below are Hono's, taken only where they are needed: on every other request
  // they cost more than the rest of a heartbeat's work in the function (`npm run bench`, heartbeat:
  // ~25 µs of Deno CPU per request of ~80). cors() sets its header on c.res, which makes Hono build a
  // placeholder Response and copy its headers into the answer; bodyLimit() reads req.body, which
  // turns the body into a stream before it checks Content-Length.
  const preflight = cors({
    origin: '*',
    allowMethods: [method, 'OPTIONS'],
    allowHeaders: ['authorization', 'content-type', 'apikey', 'x-client-info', 'idempotency-key'],
    maxAge: 86400,
  });
  const tooLarge = () => {
    throw new ApiError('payload_too_large', `the request body is larger than ${options.maxBytes} bytes`, {
      hint: 'Send shorter texts; put long output in your own logs.',
    });
  };
  const limitStreamed = bodyLimit({ maxSize: options.maxBytes, onError: tooLarge });
  app.use('*', (c, next) => {
    if (c.req.method === 'OPTIONS') return preflight(c, next);
    // what cors() adds to every other answer, set before the answer exists
    c.header('Access-Control-Allow-Origin', '*');
    // bodyLimit()'s own test when the length is declared; a chunked body is counted as it streams
    const length = c.req.raw.headers.get('content-length');
    if (length === null || c.req.raw.headers.has('transfer-encoding')) return limitStreamed(c, next);
    if (parseInt(length, 10) > options.maxBytes) tooLarge();
    return next();
  });

  app.onError((error, c) => {
    if (error instanceof ApiError) return c.json(error.body(), error.status as 400);
    console.error(`${name}: unexpected error`, error);
    const internal = new ApiError('internal', `the ${name} function failed unexpectedly`, {
      hint: 'Retry later; the function log has the details.',
    });
    return c.json(internal.body(), 500);
  });
  app.notFound((c) => {
    throw new ApiError('not_found', `no route ${c.req.method} ${new URL(c.req.url).pathname}`, {
      hint: `${method} /functions/v1/${name}.`,
    });
  });
  return app;
}

/** Answers 405 for anything but `method` (and CORS preflight) on the function's path, or on `path` under it. */
export function refuseOtherMethods(app: Hono, name: FunctionName, method: 'POST' | 'GET' = 'POST', path = '/') {
  app.all(path, (c) => {
    c.header('Allow', `${method}, OPTIONS`);
    throw new ApiError('method_not_allowed', `${c.req.method} is not supported here`, {
      hint: method === 'POST' ? `POST a JSON body to /functions/v1/${name}.` : `GET /functions/v1/${name}${path === '/' ? '' : path}.`,
    });
  });
}

/** The request's JSON body, or a 400 that says it is not JSON. */
export async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError('invalid_json', text.trim() === '' ? 'the request body is empty' : 'the request body is not valid JSON', {
      hint: 'Send a JSON object with Content-Type: application/json.',
    });
  }
}

/** The body checked against a schema, or a 400 naming the fields to fix. */
export async function validBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const result = schema.safeParse(await jsonBody(c));
  if (!result.success)
    throw new ApiError('invalid_request', describeIssues(result.error), { hint: 'See docs/api.md for the request fields.' });
  return result.data;
}

/** The bearer token of the request, or null: the SQL functions answer a missing token like a wrong one. */
export function bearer(c: Context): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
  return match ? match[1] : null;
}
