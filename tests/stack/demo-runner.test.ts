// Issue 19, case 9: the demo runner under `npm start` is a child like the others. Killed with
// SIGKILL, it is restarted, and the new runner adopts the demo agents that kept running instead of
// leaving them orphaned, unable to report, going stale.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DEMO_AGENTS, DEMO_HOST, startDemo, type Demo } from '../../runner/local-stack/demo/demo.ts';
import { useTestStack } from '../helpers/stack.ts';
import { waitFor } from '../runner/helpers.ts';

const stack = useTestStack();
const dir = mkdtempSync(join(tmpdir(), 'agent-status-demo-'));
let demo: Demo | undefined;

afterAll(async () => {
  await demo?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function demoAgents() {
  return stack.db.sql`select agent_name, status, pid from public.agent_status_live where agent_name like 'demo-%' order by agent_name`;
}

it('a SIGKILLed demo runner is restarted and adopts the demo agents still running', async () => {
  const lines: string[] = [];
  demo = await startDemo({
    url: stack.url,
    anonKey: stack.anonKey,
    sql: stack.db.sql,
    dir,
    log: (line) => lines.push(line),
    intervalMs: 1000,
  });
  const { sql } = stack.db;
  const before = await waitFor(
    'the demo agents running',
    async () => {
      const rows = await demoAgents();
      return rows.length === DEMO_AGENTS.length && rows.every((r) => r.pid && ['running', 'warning'].includes(r.status)) ? rows : undefined;
    },
    60_000,
    250,
  );
  const [{ pid: runnerPid }] = await sql`select pid from public.runners where host = ${DEMO_HOST}`;
  process.kill(runnerPid, 'SIGKILL');

  const [{ pid: nextPid }] = await waitFor(
    'a new demo runner',
    async () => {
      const rows = await sql`select pid from public.runners where host = ${DEMO_HOST} and status = 'online' and pid <> ${runnerPid}`;
      return rows.length ? rows : undefined;
    },
    60_000,
    250,
  );
  expect(nextPid).not.toBe(runnerPid);
  expect(lines.join('\n')).toMatch(/the demo runner exited unexpectedly \(signal SIGKILL\)[\s\S]*restarting it in/);
  expect(lines.join('\n')).not.toMatch(/the demo stopped/);
  // the agents the first runner started are adopted, not started a second time (demo-flaky is left
  // out: it may crash on its own, 20 to 60 s after its start, while no runner watches)
  const steady = before.filter((r) => r.agent_name !== 'demo-flaky');
  const adopted = await waitFor(
    'the agents adopted',
    async () => {
      const rows = await sql`select a.agent_name, e.details ->> 'pid' as pid from public.agent_events e
                             join public.agent_status a on a.id = e.agent_id
                             where e.kind = 'adopted' and a.agent_name in ('demo-drifting', 'demo-healthy') order by a.agent_name`;
      return rows.length === steady.length ? rows : undefined;
    },
    30_000,
    250,
  );
  expect(adopted.map((r) => Number(r.pid))).toEqual(steady.map((r) => r.pid));
}, 150_000);
