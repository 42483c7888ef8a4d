// The demo agents `npm start` runs (unless --no-demo) so the first screen of the dashboard is alive:
// three plain Node processes (demo/agent.ts) posting to the edge functions with agent tokens made
// through the SQL API. The flaky one crashes now and then and is started again a few seconds later.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Sql } from 'postgres';
import { Supervisor } from '../children.ts';
import { REPO_ROOT } from '../functions.ts';

export const DEMO_AGENTS = [
  { name: 'demo-healthy', behaviour: 'healthy' },
  { name: 'demo-drifting', behaviour: 'drifting' },
  { name: 'demo-flaky', behaviour: 'flaky' },
] as const;

const TOKEN_LABEL = 'npm start demo';
const RESTART_DELAY_MS = 5_000;
const AGENT_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'agent.ts');

export interface Demo {
  stop(): Promise<void>;
}

// A fresh token per agent and start; the previous start's demo tokens are revoked first.
async function demoTokens(sql: Sql): Promise<Map<string, string>> {
  const old = await sql<{ id: string }[]>`select id from public.list_api_tokens() where label = ${TOKEN_LABEL} and revoked_at is null`;
  for (const { id } of old) await sql`select from public.revoke_api_token(${id})`;
  const tokens = new Map<string, string>();
  for (const agent of DEMO_AGENTS) {
    const [{ token }] = await sql<{ token: string }[]>`select token from public.create_api_token('agent', ${TOKEN_LABEL}, ${agent.name})`;
    tokens.set(agent.name, token);
  }
  return tokens;
}

export async function startDemo(options: { url: string; sql: Sql; log: (line: string) => void; intervalMs?: number }): Promise<Demo> {
  const tokens = await demoTokens(options.sql);
  let stopping = false;
  const timers = new Set<NodeJS.Timeout>();

  const start = (agent: (typeof DEMO_AGENTS)[number]) => {
    supervisor.spawn({
      name: agent.name,
      command: process.execPath,
      args: ['--import', 'tsx', AGENT_SCRIPT],
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        AGENT_STATUS_URL: options.url,
        AGENT_STATUS_TOKEN: tokens.get(agent.name),
        AGENT_NAME: agent.name,
        DEMO_BEHAVIOUR: agent.behaviour,
        DEMO_INTERVAL_MS: String(options.intervalMs ?? 5_000),
      },
      installHint: 'Run npm install.',
    });
  };
  // Crashing is what the flaky demo agent is for: start it again, as a runner would.
  const supervisor = new Supervisor((name) => {
    if (stopping) return;
    const agent = DEMO_AGENTS.find((a) => a.name === name)!;
    options.log(`demo agent ${name} crashed (on purpose); starting it again in ${RESTART_DELAY_MS / 1000} s`);
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!stopping) start(agent);
    }, RESTART_DELAY_MS);
    timers.add(timer);
  });
  DEMO_AGENTS.forEach(start);

  return {
    async stop() {
      stopping = true;
      for (const timer of timers) clearTimeout(timer);
      await supervisor.stopAll();
    },
  };
}
