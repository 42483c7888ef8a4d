// shared/status.ts mirrors what the database defines; these keep the two from drifting apart.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { AgentState } from '../../shared/api/agent.ts';
import { AGENT_LIVE_COLUMNS } from '../../shared/rows.ts';
import {
  AGENT_STATUSES,
  COMMAND_ACTIONS,
  COMMAND_STATUSES,
  EVENT_SOURCES,
  FINISHED_COMMAND_STATUSES,
  LIMITS,
  RECORDED_RUNNER_STATUSES,
  RUNNER_STATUSES,
  TOKEN_KINDS,
} from '../../shared/status.ts';

describe('shared/status.ts matches the database', () => {
  const db = useTestDatabase();

  async function checkConstraint(table: string, column: string) {
    const rows = await db.sql`
      select pg_get_constraintdef(c.oid) as def from pg_constraint c
      where c.conrelid = ${`public.${table}`}::regclass and pg_get_constraintdef(c.oid) like ${`%${column}%`}`;
    return rows.map((r) => r.def as string).join(' ');
  }
  async function domainValues(domain: string) {
    const [row] = await db.sql`
      select pg_get_constraintdef(c.oid) as def from pg_constraint c join pg_type t on t.oid = c.contypid
      where t.typname = ${domain}`;
    return [...(row.def as string).matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]);
  }

  it('status values', async () => {
    expect(await domainValues('agent_status_value')).toEqual([...AGENT_STATUSES]);
  });
  it('event sources', async () => {
    expect(await domainValues('agent_event_source')).toEqual([...EVENT_SOURCES]);
  });
  it('command actions and statuses, token kinds', async () => {
    for (const action of COMMAND_ACTIONS) expect(await checkConstraint('agent_commands', 'action')).toContain(`'${action}'`);
    for (const status of COMMAND_STATUSES) expect(await checkConstraint('agent_commands', 'status')).toContain(`'${status}'`);
    for (const kind of TOKEN_KINDS) expect(await checkConstraint('api_tokens', 'kind')).toContain(`'${kind}'`);
  });
  it('runner statuses: the ones recorded, and the ones runner_status_live reads (silent only inferred)', async () => {
    const recorded = await checkConstraint('runners', 'status');
    expect([...recorded.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1])).toEqual([...RECORDED_RUNNER_STATUSES]);
    // one runner in each state, read through the live view
    await db.sql`insert into public.runners (host, status, last_seen_at, stopped_at) values
      ('def-online', 'online', now(), null), ('def-silent', 'online', now() - interval '1 hour', null),
      ('def-offline', 'offline', now() - interval '1 hour', null), ('def-stopped', 'stopped', now() - interval '1 hour', now())`;
    const rows = await db.sql`select host, status from public.runner_status_live where host like 'def-%'`;
    const read = Object.fromEntries(rows.map((r) => [r.host, r.status]));
    expect(RUNNER_STATUSES.map((status) => read[`def-${status}`])).toEqual([...RUNNER_STATUSES]);
  });
  it('finished command statuses: those with a finished_at', async () => {
    const [{ def }] = await db.sql`
      select pg_get_constraintdef(c.oid) as def from pg_constraint c
      where c.conrelid = 'public.agent_commands'::regclass and pg_get_constraintdef(c.oid) like '%finished_at IS NOT NULL%'`;
    const finished = [...(def as string).matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]);
    expect(finished).toEqual([...FINISHED_COMMAND_STATUSES]);
  });
  it('text limits', async () => {
    expect(await checkConstraint('agent_status', 'agent_name')).toContain(`${LIMITS.agentName})`);
    expect(await checkConstraint('agent_status', 'last_activity')).toContain(`<= ${LIMITS.activity}`);
    expect(await checkConstraint('agent_status', 'last_error')).toContain(`<= ${LIMITS.message}`);
  });
  it('every migration is recorded as the Supabase CLI records it', async () => {
    const rows = await db.sql`select version, name, statements from supabase_migrations.schema_migrations order by version`;
    expect(rows.length).toBeGreaterThanOrEqual(5);
    expect(rows[0]).toMatchObject({ version: '20261124000100', name: 'supabase_compat' });
    expect(rows.every((r) => Array.isArray(r.statements) && r.statements.length > 0)).toBe(true);
  });

  it('agent_private.agent_state_json answers exactly an AgentState (shared/api/agent.ts)', async () => {
    await db.sql`insert into public.agent_status (agent_name) values ('shape-agent')`;
    const [{ state }] = await db.sql`
      select agent_private.agent_state_json(a) as state from public.agent_status a where agent_name = 'shape-agent'`;
    expect(AgentState.parse(state)).toEqual(state);
  });
});

describe('shared/rows.ts matches the database', () => {
  const db = useTestDatabase();

  it('AGENT_LIVE_COLUMNS are the columns of public.agent_status_live', async () => {
    const rows = await db.sql`
      select attname from pg_attribute
      where attrelid = 'public.agent_status_live'::regclass and attnum > 0 and not attisdropped order by attnum`;
    expect([...AGENT_LIVE_COLUMNS]).toEqual(rows.map((r) => r.attname as string));
  });
});
