// Every cell of docs/state-machine.md, read from the document and checked against the database
// through the public functions that agents, runners, operators and the sweep really call.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, beforeAll } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { agentRow, createToken, eventsOf, liveRow, registerRunner, setAgentState } from '../helpers/agents.ts';
import { AGENT_EVENTS, SETTABLE_STATUSES, type AgentStatus, type EventSource } from '../../shared/status.ts';

interface Column {
  label: string;
  status: AgentStatus;
  source: EventSource;
  /** crashed and not stable since: `warning (restarting)` and `error (crashed)` */
  restarting: boolean;
}

function readTable() {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'state-machine.md'), 'utf8');
  const block = doc.split('<!-- state-table:start -->')[1].split('<!-- state-table:end -->')[0];
  const rows = block
    .trim()
    .split('\n')
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  const columns: Column[] = rows[0].slice(1).map((label) => {
    const status = label.split(' ')[0] as AgentStatus;
    const restarting = label.includes('(restarting)') || label.includes('(crashed)');
    const source = label.includes('(sweep)') || status === 'stale' ? 'sweep' : restarting ? 'runner' : 'agent';
    return { label, status, source, restarting };
  });
  const cells = rows.slice(2).map(([event, ...outcomes]) => ({ event: event.replaceAll('`', ''), outcomes }));
  return { columns, cells };
}

const table = readTable();

describe('the documented state table', () => {
  it('has a row for every event and a column for every status', () => {
    const events = table.cells.map((c) => c.event.replace(' S', ''));
    expect(events.sort()).toEqual([...AGENT_EVENTS].sort());
    expect(new Set(table.columns.map((c) => c.status))).toEqual(new Set(['running', 'warning', 'error', 'stopped', 'stale']));
    expect(table.columns.filter((c) => c.restarting).map((c) => c.label)).toEqual(['warning (restarting)', 'error (crashed)']);
  });
});

describe('every cell, through the public API', () => {
  const db = useTestDatabase();
  const agentTokens = new Map<string, string>();
  let runnerToken: string;

  // One agent per cell, all managed by one runner so runner events can be sent for them.
  const cases = table.cells.flatMap(({ event, outcomes }) =>
    table.columns.flatMap((column, i) => {
      const forced = event === 'force S' ? SETTABLE_STATUSES : [undefined];
      return forced.map((s) => ({
        event: event.replace(' S', ''),
        column,
        forced: s,
        expected: (outcomes[i] === 'S' ? s : outcomes[i]) as AgentStatus,
        name: `cell ${event.replace(' S', '')}${s ? ` ${s}` : ''} on ${column.label}`,
      }));
    }),
  );

  beforeAll(async () => {
    for (const c of cases) {
      await setAgentState(db.sql, c.name, c.column.status, c.column.source);
      if (c.column.restarting) {
        await db.sql`update public.agent_status set unstable_since = now() - interval '5 seconds' where agent_name = ${c.name}`;
      }
      agentTokens.set(c.name, await createToken(db.sql, 'agent', { agent: c.name }));
    }
    runnerToken = await registerRunner(
      db.sql,
      'cells-host',
      cases.map((c) => c.name),
    );
    // registering does not change statuses; make sure of it, or every cell below would lie
    for (const c of cases.slice(0, 5)) expect((await agentRow(db.sql, c.name)).status).toBe(c.column.status);
  });

  async function send(c: (typeof cases)[number]) {
    const sql = db.sql;
    const agentToken = agentTokens.get(c.name)!;
    switch (c.event) {
      case 'heartbeat':
        return sql`select public.agent_heartbeat(${agentToken}, ${c.name})`;
      case 'activity':
        return sql`select public.agent_heartbeat(${agentToken}, ${c.name}, p_activity => 'crawling page 3')`;
      case 'started':
      case 'stopped':
      case 'running':
        return sql`select public.agent_report(${agentToken}, ${c.name}, ${c.event})`;
      case 'warning':
      case 'error':
        return sql`select public.agent_report(${agentToken}, ${c.name}, ${c.event}, p_message => 'rate limited', p_health => 40)`;
      case 'adopted':
        return sql`select public.agent_report(${runnerToken}, ${c.name}, 'adopted', p_pid => 4242)`;
      case 'exited':
        return sql`select public.agent_report(${runnerToken}, ${c.name}, 'exited', p_exit_code => 0)`;
      case 'crashed':
        return sql`select public.agent_report(${runnerToken}, ${c.name}, 'crashed', p_exit_code => 2, p_message => 'exited with code 2: boom')`;
      case 'terminated':
        return sql`select public.agent_report(${runnerToken}, ${c.name}, 'terminated', p_exit_signal => 'SIGTERM')`;
      case 'stable':
        return sql`select public.agent_report(${runnerToken}, ${c.name}, 'stable')`;
      case 'force':
        return sql`select public.force_agent_status(${c.name}, ${c.forced!}, 10, 'test')`;
      case 'deadline':
        // the deadline passed a second ago; the sweep persists what that means
        await sql`update public.agent_status set stale_at = now() - interval '1 second' where agent_name = ${c.name}`;
        return sql`select public.agent_status_sweep()`;
      case 'inactive':
        await sql`update public.agent_status set inactive_at = now() - interval '1 second' where agent_name = ${c.name}`;
        return sql`select public.agent_status_sweep()`;
      default:
        throw new Error(`no way to send ${c.event}`);
    }
  }

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await send(c);
    const row = await agentRow(db.sql, c.name);
    expect(row.status).toBe(c.expected);
    if (c.expected !== c.column.status) {
      const events = await eventsOf(db.sql, c.name);
      const flip = events.find((e) => e.from_status === c.column.status && e.to_status === c.expected);
      expect(flip, 'a status flip writes an event row').toBeDefined();
      expect(flip!.kind).toBe(c.event);
    }
    // the live view agrees with the stored row for an agent within its deadline
    const live = await liveRow(db.sql, c.name);
    expect(live.status).toBe(row.stale_at === null || row.stale_at > new Date() ? row.status : 'stale');
  });
});
