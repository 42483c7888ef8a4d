// POST /functions/v1/dispatch: sends the alert notifications that are due. Called by pg_cron through
// pg_net on Supabase (every 10 s, and at once after a flip), by the local stack's timer, or by hand.
// Only the platform may call it: the bearer token must be the project's secret (service role) key or
// AGENT_STATUS_DISPATCH_KEY.
import { createHash, timingSafeEqual } from 'node:crypto';
import { bearer, createApp, refuseOtherMethods } from '../_shared/app.ts';
import { env } from '../_shared/database.ts';
import { dispatchDue } from '../_shared/dispatcher.ts';
import { ApiError } from '../_shared/errors.ts';

const app = createApp('dispatch', { maxBytes: 1024 });

// A name for the attempts log: which instance sent it.
const DISPATCHER = `dispatch ${crypto.randomUUID().slice(0, 8)}`;
// Leaves time to answer before Supabase's wall-clock limit; the next call picks up the rest.
const BUDGET_MS = Number(Deno.env.get('AGENT_STATUS_DISPATCH_BUDGET_MS') ?? 25_000);

const digest = (text: string) => createHash('sha256').update(text).digest();

function authorized(token: string | null): boolean {
  if (!token) return false;
  const keys = [env('SUPABASE_SERVICE_ROLE_KEY'), Deno.env.get('AGENT_STATUS_DISPATCH_KEY')].filter((key): key is string => !!key);
  // Compared as digests, in constant time, so the answer time says nothing about the key.
  return keys.some((key) => timingSafeEqual(digest(key), digest(token)));
}

app.post('/', async (c) => {
  if (!authorized(bearer(c))) {
    throw new ApiError('unauthorized', 'only the platform may run the dispatcher', {
      hint: 'Send Authorization: Bearer <service role key>; pg_cron does this through public.alert_configure_dispatch.',
    });
  }
  const summary = await dispatchDue({ dispatcher: DISPATCHER, batch: 50, budgetMs: BUDGET_MS });
  return c.json(summary);
});
refuseOtherMethods(app, 'dispatch');

Deno.serve(app.fetch);
