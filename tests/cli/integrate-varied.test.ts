// `agent-status integrate agents/*.py` over a folder of varied agents, as the README has users do it:
// a __main__ guard, an asyncio main, a class with run() started at the top level, a module-level loop
// with its own signal handlers, and a helpers module that is not an agent. The Python module the
// agents import is copied beside them, and left alone when the glob includes it on a later run; each
// agent then compiles and runs for real against the stack (no PYTHONPATH: the copied module).
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { waitFor } from '../runner/helpers.ts';
import { CLI_FIXTURES, cli } from './helpers.ts';

const stack = useTestStack({ functions: true });
const dir = mkdtempSync(join(tmpdir(), 'agent-status-integrate-varied-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
cpSync(join(CLI_FIXTURES, 'varied'), join(dir, 'agents'), { recursive: true });
const AGENTS = { guard_agent: 'Guard Agent', asyncio_agent: 'Asyncio Agent', class_agent: 'Class Agent', loop_agent: 'Loop Agent' };
const pyFiles = () =>
  readdirSync(join(dir, 'agents'))
    .filter((f) => f.endsWith('.py'))
    .sort()
    .map((f) => `agents/${f}`);

describe('integrate over a folder of varied agents', { timeout: 120_000 }, () => {
  it('integrates the agents, leaves the rest alone, and copies the module they import', async () => {
    const first = await cli(['integrate', ...pyFiles()], {}, { cwd: dir });
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    for (const file of Object.keys(AGENTS)) expect(first.stdout).toMatch(new RegExp(`agents/${file}.py: integrated as`));
    expect(first.stdout).toMatch(/agents\/helpers\.py: not an agent .*left alone/);
    expect(first.stdout).toMatch(/copied the Python module the agents import to agents\/agent_status_updater\.py/);
    expect(readFileSync(join(dir, 'agents/helpers.py'), 'utf8')).not.toContain('agent_status_updater');

    // the README's glob again, now with the module in it: the module is left alone, the agents are done
    const second = await cli(['integrate', ...pyFiles()], {}, { cwd: dir });
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toMatch(/agents\/agent_status_updater\.py: the agent_status_updater module itself.*left alone/);
    expect(readFileSync(join(dir, 'agents/agent_status_updater.py'), 'utf8')).not.toContain('agent-status integrate');
    expect(existsSync(join(dir, 'agents/agent_status_updater.py.bak'))).toBe(false);
  });

  it('every integrated agent compiles, runs, reports running, and stops on SIGTERM', async () => {
    const compiled = await execa('python3', ['-m', 'py_compile', ...pyFiles()], { cwd: dir, reject: false });
    expect(compiled.stderr).toBe('');
    const runs = await Promise.all(
      Object.entries(AGENTS).map(async ([file, name]) => {
        const [{ token }] = await stack.db.sql`select token from public.create_api_token('agent', p_agent_name => ${name})`;
        const child = execa('python3', [`agents/${file}.py`], {
          cwd: dir,
          env: { PATH: process.env.PATH!, AGENT_STATUS_URL: stack.url, AGENT_STATUS_TOKEN: token as string, PYTHONDONTWRITEBYTECODE: '1' },
          extendEnv: false,
          reject: false,
          all: true,
        });
        return { name, child };
      }),
    );
    try {
      for (const { name, child } of runs) {
        await waitFor(
          `${name} to report running`,
          async () => {
            if (child.exitCode !== null) throw new Error(`${name} exited: ${(await child).all}`);
            const [row] = await stack.db.sql`select status from public.agent_status where agent_name = ${name}`;
            return row?.status === 'running';
          },
          20_000,
          100,
        );
      }
      for (const { child } of runs) child.kill('SIGTERM');
      for (const { name, child } of runs) {
        const result = await child;
        expect(result.all ?? '', name).not.toMatch(/Traceback|AttributeError|ModuleNotFoundError/);
        const [row] = await stack.db.sql`select status from public.agent_status where agent_name = ${name}`;
        expect(row.status, name).toBe('stopped');
      }
    } finally {
      for (const { child } of runs) child.kill('SIGKILL');
    }
  });
});
