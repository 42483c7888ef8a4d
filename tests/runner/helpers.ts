// Helpers for the runner's tests: agent specs through the real config parser (so defaults are the
// ones users get), a temporary folder per test, and waiting with a bound.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterEach } from 'vitest';
import { processInfo } from '../../runner/daemon/proc.ts';
import { parseConfig, type AgentConfig, type RunnerConfig } from '../../runner/daemon/config.ts';

export const FIXTURES = resolve(import.meta.dirname, '../fixtures');

export const TEST_ENV = {
  SUPABASE_URL: 'http://127.0.0.1:9',
  SUPABASE_ANON_KEY: 'anon',
  AGENT_STATUS_RUNNER_TOKEN: 'asr_test',
};

/** Builds a whole config from plain objects through parseConfig, in a temporary state folder. */
export function runnerConfig(
  raw: Record<string, unknown>,
  env: Record<string, string> = TEST_ENV,
  file = join(tempDir(), 'agents.yaml'),
): RunnerConfig {
  return parseConfig(stringify(raw), file, { env });
}

/** One agent's config; `fixture` names a script in tests/fixtures. */
export function agentConfig(fixture: string, extra: Record<string, unknown> = {}): AgentConfig {
  return runnerConfig({ agents: [{ name: `agent-${fixture.replace(/\W/g, '')}`, command: join(FIXTURES, fixture), ...extra }] }).agents[0];
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A temporary folder removed after the current test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-runner-'));
  dirs.push(dir);
  return dir;
}

/** Polls `probe` until it returns a truthy value; fails with `what` after timeoutMs. */
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  timeoutMs = 10_000,
  stepMs = 25,
): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as Exclude<T, false | null | undefined | 0 | ''>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** True when pid exists and is not a zombie. */
export function alive(pid: number): boolean {
  const info = processInfo(pid);
  return info !== undefined && info.state !== 'Z';
}
