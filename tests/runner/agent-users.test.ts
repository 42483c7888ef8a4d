// Agents as their own users, from the attacker's side: under a root runner (as its systemd unit runs
// it, the token in its environment and in a file), an agent started as `nobody` tries to read the
// runner's token and cannot; the same agent without `user:` can, which shows what the boundary buys.
// And the refusals: a runner that is not root refuses `user:`, a root runner refuses secrets its
// agents' users could reach.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../runner/daemon/config.ts';
import { processEnvironment } from '../../runner/daemon/proc.ts';
import { useTestStack } from '../helpers/stack.ts';
import { FIXTURES, tempDir, TEST_ENV, waitFor } from './helpers.ts';
import { agent, enqueue, finished, fixtureAgent, makeHost } from './host.ts';

const stack = useTestStack();
const REPO = resolve(import.meta.dirname, '../..');
const NOBODY = Number(readFileSync('/etc/passwd', 'utf8').match(/^nobody:[^:]*:(\d+):/m)?.[1]);

if (process.getuid?.() !== 0) {
  throw new Error('tests/runner/agent-users.test.ts switches users: run it as root (the CI container runs as root)');
}
if (!NOBODY) throw new Error('tests/runner/agent-users.test.ts needs the user nobody in /etc/passwd');

// A folder any user can read, for a runner started as nobody to read its config from.
const shared = mkdtempSync(join(tmpdir(), 'agent-status-users-'));
chmodSync(shared, 0o755);
afterAll(() => rmSync(shared, { recursive: true, force: true }));

const probeLines = (stateDir: string, name: string) =>
  readFileSync(join(stateDir, 'logs', `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.out.log`), 'utf8').split('\n');

describe('an agent with its own user under a root runner', () => {
  it("cannot read the runner's token from the runner's environment or its token file; the same agent as root can", async () => {
    // where a host keeps it: a folder anyone may enter (like /etc/agent-status), the file root's alone
    const secrets = tempDir();
    chmodSync(secrets, 0o755);
    const tokenFile = join(secrets, 'runner-token');
    const probe = { env: { RUNNER_FILES: tokenFile } };
    const asNobody = fixtureAgent('reads-runner-secrets.sh', { ...probe, user: 'nobody', cwd: '/' });
    const asRunner = fixtureAgent('reads-runner-secrets.sh', probe);
    const host = await makeHost(stack, [asNobody, asRunner], {}, undefined, { token_file: tokenFile });
    writeFileSync(tokenFile, `${host.token}\n`, { mode: 0o600 });
    // the agent reaches its socket under the state folder: the folders above it let others pass, as
    // /var/lib does (the runner refuses to start otherwise, saying which folder)
    chmodSync(dirname(host.stateDir), 0o711);
    // a real runner process as root, the token in its environment as a systemd EnvironmentFile puts it
    const { process: runner } = await host.spawn();
    const { sql } = stack.db;
    for (const probe of [asNobody, asRunner])
      expect(await finished(sql, await enqueue(sql, 'start', probe.name))).toMatchObject({ status: 'succeeded' });
    for (const probe of [asNobody, asRunner]) {
      await waitFor(`${probe.name} to finish probing`, () =>
        probeLines(host.stateDir, probe.name).some((line) => line.startsWith('heartbeat')),
      );
    }

    const nobody = probeLines(host.stateDir, asNobody.name);
    expect(nobody).toContain(`uid ${NOBODY} gid ${NOBODY}`);
    expect(nobody).toContain(`denied /proc/${runner.pid}/environ`);
    expect(nobody).toContain(`denied ${tokenFile}`);
    expect(nobody.join('\n')).not.toContain(host.token);
    // it still speaks for itself through the runner's channel
    expect(nobody).toContain('heartbeat 200');
    const [row] = await sql`select last_activity from public.agent_status where agent_name = ${asNobody.name}`;
    expect(row.last_activity).toBe('probed as nobody');

    // the control: the same probe under the runner's own user reads the token in both places
    const root = probeLines(host.stateDir, asRunner.name);
    expect(root).toContain(`uid 0 gid 0`);
    expect(root).toContain(`readable /proc/${runner.pid}/environ ${host.token}`);
    expect(root).toContain(`readable ${tokenFile} ${host.token}`);

    // what each was given: the user's own HOME and USER; never the runner's token, which the runner inherited
    const nobodyPid = (await agent(sql, asNobody.name)).pid!;
    expect(statSync(`/proc/${nobodyPid}`).uid).toBe(NOBODY);
    const nobodyEnv = processEnvironment(nobodyPid)!;
    expect(Object.fromEntries(nobodyEnv)).toMatchObject({ USER: 'nobody', LOGNAME: 'nobody', HOME: '/nonexistent' });
    for (const probe of [asNobody, asRunner]) {
      const env = processEnvironment((await agent(sql, probe.name)).pid!)!;
      expect(env.has('AGENT_STATUS_RUNNER_TOKEN'), `${probe.name} inherited AGENT_STATUS_RUNNER_TOKEN`).toBe(false);
      expect([...env.values()]).not.toContain(host.token);
    }

    // the root runner stops it like any other
    expect(await finished(sql, await enqueue(sql, 'stop', asNobody.name))).toMatchObject({ status: 'succeeded' });
    expect((await agent(sql, asNobody.name)).status).toBe('stopped');
  });

  it('is not adopted from a process of another user, even one carrying the runner mark and its name', async () => {
    const spec = fixtureAgent('forever.sh', { user: 'nobody', cwd: '/' });
    const host = await makeHost(stack, [spec]);
    chmodSync(dirname(host.stateDir), 0o711); // as in the test above
    const runner = await host.start();
    const { sql } = stack.db;
    expect(await finished(sql, await enqueue(sql, 'start', spec.name))).toMatchObject({ status: 'succeeded' });
    const first = (await agent(sql, spec.name)).pid!;
    const env = Object.fromEntries(processEnvironment(first)!);
    // a copy as root with the same environment: the mark alone must not make it the agent
    const impostor = execa(spec.command, [], { env, extendEnv: false, detached: true, cleanup: false, stdio: 'ignore', reject: false });
    try {
      await waitFor('the impostor to run', () => processEnvironment(impostor.pid!)?.get('AGENT_NAME') === spec.name);
      expect(await finished(sql, await enqueue(sql, 'stop', spec.name))).toMatchObject({ status: 'succeeded' });
      expect(await finished(sql, await enqueue(sql, 'start', spec.name))).toMatchObject({ status: 'succeeded' });
      const second = (await agent(sql, spec.name)).pid!;
      expect(second).not.toBe(impostor.pid);
      expect(statSync(`/proc/${second}`).uid).toBe(NOBODY);
      expect(runner.supervisors.get(spec.name)!.process?.pid).toBe(second);
    } finally {
      impostor.kill('SIGKILL');
    }
  });
});

describe('the refusals', () => {
  const config = (agents: Record<string, unknown>[], tokenFile?: string) =>
    stringify({ supabase: { url: 'http://127.0.0.1:9', anon_key: 'anon', ...(tokenFile ? { token_file: tokenFile } : {}) }, agents });

  it('a runner that is not root refuses a config with user:, saying what to do; without user: the same config is valid', async () => {
    const file = join(shared, 'agents.yaml');
    const run = (text: string) => {
      writeFileSync(file, text, { mode: 0o644 });
      return execa(process.execPath, ['--import', 'tsx', join(REPO, 'runner/daemon/main.ts'), 'runner', '--check', '--config', file], {
        cwd: REPO,
        uid: NOBODY,
        gid: NOBODY,
        env: { PATH: process.env.PATH!, HOME: shared, ...TEST_ENV },
        extendEnv: false,
        reject: false,
      });
    };
    const refused = await run(config([{ name: 'scraper', command: join(FIXTURES, 'forever.sh'), user: 'daemon' }]));
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(
      `${file}:7:11: agents[0] (scraper).user: running an agent as user daemon needs a runner running as root, and this one runs as uid ${NOBODY}`,
    );
    expect(refused.stderr).toContain('agent-status runner install');
    const plain = await run(config([{ name: 'scraper', command: join(FIXTURES, 'forever.sh') }]));
    expect(plain.stderr).toBe('');
    expect(plain.exitCode).toBe(0);
  });

  it("a root runner refuses a token file, config or state folder its agents' users could read or change", () => {
    const dir = tempDir();
    const tokenFile = join(dir, 'runner-token');
    writeFileSync(tokenFile, 'asr_secret\n', { mode: 0o644 });
    const file = join(dir, 'agents.yaml');
    const agents = [{ name: 'scraper', command: join(FIXTURES, 'forever.sh'), user: 'nobody' }];
    const load = () => parseConfig(readFileSync(file, 'utf8'), file, { env: { ...TEST_ENV, AGENT_STATUS_RUNNER_TOKEN: undefined } });
    writeFileSync(file, config(agents, tokenFile), { mode: 0o600 });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      `the token file ${tokenFile} is readable by user nobody (uid ${NOBODY}, gid ${NOBODY}) (mode 0644): chown root and chmod 600 it`,
    );
    chmodSync(tokenFile, 0o600);
    expect(load().agents[0].account).toEqual({ user: 'nobody', uid: NOBODY, gid: NOBODY, home: '/nonexistent' });
    chmodSync(file, 0o666);
    expect(load).toThrow(`the config file ${file} is writable by user nobody`);
    chmodSync(file, 0o600);
    chmodSync(dir, 0o777);
    expect(load).toThrow(
      `the config file ${file} can be replaced by user nobody (uid ${NOBODY}, gid ${NOBODY}): its folder ${dir} is writable`,
    );
    chmodSync(dir, 0o700);
    writeFileSync(file, config([{ ...agents[0], user: 'no-such-user-here' }], tokenFile));
    expect(load).toThrow('agents[0] (scraper).user: there is no user "no-such-user-here" on this host');
  });
});
