// Command -> stopped for agents no runner manages (issue 23), at the defaults: four Python agents
// (the module, heartbeat every 30 s) each get a stop in the answer to their next heartbeat, so the
// wait is wherever in its 30 s cycle the command lands: 0 to 30 s, about 15 on average. The baseline
// in the same run: a runner-supervised agent (poll every 250 ms) stopped the same way.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { sleep, until, withBenchStack } from './bench-stack.ts';

const REPO = resolve(import.meta.dirname, '../..');
const CLI = join(REPO, 'runner/bin/agent-status.js');
const SDK_AGENTS = 4;

export async function run() {
  await withBenchStack('control', async ({ stack, sql, dir, token, spawn: spawnIn }) => {
    const spawn = (file: string, args: string[], env: Record<string, string>) => spawnIn(file, args, env, REPO);
    const configFile = join(dir, 'agents.yaml');
    writeFileSync(
      configFile,
      stringify({
        supabase: { url: stack.url, anon_key: stack.anonKey },
        runner: { state_dir: join(dir, 'state') },
        agents: [{ name: 'supervised', command: join(REPO, 'tests/fixtures/forever.sh'), autostart: true }],
      }),
    );
    spawn(process.execPath, [CLI, 'runner', '--config', configFile], { AGENT_STATUS_RUNNER_TOKEN: await token('runner', { host: 'h' }) });
    const names = Array.from({ length: SDK_AGENTS }, (_, i) => `no-runner-${i + 1}`);
    for (const name of names) {
      spawn('python3', [join(REPO, 'tests/fixtures/sdk-control-agent.py')], {
        PATH: process.env.PATH!,
        HOME: process.env.HOME!,
        PYTHONPATH: join(REPO, 'shared/python'),
        AGENT_STATUS_URL: stack.url,
        AGENT_STATUS_TOKEN: await token('agent', { agent: name }),
        AGENT_NAME: name,
      });
      // spread their heartbeat cycles over the 30 s
      await sleep(30_000 / SDK_AGENTS);
    }
    const running = async () =>
      (await sql`select count(*)::int as n from public.agent_status_live where status = 'running'`)[0].n === SDK_AGENTS + 1
        ? true
        : undefined;
    await until('every agent running', running, 60_000);

    const ids = (await sql`select id from public.enqueue_agent_commands('stop', 'supervised')`).map((r) => Number(r.id));
    for (const name of names)
      ids.push(...(await sql`select id from public.enqueue_agent_commands('stop', ${name})`).map((r) => Number(r.id)));
    const finished = await until(
      'every stop to finish',
      async () => {
        const rows = await sql`select a.agent_name, c.status, extract(epoch from c.finished_at - c.created_at)::float8 as seconds
                               from public.agent_commands c join public.agent_status a on a.id = c.agent_id
                               where c.id = any (${ids}::bigint[]) order by c.id`;
        return rows.every((r) => r.status !== 'pending' && r.status !== 'claimed') ? rows : undefined;
      },
      120_000,
    );
    const seconds = finished.filter((r) => r.agent_name !== 'supervised').map((r) => r.seconds as number);
    console.log('  stop command -> succeeded (the agent reported stopped), database clock | s');
    console.log(`  runner-supervised agent (baseline, poll 250 ms) | ${finished[0].seconds.toFixed(2)} (${finished[0].status})`);
    for (const r of finished.slice(1))
      console.log(`  ${r.agent_name}, Python module, no runner, heartbeat 30 s | ${r.seconds.toFixed(2)} (${r.status})`);
    console.log(
      `  no runner: mean ${(seconds.reduce((a, b) => a + b, 0) / seconds.length).toFixed(1)} s, max ${Math.max(...seconds).toFixed(1)} s ` +
        '(bounded by one heartbeat interval, 30 s, plus the stop itself)',
    );
  });
}
