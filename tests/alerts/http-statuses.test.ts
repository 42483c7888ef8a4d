// The alert functions' refusals (and set_agent_timeouts', the other operator function issue 13 missed)
// as their callers see them: through PostgREST (the CLI, the dashboard) an unknown channel or agent is
// HTTP 404 with the SQLSTATE, message and hint in the body, not a 500; a direct database caller still
// gets SQLSTATE P0002.
import { beforeAll, describe, expect, it } from 'vitest';
import { postgrestRpc, useTestStack } from '../helpers/stack.ts';
import { createToken } from '../helpers/agents.ts';

const stack = useTestStack();

const NO_CHANNEL = {
  code: 'P0002',
  message: "no alert channel named 'no-such'",
  hint: 'List channels with: agent-status alerts channel list',
};
const NO_AGENT = { code: 'P0002', message: "no agent named 'no-such'", hint: 'List agents with: agent-status list' };
const REFUSALS: [string, Record<string, unknown>, typeof NO_CHANNEL][] = [
  ['alert_channel_remove', { p_name: 'no-such' }, NO_CHANNEL],
  ['alert_channel_test', { p_name: 'no-such' }, NO_CHANNEL],
  ['alert_channel_rules', { p_name: 'no-such', p_rules: { grace_s: 30 } }, NO_CHANNEL],
  ['alert_pause', { p_agent_name: 'no-such', p_reason: 'maintenance' }, NO_AGENT],
  ['set_agent_timeouts', { p_agent_name: 'no-such', p_heartbeat_timeout_s: 60 }, NO_AGENT],
];

let operatorToken: string;

beforeAll(async () => {
  operatorToken = await createToken(stack.db.sql, 'operator', { email: stack.operator.email });
});

describe('operator functions refusing an unknown channel or agent', () => {
  it.each(REFUSALS)('%s answers 404 through PostgREST with the message and hint kept', async (fn, args, expected) => {
    expect(await postgrestRpc(stack, fn, { ...args, p_operator_token: operatorToken })).toEqual({
      status: 404,
      body: { ...expected, details: null },
    });
  });

  it.each(REFUSALS)('%s raises SQLSTATE P0002 to a direct database caller', async (fn, args, expected) => {
    const names = Object.keys(args);
    const call = `select public.${fn}(${names.map((name, i) => `${name} => $${i + 1}`).join(', ')})`;
    const error = await stack.db.sql.unsafe(call, Object.values(args) as never[]).then(
      () => undefined,
      (e: { code: string; message: string; hint: string }) => ({ code: e.code, message: e.message, hint: e.hint }),
    );
    expect(error).toEqual(expected);
  });

  it('no function raises not found or conflict past agent_private.refuse', async () => {
    // A direct `raise ... errcode 'P0002'` or '55000' reaches PostgREST callers as HTTP 500. Not
    // apply_event: every caller looks the agent up just before, so its "no agent with id" is a lost race
    // with a delete, not an answer to a caller's name.
    const rows = await stack.db.sql`
      select p.oid::regprocedure::text as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'agent_private') and p.prosrc ~ ${String.raw`errcode\s*=\s*'(P0002|55000)'`}
        and p.proname not in ('refuse', 'apply_event')
      order by 1`;
    expect(rows.map((r) => r.fn)).toEqual([]);
  });
});
