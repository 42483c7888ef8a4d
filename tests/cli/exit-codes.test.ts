// One table of exit codes: the README's, read from README.md, is exit-codes.ts's EXIT, and the cases
// users met that disagreed with it exit as it says (an unknown command, a runner refused by the lock
// of a runner already running on the host).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../runner/exit-codes.ts';
import { useTestStack } from '../helpers/stack.ts';
import { fixtureAgent, makeHost } from '../runner/host.ts';
import { REPO, cli } from './helpers.ts';

const stack = useTestStack();
const spawned: ReturnType<typeof execa>[] = [];
afterAll(async () => {
  for (const child of spawned) child.kill('SIGTERM');
  await Promise.allSettled(spawned);
});

/** The README's table under "Exit codes": code -> meaning. */
function readmeExitCodes(): Map<number, string> {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('Exit codes ('));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| code |')));
  return new Map([...table.matchAll(/^\| (\d+) \| (.+) \|$/gm)].map((m) => [Number(m[1]), m[2]]));
}

describe('exit codes', () => {
  it('the README lists exactly the codes exit-codes.ts defines', () => {
    const readme = readmeExitCodes();
    expect([...readme.keys()].sort()).toEqual(Object.values(EXIT).sort());
    expect(readme.get(EXIT.usage)).toMatch(/^bad arguments/);
    expect(readme.get(EXIT.conflict)).toMatch(/^refused in the current state/);
    expect(readme.get(EXIT.timeout)).toMatch(/gave up waiting/);
  });

  it('an unknown command and an unknown option exit 2, as bad arguments', async () => {
    const unknown = await cli(['no-such-command'], {});
    expect(unknown.stderr).toContain("unknown command 'no-such-command'");
    expect(unknown.exitCode).toBe(EXIT.usage);
    expect((await cli(['list', '--no-such-flag'], {})).exitCode).toBe(EXIT.usage);
    expect((await cli(['--help'], {})).exitCode).toBe(EXIT.ok);
    expect((await cli(['--version'], {})).exitCode).toBe(EXIT.ok);
  });

  it('runner install refuses a missing environment file and --user root with what to do, exiting 2', async () => {
    const config = join(REPO, 'runner/agents.example.yaml');
    const missing = await cli(['runner', 'install', '--config', config, '--environment-file', '/nonexistent/runner.env', '--print'], {});
    expect(missing.stderr).toContain('error: no environment file at /nonexistent/runner.env');
    expect(missing.stderr).toContain('hint: Write it first');
    expect(missing.exitCode).toBe(EXIT.usage);
    const root = await cli(['runner', 'install', '--config', config, '--user', 'root', '--print'], {});
    expect(root.stderr).toContain('--user root: the runner and every agent it starts would run as root, which it refuses');
    expect(root.exitCode).toBe(EXIT.usage);
  });

  it('a second runner on a host is refused, by the first one’s lock or by the lease, and exits 6', async () => {
    const host = await makeHost(stack, [fixtureAgent('forever.sh')]);
    const first = await host.spawn();
    spawned.push(first.process);
    const runSecond = (configFile: string) =>
      execa(process.execPath, ['--import', 'tsx', join(REPO, 'runner/daemon/main.ts'), 'runner', '--config', configFile], {
        cwd: REPO,
        env: { ...process.env, AGENT_STATUS_RUNNER_TOKEN: host.token },
        reject: false,
        timeout: 60_000,
      });
    const locked = await runSecond(host.configFile);
    expect(locked.stderr).toMatch(/the runner could not start: another .* is running/);
    expect(locked.exitCode).toBe(EXIT.conflict);
    // the same host's token with a state folder of its own: the lock cannot see the first one, the lease can
    const elsewhere = await makeHost(stack, [fixtureAgent('forever.sh')], {}, host);
    const leased = await runSecond(elsewhere.configFile);
    expect(leased.stderr).toMatch(/another runner is live on host/);
    expect(leased.exitCode).toBe(EXIT.conflict);
  }, 90_000);

  it('a runner whose token may not add its agents says which and how to get one, and exits 4', async () => {
    const agent = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [agent]);
    const [{ token }] = await stack.db.sql`select token from public.create_api_token('runner', p_host => ${host.host})`;
    const refused = await execa(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'runner/daemon/main.ts'), 'runner', '--config', host.configFile],
      {
        cwd: REPO,
        env: { ...process.env, AGENT_STATUS_RUNNER_TOKEN: token },
        reject: false,
        timeout: 60_000,
      },
    );
    expect(refused.stderr).toContain(`may not add agent '${agent.name}'`);
    expect(refused.stderr).toContain('--new-agents');
    expect(refused.exitCode).toBe(EXIT.auth);
    expect(await stack.db.sql`select 1 from public.agent_status where agent_name = ${agent.name}`).toEqual([]);
  }, 90_000);
});
