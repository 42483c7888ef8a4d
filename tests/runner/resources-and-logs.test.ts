// The runner's CPU and memory figures (read from /proc, sent through runner_report_resources) and
// its answers to operators' log requests, against a real stack with real agent processes.
import { describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { fixtureAgent, makeHost } from './host.ts';
import { waitFor } from './helpers.ts';

const stack = useTestStack();
const sql = () => stack.db.sql;

async function resources(name: string) {
  const [row] = await sql()`select r.cpu_percent, r.memory_bytes::bigint as memory_bytes, r.processes from public.agent_resources r
                            join public.agent_status a on a.id = r.agent_id where a.agent_name = ${name}`;
  return row as { cpu_percent: number; memory_bytes: string; processes: number } | undefined;
}

describe('resources', () => {
  it('sends a busy agent’s CPU and a hungry agent’s memory, its whole process group counted', async () => {
    const busy = fixtureAgent('busy.sh', { autostart: true });
    const hungry = fixtureAgent('hungry.sh', { autostart: true, env: { MEGABYTES: '120' } });
    const idle = fixtureAgent('forever.sh', { autostart: true });
    const [{ first }] = await sql()`select date_trunc('minute', now()) as first`;
    await (await makeHost(stack, [busy, hungry, idle], { resources_interval: '1s' })).start();

    // a busy loop gets what the machine spares it: on a shared 2-core machine a quarter of a core
    const busyRow = await waitFor(
      'the busy agent’s CPU',
      async () => {
        const row = await resources(busy.name);
        return row && row.cpu_percent > 5 ? row : undefined;
      },
      20_000,
    );
    expect(busyRow.cpu_percent).toBeLessThan(250);
    const hungryRow = await waitFor('the hungry agent’s memory', async () => {
      const row = await resources(hungry.name);
      return row && Number(row.memory_bytes) > 120 * 1024 * 1024 ? row : undefined;
    });
    const idleRow = await waitFor('the idle agent’s figures', () => resources(idle.name));
    expect(Number(hungryRow.memory_bytes)).toBeGreaterThan(Number(idleRow.memory_bytes) * 10);
    // forever.sh runs `sleep` in a loop: a shell and, most of the time, its sleep
    expect(idleRow.processes).toBeGreaterThanOrEqual(1);
    expect(idleRow.cpu_percent).toBeLessThan(busyRow.cpu_percent);
    // one a minute, however often the runner sends (every second here): a test that runs across a
    // minute's end has two minutes, and two samples
    const [{ samples, minutes }] = await sql()`
      select count(*)::int as samples,
             (extract(epoch from date_trunc('minute', now()) - ${first}::timestamptz) / 60)::int + 1 as minutes
      from public.agent_resource_samples s join public.agent_status a on a.id = s.agent_id where a.agent_name = ${busy.name}`;
    expect(samples).toBeGreaterThanOrEqual(1);
    expect(samples).toBeLessThanOrEqual(minutes);
  }, 40_000);
});

describe('logs on demand', () => {
  it('answers a request with the last lines of stdout and stderr, in order (latency: npm run bench)', async () => {
    const chatty = fixtureAgent('chatty.sh', { autostart: true });
    await (await makeHost(stack, [chatty])).start();
    await waitFor('a few lines', async () => {
      const [{ id }] = await sql()`select public.request_agent_logs(${chatty.name}, 5) as id`;
      const answer = await waitFor('the answer', async () => {
        const [row] = await sql()`select * from public.operator_agent_logs(${id})`;
        return row.answered_at ? row : undefined;
      });
      return answer.stderr.length >= 2 ? true : undefined;
    });

    const [{ id }] = await sql()`select public.request_agent_logs(${chatty.name}, 3) as id`;
    const answer = await waitFor('the answer', async () => {
      const [row] = await sql()`select * from public.operator_agent_logs(${id})`;
      return row.answered_at ? row : undefined;
    });
    expect(answer.stdout).toHaveLength(3);
    for (const line of answer.stdout) expect(line).toMatch(/^chatty: line \d+$/);
    const numbers = answer.stdout.map((line: string) => Number(line.split(' ').at(-1)));
    expect(numbers).toEqual([numbers[0], numbers[0] + 1, numbers[0] + 2]);
    expect(answer.stderr.at(-1)).toMatch(/^chatty: warning at line \d+$/);
    expect(answer.error).toBeNull();
  }, 30_000);
});
