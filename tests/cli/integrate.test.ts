// `agent-status integrate` on the sample Python and TypeScript agents: dry run, backup, a second run
// that changes nothing, and then the integrated agents executed for real against the stack (the
// Python module and the TypeScript SDK posting to the Deno functions): a clean run, a crash, SIGTERM.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { waitFor } from '../runner/helpers.ts';
import { EXIT } from '../../runner/exit-codes.ts';
import { CLI_FIXTURES, REPO, cli } from './helpers.ts';

const stack = useTestStack({ functions: true });
const dir = mkdtempSync(join(tmpdir(), 'agent-status-integrate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const python = join(dir, 'tweet_scraping_agent.py');
const typescript = join(dir, 'price-watcher.ts');
copyFileSync(join(CLI_FIXTURES, 'tweet_scraping_agent.py'), python);
copyFileSync(join(CLI_FIXTURES, 'price-watcher.ts'), typescript);
// the agent's own project is ESM (its top-level await needs it), as TypeScript agents are today
writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');

const integrate = (...args: string[]) => cli(['integrate', ...args], {}, { cwd: dir });

async function agentEnv(name: string) {
  const [{ token }] = await stack.db.sql`select token from public.create_api_token('agent', p_agent_name => ${name})`;
  return {
    PATH: process.env.PATH!,
    AGENT_STATUS_URL: stack.url,
    AGENT_STATUS_TOKEN: token as string,
    PYTHONPATH: join(REPO, 'shared/python'),
  };
}

async function history(name: string) {
  const [agent] = await stack.db.sql<{ status: string; last_error: string | null; pid: number | null }[]>`
    select status, last_error, pid from public.agent_status where agent_name = ${name}`;
  const events = await stack.db
    .sql`select e.kind from public.agent_events e join public.agent_status a on a.id = e.agent_id where a.agent_name = ${name} order by e.id`;
  return { ...agent, kinds: events.map((e) => e.kind) };
}

describe('integrate', { timeout: 120_000 }, () => {
  it('--dry-run shows the diff and writes nothing', async () => {
    const before = readFileSync(python, 'utf8');
    const result = await integrate('--dry-run', 'tweet_scraping_agent.py', 'price-watcher.ts');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('--- a/tweet_scraping_agent.py\n+++ b/tweet_scraping_agent.py\n');
    expect(result.stdout).toContain('+import agent_status_updater as asu\n');
    expect(result.stdout).toContain('+AGENT_NAME = "Tweet Scraping Agent"\n');
    expect(result.stdout).toContain('+    asu.mark_agent_started(AGENT_NAME)  # agent-status\n');
    expect(result.stdout).toContain('+const AGENT_NAME = "Price Watcher";\n');
    expect(result.stdout).toContain('tweet_scraping_agent.py: would integrate as "Tweet Scraping Agent" (dry run: nothing written)');
    expect(readFileSync(python, 'utf8')).toBe(before);
    expect(readdirSync(dir).sort()).toEqual(['package.json', 'price-watcher.ts', 'tweet_scraping_agent.py']);
  });

  it('backs up, integrates, says where heartbeats go; a second run changes nothing', async () => {
    const originals = [readFileSync(python, 'utf8'), readFileSync(typescript, 'utf8')];
    const first = await integrate('tweet_scraping_agent.py', 'price-watcher.ts');
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toContain(
      'tweet_scraping_agent.py: integrated as "Tweet Scraping Agent"; the original is in tweet_scraping_agent.py.bak',
    );
    expect(first.stdout).toMatch(
      /heartbeat: line \d+ `while done < rounds:` looks like the main loop: add asu\.send_heartbeat\(AGENT_NAME\) inside it/,
    );
    expect(first.stdout).toMatch(
      /heartbeat: line \d+ `while \(done < rounds\) \{` looks like the main loop: add agentStatus\.activity\('what it is doing'\) inside it/,
    );
    expect([readFileSync(`${python}.bak`, 'utf8'), readFileSync(`${typescript}.bak`, 'utf8')]).toEqual(originals);
    const line = Number(/line (\d+) `while done/.exec(first.stdout)![1]);
    expect(readFileSync(python, 'utf8').split('\n')[line - 1]).toBe('    while done < rounds:');

    const integrated = [readFileSync(python, 'utf8'), readFileSync(typescript, 'utf8')];
    const second = await integrate('tweet_scraping_agent.py', 'price-watcher.ts', '--json');
    expect(second.exitCode).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual([
      expect.objectContaining({ file: 'tweet_scraping_agent.py', status: 'already integrated', changed: false, backup: null }),
      expect.objectContaining({ file: 'price-watcher.ts', status: 'already integrated', changed: false, backup: null }),
    ]);
    expect([readFileSync(python, 'utf8'), readFileSync(typescript, 'utf8')]).toEqual(integrated);
    expect(existsSync(`${python}.bak.1`)).toBe(false);
  });

  it('the integrated Python agent reports started and stopped, a crash as its error, SIGTERM as a stop', async () => {
    const env = await agentEnv('Tweet Scraping Agent');
    const clean = await execa('python3', [python], { env, extendEnv: false, reject: false });
    expect(clean.exitCode).toBe(0);
    expect(clean.stdout.split('\n')).toHaveLength(3);
    expect(await history('Tweet Scraping Agent')).toMatchObject({ status: 'stopped', kinds: ['started', 'stopped'] });

    const crash = await execa('python3', [python], { env: { ...env, FAIL_AT: '2' }, extendEnv: false, reject: false });
    expect(crash.exitCode).toBe(1);
    expect(crash.stderr).toContain('RuntimeError: rate limited in round 2');
    expect(await history('Tweet Scraping Agent')).toMatchObject({ status: 'error', last_error: 'RuntimeError: rate limited in round 2' });

    const long = execa('python3', [python], { env: { ...env, ITERATIONS: '1000' }, extendEnv: false, reject: false });
    await waitFor('the agent to report started', async () => (await history('Tweet Scraping Agent')).status === 'running', 15_000, 100);
    long.kill('SIGTERM');
    expect((await long).exitCode).toBe(0);
    expect(await history('Tweet Scraping Agent')).toMatchObject({ status: 'stopped', pid: null });
  });

  it('the integrated TypeScript agent reports started and stopped, and a crash as its error', async () => {
    const env = await agentEnv('Price Watcher');
    const tsx = join(REPO, 'node_modules/.bin/tsx');
    const clean = await execa(tsx, [typescript], { env, extendEnv: false, reject: false });
    expect(clean.stderr).toBe('');
    expect(clean.exitCode).toBe(0);
    expect(clean.stdout).toBe('price 101\nprice 102\nprice 103');
    expect(await history('Price Watcher')).toMatchObject({ status: 'stopped', kinds: ['started', 'stopped'] });

    const crash = await execa(tsx, [typescript], { env: { ...env, FAIL_AT: '2' }, extendEnv: false, reject: false });
    expect(crash.exitCode).toBe(1);
    expect(crash.stderr).toContain('price feed down in round 2');
    expect(await history('Price Watcher')).toMatchObject({ status: 'error', last_error: 'price feed down in round 2' });
  });

  it('refuses a missing file (5), another language (2) and one --name for several files (2), changing nothing', async () => {
    const missing = await integrate('tweet_scraping_agent.py', 'nope.py');
    expect(missing.exitCode).toBe(EXIT.notFound);
    expect(missing.stderr).toContain('no such file: nope.py');
    const other = await integrate(join(CLI_FIXTURES, 'fails-with-3.sh'));
    expect(other.exitCode).toBe(EXIT.usage);
    expect(other.stderr).toContain('hint: Any other program can report with no code change: agent-status run --name <agent> -- <command>');
    const names = await integrate('--name', 'X', 'tweet_scraping_agent.py', 'price-watcher.ts');
    expect(names.exitCode).toBe(EXIT.usage);
    expect((await integrate()).exitCode).toBe(EXIT.usage);
  });

  it('changes no file when any part fails: here the Python module cannot be written beside two agents', async () => {
    const folder = mkdtempSync(join(dir, 'half-'));
    for (const file of ['tweet_scraping_agent.py', 'price-watcher.ts']) copyFileSync(join(CLI_FIXTURES, file), join(folder, file));
    // the module's temporary file cannot be created (a folder stands in its place), after both
    // agents' backups and new texts were written
    mkdirSync(join(folder, 'agent_status_updater.py.agent-status.tmp'));
    const before = Object.fromEntries(
      readdirSync(folder).map((f) => [f, f.endsWith('.tmp') ? 'dir' : readFileSync(join(folder, f), 'utf8')]),
    );
    const result = await cli(['integrate', 'price-watcher.ts', 'tweet_scraping_agent.py'], {}, { cwd: folder });
    expect(result.exitCode).toBe(EXIT.failed);
    expect(result.stderr).toContain('no file was changed');
    expect(result.stdout).toBe('');
    const after = Object.fromEntries(
      readdirSync(folder).map((f) => [f, f.endsWith('.tmp') ? 'dir' : readFileSync(join(folder, f), 'utf8')]),
    );
    expect(after).toEqual(before);
  });
});
