// POST /functions/v1/dispatch: sends the alert notifications that are due. Called by pg_cron through
// pg_net on Supabase (every 10 s, and at once after a flip), by the local stack's timer, or by hand.
// Only the platform may call it: the bearer token must be the dispatch key Postgres holds (Vault's
// agent_status_dispatch_key, or public.alert_configure_dispatch), or AGENT_STATUS_DISPATCH_KEY.
import { createHash, timingSafeEqual } from 'node:crypto';
import { bearer, createApp, refuseOtherMethods } from '../_shared/app.ts';
import { database } from '../_shared/database.ts';
import { dispatchDue } from '../_shared/dispatcher.ts';
import { ApiError } from '../_shared/errors.ts';

const app = createApp('dispatch', { maxBytes: 1024 });

// A name for the attempts log: which instance sent it.
const DISPATCHER = `dispatch ${crypto.randomUUID().slice(0, 8)}`;
// Leaves time to answer before Supabase's wall-clock limit; the next call picks up the rest.
const BUDGET_MS = Number(Deno.env.get('AGENT_STATUS_DISPATCH_BUDGET_MS') ?? 25_000);

const digest = (text: string) => createHash('sha256').update(text).digest();

async function authorized(token: string | null): Promise<boolean> {
  if (!token) return false;
  const own = Deno.env.get('AGENT_STATUS_DISPATCH_KEY');
  // Compared as digests, in constant time, so the answer time says nothing about the key.
  if (own && timingSafeEqual(digest(own), digest(token))) return true;
  const [row] = await database('dispatch key check', (sql) => sql`select public.alert_dispatch_authorized(${token}) as ok`);
  return row.ok === true;
}

app.post('/', async (c) => {
  if (!(await authorized(bearer(c)))) {
    throw new ApiError('unauthorized', 'only the platform may run the dispatcher', {
      hint: 'Send Authorization: Bearer <dispatch key>, the key set with public.alert_configure_dispatch or in Vault.',
    });
  }
  const summary = await dispatchDue({ dispatcher: DISPATCHER, batch: 25, workers: 4, budgetMs: BUDGET_MS });
  return c.json(summary);
});
refuseOtherMethods(app, 'dispatch');

Deno.serve(app.fetch);
