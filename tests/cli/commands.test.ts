// list, set, token, operator, start/stop/restart/start-all: the real CLI as a child process against a
// real stack (PostgREST, auth, database), the runner a real Runner, and every failure's exit code.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeLocalStack } from '../../runner/local-stack/connection-file.ts';
import { useTestStack } from '../helpers/stack.ts';
import { fixtureAgent, makeHost } from '../runner/host.ts';
import { waitFor } from '../runner/helpers.ts';
import { EXIT } from '../../runner/exit-codes.ts';
import { cli, stackEnv } from './helpers.ts';

const stack = useTestStack();

async function agentToken(name: string): Promise<string> {
  const [{ token }] = await stack.db.sql`select token from public.create_api_token('agent', p_agent_name => ${name})`;
  return token;
}

describe('list and set', { timeout: 120_000 }, () => {
  it('lists agents as a table and as JSON, with stale applied at read time', async () => {
    const token = await agentToken('Tweet Scraping Agent');
    await stack.db.sql`select public.agent_report(${token}, 'Tweet Scraping Agent', 'started')`;
    await stack.db.sql`select public.agent_heartbeat(${token}, 'Tweet Scraping Agent', p_health => 90, p_activity => 'Fetching tweets')`;
    await agentToken('Silent Agent');
    await stack.db.sql`select public.agent_report(${await agentToken('Silent Agent')}, 'Silent Agent', 'started')`;
    await stack.db.sql`update public.agent_status set stale_at = now() - interval '1 s' where agent_name = 'Silent Agent'`;

    const human = await cli(['list'], stackEnv(stack));
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toMatch(/^AGENT\s+STATUS\s+HEALTH\s+UP\s+RESTARTS\s+HOST\s+HEARTBEAT\s+NOTE/);
    expect(human.stdout).toMatch(/Tweet Scraping Agent\s+running\s+90\s+up \d+ s\s+-\s+-\s+\d+ s ago\s+Fetching tweets/);
    // a stale agent is not known to run: silent since its last heartbeat, not up (issue 19); it never
    // said its health, so there is none to show (the row's 100 is the state machine's default at a start)
    expect(human.stdout).toMatch(/Silent Agent\s+stale\s+-\s+silent \d+ s\s+-\s+-\s+\d+ s ago\s+no heartbeat for \d+ s/);
    expect(human.stdout).not.toContain('\x1b['); // no colour when stdout is not a terminal

    const json = await cli(['list', '--json'], stackEnv(stack));
    expect(json.exitCode).toBe(0);
    const rows = JSON.parse(json.stdout);
    expect(rows.map((r: { agent_name: string; status: string }) => [r.agent_name, r.status])).toEqual([
      ['Silent Agent', 'stale'],
      ['Tweet Scraping Agent', 'running'],
    ]);
  });

  it('sets a status as an operator action in the history', async () => {
    const result = await cli(['set', 'Tweet Scraping Agent', 'stopped', '0', '--reason', 'hidden process killed by hand'], stackEnv(stack));
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(
      /^Tweet Scraping Agent: running -> stopped, health 0 \(recorded in its history as set by operator@agent-status.test/,
    );
    const [event] = await stack.db.sql`
      select e.kind, e.source, e.actor, e.to_status, e.message from public.agent_events e
      join public.agent_status a on a.id = e.agent_id where a.agent_name = 'Tweet Scraping Agent' order by e.id desc limit 1`;
    expect(event).toEqual({
      kind: 'force',
      source: 'operator',
      actor: 'operator operator@agent-status.test',
      to_status: 'stopped',
      message: 'hidden process killed by hand',
    });
  });

  it('refuses bad arguments with exit 2 before touching anything, and an unknown agent with 5 and the nearest names', async () => {
    const badStatus = await cli(['set', 'Tweet Scraping Agent', 'stale', '0'], stackEnv(stack));
    expect(badStatus.exitCode).toBe(EXIT.usage);
    expect(badStatus.stderr).toContain('status must be one of running, warning, error, stopped, got "stale"');
    const badHealth = await cli(['set', 'Tweet Scraping Agent', 'running', '101'], stackEnv(stack));
    expect(badHealth.exitCode).toBe(EXIT.usage);
    expect(badHealth.stderr).toContain('expected a whole number from 0 to 100, got "101"');
    const missing = await cli(['set', 'Tweet Scraping Agent'], stackEnv(stack));
    expect(missing.exitCode).toBe(EXIT.usage);
    expect(missing.stderr).toContain("missing required argument 'status'");
    const unknownOption = await cli(['list', '--colour'], stackEnv(stack));
    expect(unknownOption.exitCode).toBe(EXIT.usage);

    const unknown = await cli(['set', 'tweet scraping agent', 'stopped', '0'], stackEnv(stack));
    expect(unknown.exitCode).toBe(EXIT.notFound);
    expect(unknown.stderr).toContain('error: no agent named "tweet scraping agent"');
    expect(unknown.stderr).toContain('Did you mean "Tweet Scraping Agent"?');
  });
});

describe('connection failures', { timeout: 120_000 }, () => {
  it('says when there is no API configured (2), the stack is down (3), or credentials are wrong (4)', async () => {
    const none = await cli(['list'], {});
    expect(none.exitCode).toBe(EXIT.usage);
    expect(none.stderr).toContain('no API to talk to');

    const noKey = await cli(['list'], { AGENT_STATUS_URL: stack.url });
    expect(noKey.exitCode).toBe(EXIT.usage);
    expect(noKey.stderr).toContain('no publishable key');

    const notAnOperator = await cli(['list'], stackEnv(stack, 'nobody'));
    expect(notAnOperator.exitCode).toBe(EXIT.auth);
    expect(notAnOperator.stderr).toContain('only operators may do this');

    const wrongPassword = await cli(['list'], { ...stackEnv(stack), AGENT_STATUS_PASSWORD: 'not-the-password' });
    expect(wrongPassword.exitCode).toBe(EXIT.auth);
    expect(wrongPassword.stderr).toContain('cannot sign in as operator@agent-status.test');

    const badToken = await cli(['list'], stackEnv(stack, { token: 'aso_not-a-real-token' }));
    expect(badToken.exitCode).toBe(EXIT.auth);
    expect(badToken.stderr).toContain('operator token is unknown or revoked');

    const wrongKey = await cli(['list'], { ...stackEnv(stack, { token: 'aso_x' }), AGENT_STATUS_ANON_KEY: 'not-a-key' });
    expect(wrongKey.exitCode).toBe(EXIT.auth);

    await stack.gateway.stop();
    try {
      const down = await cli(['list'], stackEnv(stack, { token: 'aso_x' }));
      expect(down.exitCode).toBe(EXIT.unreachable);
      expect(down.stderr).toContain(`cannot reach the API at ${stack.url}`);
      expect(down.stderr).toContain('ECONNREFUSED');
    } finally {
      await stack.gateway.start();
    }
  });
});

describe('the local stack, found without any configuration', { timeout: 120_000 }, () => {
  it('reads .agent-status/local.json and signs in as its operator; a stopped stack gets a hint', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-status-local-'));
    try {
      const details = {
        url: stack.url,
        anonKey: stack.anonKey,
        serviceKey: stack.serviceKey,
        dbUrl: stack.db.url,
        operator: stack.operator,
        database: 'url' as const,
        jwtSecret: 'unused here',
        pid: process.pid,
        startedAt: new Date().toISOString(),
      };
      writeLocalStack(details, dataDir);
      const found = await cli(['list', '--json'], { AGENT_STATUS_DATA_DIR: dataDir });
      expect(found.stderr).toBe('');
      expect(found.exitCode).toBe(0);
      expect(JSON.parse(found.stdout).map((a: { agent_name: string }) => a.agent_name)).toContain('Tweet Scraping Agent');

      // the quick start: AGENT_STATUS_URL exported for the agents names the same stack (localhost
      // for 127.0.0.1, a trailing slash): its keys and operator still apply, so the token comes out
      const sameUrl = `${stack.url.replace('127.0.0.1', 'localhost')}/`;
      const created = await cli(['token', 'create', 'agent', '--name', 'Quick Start Agent'], {
        AGENT_STATUS_DATA_DIR: dataDir,
        AGENT_STATUS_URL: sameUrl,
      });
      expect(created.stderr).toBe('');
      expect(created.exitCode).toBe(0);
      expect(created.stdout.trim()).toMatch(/^asa_[\w-]+$/);
      // another URL is another API: the local keys are not sent there, and the error exits non-zero
      const other = await cli(['token', 'create', 'agent', '--name', 'Quick Start Agent'], {
        AGENT_STATUS_DATA_DIR: dataDir,
        AGENT_STATUS_URL: 'http://127.0.0.1:9',
      });
      expect(other.exitCode).toBe(EXIT.usage);
      expect(other.stderr).toContain('error: no publishable key for http://127.0.0.1:9');

      // the npm start that wrote it is gone: say so instead of timing out on a dead port
      writeLocalStack({ ...details, pid: 2 ** 22 + 1 }, dataDir);
      const gone = await cli(['list'], { AGENT_STATUS_DATA_DIR: dataDir });
      expect(gone.exitCode).toBe(EXIT.unreachable);
      expect(gone.stderr).toContain('error: the local stack is not running');
      expect(gone.stderr).toContain('hint: Start it with `npm start`');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('colours status words only when asked for (FORCE_COLOR) or on a terminal', async () => {
    const coloured = await cli(['list'], { ...stackEnv(stack), FORCE_COLOR: '1' });
    expect(coloured.stdout).toContain('\x1b[');
    const plain = await cli(['list'], { ...stackEnv(stack), FORCE_COLOR: '1', NO_COLOR: '1' });
    expect(plain.stdout).not.toContain('\x1b[');
  });
});

describe('tokens and operators', { timeout: 120_000 }, () => {
  it('creates a token printed alone when piped, lists it by prefix, uses it, revokes it', async () => {
    const created = await cli(['token', 'create', 'operator', '--label', 'ci', '--expires', '90d'], stackEnv(stack));
    expect(created.exitCode).toBe(0);
    expect(created.stdout).toMatch(/^aso_[\w-]{43}$/);
    const token = created.stdout;

    // the operator token alone is enough: reads and writes with the publishable key
    const viaToken = await cli(['token', 'list', '--json'], stackEnv(stack, { token }));
    expect(viaToken.exitCode).toBe(0);
    const listed = JSON.parse(viaToken.stdout);
    expect(listed).toContainEqual(expect.objectContaining({ kind: 'operator', label: 'ci', token_prefix: token.slice(0, 10) }));
    expect(viaToken.stdout).not.toContain(token);

    const agent = await cli(['token', 'create', 'agent', '--name', 'Token Agent', '--json'], stackEnv(stack, { token }));
    expect(JSON.parse(agent.stdout)).toMatchObject({ kind: 'agent', agent_name: 'Token Agent', label: 'Token Agent' });

    const table = await cli(['token', 'list'], stackEnv(stack, { token }));
    expect(table.stdout).toMatch(/^PREFIX\s+KIND\s+FOR\s+LABEL\s+CREATED\s+LAST USED\s+EXPIRES\s+REVOKED/);
    expect(table.stdout).toMatch(/asa_\S+\s+agent\s+Token Agent\s+Token Agent/);
    // the operator token: made for oneself, expiring in 90 days, used a moment ago
    const expires = new Date(Date.now() + 90 * 86_400_000).toISOString().slice(0, 10);
    expect(table.stdout).toMatch(
      new RegExp(`${token.slice(0, 10)}\\s+operator\\s+${stack.operator.email}\\s+ci\\s+\\S+ \\S+\\s+\\S+ \\S+\\s+${expires}`),
    );

    const revoked = await cli(['token', 'revoke', token.slice(0, 10)], stackEnv(stack));
    expect(revoked.exitCode).toBe(0);
    expect(revoked.stdout).toMatch(/^Revoked "ci" \(id [\w-]+\) at /);
    const refused = await cli(['list'], stackEnv(stack, { token }));
    expect(refused.exitCode).toBe(EXIT.auth);
  });

  it('explains what each token kind needs, and refuses unknown kinds and prefixes', async () => {
    const noScope = await cli(['token', 'create', 'runner'], stackEnv(stack));
    expect(noScope.exitCode).toBe(EXIT.usage);
    expect(noScope.stderr).toContain('a runner token needs --host <host>');
    const badKind = await cli(['token', 'create', 'admin'], stackEnv(stack));
    expect(badKind.exitCode).toBe(EXIT.usage);
    // the read-only keys need no scope
    for (const [kind, prefix] of [
      ['metrics', 'asm_'],
      ['badge', 'asb_'],
    ]) {
      const key = await cli(['token', 'create', kind, '--json'], stackEnv(stack));
      expect(key.stderr).toBe('');
      expect(JSON.parse(key.stdout)).toMatchObject({ kind, label: kind, token: expect.stringMatching(new RegExp(`^${prefix}`)) });
    }
    const unknownPrefix = await cli(['token', 'revoke', 'asa_nothing'], stackEnv(stack));
    expect(unknownPrefix.exitCode).toBe(EXIT.notFound);
    expect(unknownPrefix.stderr).toContain("no token with id or prefix 'asa_nothing'");
    const someoneElse = await cli(['token', 'create', 'operator', '--email', 'nobody@example.com'], stackEnv(stack));
    expect(someoneElse.exitCode).toBe(EXIT.auth);
    expect(someoneElse.stderr).toContain('an operator token can only be made for yourself');
    const scoped = await cli(
      ['token', 'create', 'runner', '--host', 'cli-host', '--agents', 'scraper-*, Tweet Agent', '--json'],
      stackEnv(stack),
    );
    expect(JSON.parse(scoped.stdout)).toMatchObject({
      kind: 'runner',
      host: 'cli-host',
      agents: ['scraper-*', 'Tweet Agent'],
      new_agents: false,
    });
    const adding = await cli(['token', 'create', 'runner', '--host', 'cli-host', '--new-agents', '--json'], stackEnv(stack));
    expect(JSON.parse(adding.stdout)).toMatchObject({ kind: 'runner', agents: null, new_agents: true });
    const listedScopes = await cli(['token', 'list'], stackEnv(stack));
    expect(listedScopes.stdout).toContain("cli-host (its host's agents and new names)");
    const both = await cli(['token', 'create', 'runner', '--host', 'cli-host', '--agents', 'x', '--new-agents'], stackEnv(stack));
    expect(both.exitCode).toBe(EXIT.usage);
    expect(both.stderr).toContain('--new-agents is for runner tokens without --agents');
    const misplaced = await cli(['token', 'create', 'agent', '--name', 'x', '--agents', 'y'], stackEnv(stack));
    expect(misplaced.exitCode).toBe(EXIT.usage);
    const badLifetime = await cli(['token', 'create', 'agent', '--name', 'x', '--expires', 'soon'], stackEnv(stack));
    expect(badLifetime.exitCode).toBe(EXIT.usage);
    expect(badLifetime.stderr).toContain('--expires must be a lifetime like 90d');
  });

  it('archives a stopped agent: gone from the list, its token revoked, its name free', async () => {
    const token = await cli(['token', 'create', 'agent', '--name', 'Old Agent'], stackEnv(stack));
    expect(token.exitCode).toBe(0);
    const archived = await cli(['archive', 'Old Agent'], stackEnv(stack));
    expect(archived.exitCode, archived.stderr).toBe(0);
    expect(archived.stdout).toMatch(/^Archived "Old Agent": its history stays under "Old Agent \[archived \d+\]"; 1 token\(s\) revoked/);
    const listed = JSON.parse((await cli(['list', '--json'], stackEnv(stack))).stdout) as { agent_name: string }[];
    expect(listed.map((agent) => agent.agent_name)).not.toContain('Old Agent');
    const again = await cli(['archive', 'Old Agent'], stackEnv(stack));
    expect(again.exitCode).toBe(EXIT.notFound);
  });

  it('adds and removes operators', async () => {
    const added = await cli(['operator', 'add', 'Second@Example.com'], stackEnv(stack));
    expect(added.exitCode).toBe(0);
    expect(added.stdout).toBe('second@example.com is an operator (from their first sign-in).');
    expect((await cli(['operator', 'add', 'not-an-email'], stackEnv(stack))).exitCode).toBe(EXIT.usage);
    expect((await cli(['operator', 'remove', 'second@example.com'], stackEnv(stack))).exitCode).toBe(0);
    const again = await cli(['operator', 'remove', 'second@example.com'], stackEnv(stack));
    expect(again.exitCode).toBe(EXIT.notFound);
  });
});

describe('start, stop, restart, start-all', { timeout: 120_000 }, () => {
  it('waits for the runner and prints each result; starting what runs succeeds as a no-op', async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever]);
    await host.start();

    const start = await cli(['start', forever.name], stackEnv(stack));
    expect(start.exitCode).toBe(0);
    expect(start.stdout).toMatch(new RegExp(`^✓ start "${forever.name}" succeeded in \\d+\\.\\d s on ${host.host}`));

    // starting what runs is a no-op that succeeds, so start-all over running agents exits 0
    const again = await cli(['start', forever.name], stackEnv(stack));
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/✓ start ".*" succeeded in [\d.]+ s on .*: already running \(pid \d+\)/);

    const restart = await cli(['restart', forever.name, '--json'], stackEnv(stack));
    expect(restart.exitCode).toBe(0);
    expect(JSON.parse(restart.stdout)).toEqual([
      expect.objectContaining({ action: 'restart', status: 'succeeded', claimed_by_host: host.host }),
    ]);

    // start-all over agents that already run: exit 0, each one "already running"
    const allRunning = await cli(['start-all', '--host', host.host], stackEnv(stack));
    expect(allRunning.exitCode).toBe(0);
    expect(allRunning.stdout).toMatch(/✓ start ".*" succeeded .*: already running \(pid \d+\)/);

    const stop = await cli(['stop', forever.name], stackEnv(stack));
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toMatch(/✓ stop ".*" succeeded .*stopped \(pid \d+\)/);
    const stopAgain = await cli(['stop', forever.name], stackEnv(stack));
    expect(stopAgain.exitCode).toBe(0);
    expect(stopAgain.stdout).toMatch(/✓ stop ".*" succeeded .*: already stopped/);

    const all = await cli(['start-all', '--host', host.host], stackEnv(stack));
    expect(all.exitCode).toBe(0);
    expect(all.stdout).toMatch(/✓ start ".*" succeeded/);
    expect((await cli(['stop', forever.name], stackEnv(stack))).exitCode).toBe(0);
  });

  it('--no-wait only queues; a timeout exits 7 and names the agent no runner claimed', async () => {
    const idle = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [idle]);
    // registered and heard from (a runner manages it and reads online), but no runner runs: nobody
    // claims the command
    await stack.db.sql`select public.runner_register(${host.token}, ${stack.db.sql.json([{ name: idle.name }])})`;
    await stack.db.sql`select public.runner_heartbeat(${host.token})`;

    const queued = await cli(['start', idle.name, '--no-wait'], stackEnv(stack));
    expect(queued.exitCode).toBe(0);
    expect(queued.stdout).toMatch(new RegExp(`^queued start "${idle.name}" \\(command \\d+, expires `));

    const timeout = await cli(['start', idle.name, '--timeout', '2'], stackEnv(stack));
    expect(timeout.exitCode).toBe(EXIT.timeout);
    expect(timeout.stdout).toMatch(/… start ".*" still pending/);
    expect(timeout.stderr).toContain(`No runner has claimed "${idle.name}": is its runner running and online?`);

    // the sweep expires what waited too long while the CLI waits; it reports that as a failure
    const [{ last }] = await stack.db.sql`select coalesce(max(id), 0) as last from public.agent_commands`;
    const waiting = cli(['start', idle.name], stackEnv(stack));
    await waitFor(
      'the command to be queued',
      async () =>
        (
          await stack.db.sql`
      select 1 from public.agent_commands where id > ${last} and status = 'pending'`
        ).length,
      30_000,
      100,
    );
    await stack.db.sql`update public.agent_commands set expires_at = now() where status = 'pending'`;
    await stack.db.sql`select public.agent_status_sweep()`;
    const expired = await waiting;
    expect(expired.exitCode).toBe(EXIT.failed);
    expect(expired.stdout).toMatch(/✗ start ".*" expired in [\d.]+ s: no runner claimed it before it expired/);
  });

  it('a command whose runner is known to be stopped is not waited for: exit 7 at once, saying why; it stays queued', async () => {
    const idle = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [idle]);
    const runner = await host.start();
    await runner.shutdown({ stopAgents: true });

    const began = Date.now();
    const result = await cli(['start', idle.name], stackEnv(stack));
    // a liveness bound: it waited for the command's expiry (132.7 s seen), and the timeout is 180 s
    expect(Date.now() - began).toBeLessThan(30_000);
    expect(result.exitCode).toBe(EXIT.timeout);
    expect(result.stdout).toMatch(/… start ".*" still pending/);
    expect(result.stderr).toMatch(
      new RegExp(`^not waiting for start "${idle.name}": its runner on ${host.host} is stopped \\(said goodbye \\d+ s ago\\)\\.\n`),
    );
    expect(result.stderr).toContain('stays queued until it expires');
    const [command] = await stack.db.sql`select c.status from public.agent_commands c join public.agent_status a on a.id = c.agent_id
                                          where a.agent_name = ${idle.name}`;
    expect(command.status).toBe('pending');
  });

  it('refuses an agent no runner manages (6), an unknown agent (5), bad arguments (2)', async () => {
    await agentToken('Unmanaged Agent');
    const unmanaged = await cli(['start', 'Unmanaged Agent'], stackEnv(stack));
    expect(unmanaged.exitCode).toBe(EXIT.conflict);
    expect(unmanaged.stderr).toContain('no runner manages agent');
    const unknown = await cli(['stop', 'Unmanaged agent'], stackEnv(stack));
    expect(unknown.exitCode).toBe(EXIT.notFound);
    expect(unknown.stderr).toContain('Did you mean "Unmanaged Agent"?');
    const badTimeout = await cli(['start', 'Unmanaged Agent', '--timeout', 'soon'], stackEnv(stack));
    expect(badTimeout.exitCode).toBe(EXIT.usage);
    const noHost = await cli(['start-all', '--host', 'no-such-host'], stackEnv(stack));
    expect(noHost.exitCode).toBe(EXIT.notFound);
  });
});
