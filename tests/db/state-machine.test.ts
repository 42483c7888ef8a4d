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

// health_reported_at: whether the health in the row was said by somebody or is the state machine's
// default. An agent nobody told health of must read "not reported", never 0 (a 2,000-agent trial
// showed every shell program under the runner at health 0).
describe('health reported or not', () => {
  const db = useTestDatabase();
  let runnerToken: string;
  let agentToken: string;
  const NAME = 'health-teller';

  beforeAll(async () => {
    runnerToken = await registerRunner(db.sql, 'health-host', [NAME, 'health-silent']);
    agentToken = await createToken(db.sql, 'agent', { agent: NAME });
  });

  const health = async (name = NAME) => {
    const row = await liveRow(db.sql, name);
    return { health: row.health as number, reported: row.health_reported_at !== null, status: row.status as string };
  };
  const runner = (event: string, extra: { health?: number } = {}) =>
    db.sql`select public.agent_report(${runnerToken}, ${NAME}, ${event}, p_health => ${extra.health ?? null},
                                      p_exit_code => ${event === 'crashed' ? 3 : null})`;

  it('follows what was said: a start, a crash and a stop bring back the default, a health of 0 is a report', async () => {
    // registered and started by its runner: the row holds the default, nobody said it
    expect(await health()).toEqual({ health: 0, reported: false, status: 'stopped' });
    await runner('started');
    expect(await health()).toEqual({ health: 100, reported: false, status: 'running' });
    await db.sql`select public.agent_heartbeat(${agentToken}, ${NAME}, p_activity => 'working')`;
    expect((await health()).reported).toBe(false);
    // the default's own value, said: a report (apply_event's path; the batch's is in heartbeat-batch)
    await db.sql`select public.agent_heartbeat(${agentToken}, ${NAME}, p_health => 100)`;
    expect(await health()).toEqual({ health: 100, reported: true, status: 'running' });
    // a warning without a health keeps what was said, as do a deadline passed and a reset of restarts
    await db.sql`select public.agent_report(${agentToken}, ${NAME}, 'warning', p_message => 'slow disk')`;
    expect(await health()).toEqual({ health: 100, reported: true, status: 'warning' });
    await db.sql`update public.agent_status set stale_at = now() - interval '1 second' where agent_name = ${NAME}`;
    await db.sql`select public.agent_status_sweep()`;
    expect(await health()).toEqual({ health: 100, reported: true, status: 'stale' });
    await db.sql`select public.reset_agent_restarts(${NAME})`;
    expect((await health()).reported).toBe(true);
    // a runner that restarted finds the same process: what it said still holds
    await runner('adopted');
    expect(await health()).toEqual({ health: 100, reported: true, status: 'running' });
    // the process ends: its health is the state machine's 0 now, and a new process's 50 (restarting)
    await runner('crashed');
    expect(await health()).toEqual({ health: 0, reported: false, status: 'error' });
    await runner('started');
    expect(await health()).toEqual({ health: 50, reported: false, status: 'warning' });
    // a start that says its health (the SDK's first status) is a report
    await runner('started', { health: 0 });
    expect(await health()).toEqual({ health: 0, reported: true, status: 'warning' });
    // stable again (the state machine's 100), told 80, then a new process of the agent's own starts:
    // the row keeps 80, which that process has not said
    await runner('stable');
    expect(await health()).toEqual({ health: 100, reported: false, status: 'running' });
    await db.sql`select public.agent_heartbeat(${agentToken}, ${NAME}, p_health => 80)`;
    expect(await health()).toEqual({ health: 80, reported: true, status: 'running' });
    await db.sql`select public.agent_report(${agentToken}, ${NAME}, 'started')`;
    expect(await health()).toEqual({ health: 80, reported: false, status: 'running' });
  });

  it("takes an operator's forced health as a report, and a forced stop without one as the default", async () => {
    await db.sql`select public.force_agent_status(${NAME}, 'running', 35, 'checked by hand')`;
    expect(await health()).toEqual({ health: 35, reported: true, status: 'running' });
    await db.sql`select public.force_agent_status(${NAME}, 'warning', null, 'looking into it')`;
    expect(await health()).toEqual({ health: 35, reported: true, status: 'warning' });
    await db.sql`select public.force_agent_status(${NAME}, 'stopped', null, 'done')`;
    expect(await health()).toEqual({ health: 0, reported: false, status: 'stopped' });
    // an agent never heard of at all
    expect(await health('health-silent')).toEqual({ health: 0, reported: false, status: 'stopped' });
  });
});
