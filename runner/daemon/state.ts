// What the runner must remember across its own restarts: which agents should run (the last start or
// stop command) and which process each one is (pid and start time). The database cannot tell a
// runner this: a runner token reads nothing, it only reports.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProcessIdentity } from './proc.ts';

export interface AgentState {
  wanted: boolean;
  process?: ProcessIdentity;
  /** SHA-256 of the agent channel secret its process was given, so it can speak after a runner restart. */
  secretHash?: string;
  /** A crash was reported and the agent has not been reported stable since (AgentSupervisor.unstable). */
  unstable?: boolean;
}

export interface RunnerState {
  /** This runner's mark (AGENT_STATUS_RUNNER in its agents' environment), kept across its restarts. */
  instance?: string;
  /** The agent channel's port, which the agents it started know. */
  channelPort?: number;
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
    return { instance: parsed.instance, channelPort: parsed.channelPort, agents: parsed.agents ?? {} };
  } catch (error) {
    log(`ignoring the unreadable state file ${file}: ${(error as Error).message}`);
    return { agents: {} };
  }
}

/** Writes the state atomically (a crash mid-write leaves the previous version). */
export function writeState(file: string, state: RunnerState): void {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(state, null, 1));
  renameSync(temporary, file);
}
