// The Python module installs with pip, offline, in a fresh virtual environment: from the repository
// path, and from a wheel built there (its build backend is standard library only, so no setuptools or
// wheel package is needed). Installed, it reports to the stack from a folder outside the repository.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../runner/paths.ts';
import { agentRow, createToken } from '../helpers/agents.ts';
import { useTestStack } from '../helpers/stack.ts';

const run = promisify(execFile);
const stack = useTestStack({ functions: true });
const work = mkdtempSync(join(tmpdir(), 'agent-status-pip-'));
const SOURCE = join(REPO_ROOT, 'shared', 'python');
afterAll(() => rmSync(work, { recursive: true, force: true }));

// pip without the network or any index: what a host behind a firewall has
const pip = (venv: string, args: string[]) =>
  run(join(venv, 'bin', 'pip'), [...args, '--no-index', '--disable-pip-version-check'], { cwd: work, timeout: 120_000 });

async function freshVenv(name: string): Promise<string> {
  const venv = join(work, name);
  await run('python3', ['-m', 'venv', venv], { timeout: 120_000 });
  return venv;
}

/** An agent that uses the installed module, run from outside the repository with no PYTHONPATH. */
async function reportFrom(venv: string, agentName: string) {
  const token = await createToken(stack.db.sql, 'agent', { agent: agentName });
  const script = [
    'import agent_status_updater as s',
    'assert "site-packages" in s.__file__, s.__file__',
    `s.mark_agent_started(${JSON.stringify(agentName)})`,
    `s.update_agent_status(${JSON.stringify(agentName)}, "running", 77, "installed with pip")`,
    'print(s.flush(10))',
  ].join('\n');
  await run(join(venv, 'bin', 'python'), ['-c', script], {
    cwd: work,
    timeout: 60_000,
    env: { PATH: process.env.PATH, AGENT_STATUS_URL: stack.url, AGENT_STATUS_TOKEN: token, PYTHONDONTWRITEBYTECODE: '1' },
  });
  // what it said arrived; then its exit marked the agent stopped, as the module does for an agent it kept alive
  const row = await agentRow(stack.db.sql, agentName);
  expect({ status: row.status, last_activity: row.last_activity }).toEqual({ status: 'stopped', last_activity: 'installed with pip' });
  const kinds = await stack.db.sql`
    select e.kind, e.to_status, e.health from public.agent_events e join public.agent_status a on a.id = e.agent_id
    where a.agent_name = ${agentName} order by e.id`;
  expect(kinds.map((e) => [e.kind, e.to_status, e.health])).toEqual([
    ['started', 'running', 100],
    ['running', 'running', 77],
    ['stopped', 'stopped', 0],
  ]);
}

describe('pip install of the Python module', () => {
  it('from the repository path, into a fresh virtual environment', async () => {
    const venv = await freshVenv('from-path');
    await pip(venv, ['install', SOURCE]);
    await reportFrom(venv, 'pip-from-path');
  }, 180_000);

  it('from a wheel built in the repository, into another fresh virtual environment', async () => {
    const builder = await freshVenv('builder');
    const wheels = join(work, 'wheels');
    mkdirSync(wheels);
    await pip(builder, ['wheel', '--wheel-dir', wheels, SOURCE]);
    const [wheel] = readdirSync(wheels);
    expect(wheel).toBe('agent_status_updater-0.1.0-py3-none-any.whl');
    const venv = await freshVenv('from-wheel');
    await pip(venv, ['install', join(wheels, wheel)]);
    await reportFrom(venv, 'pip-from-wheel');
  }, 180_000);
});
