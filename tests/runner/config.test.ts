// The config file: defaults, and errors that name the file, line, column and field.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../runner/daemon/config.ts';
import { REPO_ROOT } from '../../runner/paths.ts';
import { TEST_ENV, tempDir } from './helpers.ts';

function problems(text: string, env: Record<string, string> = TEST_ENV): string[] {
  try {
    parseConfig(text, 'agents.yaml', { env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the config to be refused');
}

describe('a valid config', () => {
  it('fills in the defaults and resolves paths against the config file', () => {
    const dir = tempDir();
    const file = join(dir, 'agents.yaml');
    writeFileSync(
      file,
      [
        'agents:',
        '  - name: scraper',
        '    command: python3',
        '    args: [scraper.py, --fast]',
        '    cwd: work',
        '    env: { RETRIES: 3, VERBOSE: true }',
        '    stop_timeout: 500ms',
        '    heartbeat_timeout: 2m',
        "    match: 'python3 .*scraper\\.py'",
        '    logs: { max_size: 512KB, keep: 2 }',
      ].join('\n'),
    );
    const config = loadConfig(file, { env: TEST_ENV });
    expect(config.supabase).toEqual({ url: TEST_ENV.SUPABASE_URL, anonKey: 'anon', token: 'asr_test', realtime: false });
    expect(config.runner).toMatchObject({
      pollIntervalMs: 250,
      heartbeatIntervalMs: 30_000,
      checkIntervalMs: 1000,
      stopAgentsOnExit: false,
    });
    expect(config.agents[0]).toEqual({
      name: 'scraper',
      command: 'python3',
      args: ['scraper.py', '--fast'],
      cwd: join(dir, 'work'),
      env: { RETRIES: '3', VERBOSE: 'true' },
      restart: 'on-failure',
      autostart: false,
      stop_signal: 'SIGTERM',
      stop_timeout: 500,
      min_uptime: 1000,
      backoff: { initial: 1000, max: 60_000, max_retries: 5, reset_after: 30_000 },
      heartbeat_timeout: 120_000,
      match: 'python3 .*scraper\\.py',
      logs: { max_size: 512 * 1024, keep: 2 },
    });
  });

  it('accepts the documented example', () => {
    const example = join(import.meta.dirname, '../../runner/agents.example.yaml');
    const text = readFileSync(example, 'utf8').replace('token_file: /etc/agent-status/runner-token', 'token_file: token');
    const dir = tempDir();
    writeFileSync(join(dir, 'token'), 'asr_example');
    const config = parseConfig(text, join(dir, 'agents.yaml'), { env: {} });
    expect(config.agents.map((a) => a.name)).toEqual(['price-scraper', 'invoice-bot']);
  });

  it('reads the token from token_file, relative to the config file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'token'), 'asr_from_file\n');
    const config = parseConfig('supabase: { token_file: token }\nagents: [{ name: a, command: sleep }]', join(dir, 'agents.yaml'), {
      env: { SUPABASE_URL: 'http://127.0.0.1:1', SUPABASE_ANON_KEY: 'k' },
    });
    expect(config.supabase.token).toBe('asr_from_file');
  });
});

describe('errors name the line and the field', () => {
  it('a bad value', () => {
    expect(
      problems(
        [
          'agents:',
          '  - name: ok',
          '    command: sleep',
          '  - name: scraper',
          '    command: python3',
          '    restart: sometimes',
          '    stop_signal: SIGSTOPP',
          '    stop_timeout: soon',
        ].join('\n'),
      ),
    ).toEqual([
      'agents.yaml:6:14: agents[1] (scraper).restart: must be never, on-failure or always',
      'agents.yaml:7:18: agents[1] (scraper).stop_signal: must be a signal name like SIGTERM, SIGINT or SIGQUIT, got "SIGSTOPP"',
      'agents.yaml:8:19: agents[1] (scraper).stop_timeout: must be a duration like 500ms, 10s, 2m or 1h',
    ]);
  });

  it('a missing field is reported where its agent is', () => {
    expect(problems('agents:\n  - name: scraper\n    args: [x]\n')).toEqual([
      'agents.yaml:2:5: agents[0] (scraper).command: Invalid input: expected string, received undefined',
    ]);
  });

  it('an unknown field (a typo) at its key', () => {
    expect(problems('agents:\n  - name: a\n    command: sleep\n    restart_policy: always\n')).toEqual([
      `agents.yaml:4:5: agents[0] (a).restart_policy: unknown field; check its spelling against ${join(REPO_ROOT, 'runner', 'README.md')}`,
    ]);
  });

  it('the same agent twice, a bad pattern, a heartbeat timeout out of range', () => {
    expect(
      problems(
        ['agents:', '  - { name: a, command: sleep }', '  - { name: a, command: sleep, match: "(", heartbeat_timeout: 1s }'].join('\n'),
      ),
    ).toEqual([
      'agents.yaml:3:63: agents[1] (a).heartbeat_timeout: must be between 5s and 24h',
      'agents.yaml:3:39: agents[1] (a).match: must be a valid regular expression (JavaScript syntax)',
      'agents.yaml:3:13: agents[1] (a).name: agent "a" is listed twice',
    ]);
  });

  it('YAML syntax errors with their position', () => {
    expect(problems('agents:\n  - name: a\n   command: [sleep\n')[0]).toMatch(/^agents\.yaml:\d+:\d+: /);
  });

  it('no agents, and a missing token or a service key in its place', () => {
    expect(problems('agents: []')).toEqual(['agents.yaml:1:9: agents: must list at least one agent']);
    expect(problems('agents: [{ name: a, command: sleep }]', { SUPABASE_URL: 'http://127.0.0.1:1', SUPABASE_ANON_KEY: 'k' })).toEqual([
      expect.stringMatching(/the runner token is missing: set \$AGENT_STATUS_RUNNER_TOKEN or supabase.token_file/),
    ]);
    expect(problems('agents: [{ name: a, command: sleep }]', { ...TEST_ENV, AGENT_STATUS_RUNNER_TOKEN: 'eyJhbGciOi.service.key' })).toEqual(
      [expect.stringMatching(/must be a runner token \(it starts with asr_\); never give the runner a service or secret key/)],
    );
  });
});
