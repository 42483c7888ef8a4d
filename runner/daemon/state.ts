// What the runner must remember across its own restarts: which agents should run (the last start or
// stop command) and which process each one is (pid and start time). The database cannot tell a
// runner this: a runner token reads nothing, it only reports.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProcessIdentity } from './proc.ts';

export interface AgentState {
  wanted: boolean;
  process?: ProcessIdentity;
  /** A crash was reported and the agent has not been reported stable since (AgentSupervisor.unstable). */
  unstable?: boolean;
}

export interface RunnerState {
  /** This runner's mark (AGENT_STATUS_RUNNER in its agents' environment), kept across its restarts. */
  instance?: string;
  agents: Record<string, AgentState>;
}

/** The saved state; empty when there is none or it is unreadable (then nothing is assumed). */
export function readState(file: string, log: (message: string) => void): RunnerState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { agents: {} };
  }
  try {
    const parsed = JSON.parse(text) as Partial<RunnerState>;
    return { instance: parsed.instance, agents: parsed.agents ?? {} };
  } catch (error) {
    log(`ignoring the unreadable state file ${file}: ${(error as Error).message}`);
    return { agents: {} };
  }
}

/**
 * Writes the state atomically (a crash mid-write leaves the previous version), readable by the
 * runner's user alone: its mark, read from a world-readable file, let another user's process pass
 * for an agent.
 */
export function writeState(file: string, state: RunnerState): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(state, null, 1), { mode: 0o600 });
  renameSync(temporary, file);
}
