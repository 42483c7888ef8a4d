// Runs the real `agent-status` CLI (runner/bin/agent-status.js, as `npx agent-status` does) as a child
// process against a test stack, with a clean environment: no AGENT_STATUS_* from the outside and an
// empty data folder, so a developer's running `npm start` never leaks into a test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type Options, type ResultPromise } from 'execa';
import { afterAll } from 'vitest';
import type { TestStack } from '../helpers/stack.ts';

export const REPO = resolve(import.meta.dirname, '../..');
export const BIN = join(REPO, 'runner/bin/agent-status.js');
export const CLI_FIXTURES = join(REPO, 'tests/fixtures/cli');

const dataDir = mkdtempSync(join(tmpdir(), 'agent-status-cli-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** The environment of a CLI child: PATH and HOME from here, everything else from `env`. */
export function cliEnv(env: Record<string, string | undefined> = {}): Record<string, string> {
  const clean: Record<string, string> = { PATH: process.env.PATH!, HOME: process.env.HOME!, AGENT_STATUS_DATA_DIR: dataDir };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) clean[key] = value;
  return clean;
}

/** Connection variables for the stack, signed in as its operator unless `as` says otherwise. */
export function stackEnv(stack: TestStack, as: { token?: string } | 'operator' | 'nobody' = 'operator'): Record<string, string> {
  const base = { AGENT_STATUS_URL: stack.url, AGENT_STATUS_ANON_KEY: stack.anonKey };
  if (as === 'nobody') return base;
  if (as === 'operator') return { ...base, AGENT_STATUS_EMAIL: stack.operator.email, AGENT_STATUS_PASSWORD: stack.operator.password };
  return { ...base, AGENT_STATUS_OPERATOR_TOKEN: as.token! };
}

/** Starts the CLI; await it for { exitCode, stdout, stderr }. Never rejects on a non-zero exit. */
export function cli(args: string[], env: Record<string, string | undefined>, options: Options = {}): ResultPromise<{ reject: false }> {
  return execa('node', [BIN, ...args], {
    env: cliEnv(env),
    extendEnv: false,
    reject: false,
    timeout: 60_000,
    stdin: 'ignore',
    ...options,
  }) as ResultPromise<{ reject: false }>;
}
