// The agent-status SDK for TypeScript agents (Node 20+ and Deno): tell agent-status that your agent
// started, is alive, changed status, hit a warning or an error, or stopped. Nothing here throws into
// your code or blocks it; see docs/api.md#typescript-sdk.
import { AgentStatus, type StatusUpdate } from './client.ts';
import type { AgentStatusOptions } from './config.ts';

export { AgentStatus, type OperatorCommand, type StatusUpdate } from './client.ts';
export type { AgentStatusOptions } from './config.ts';
export { installShutdownHandlers, run } from './lifecycle.ts';

// The seed's module-level functions (agent_status_updater.py), one client per agent name, configured
// from the environment.
const clients = new Map<string, AgentStatus>();
function client(agentName: string, options?: AgentStatusOptions): AgentStatus {
  let found = clients.get(agentName);
  if (!found) {
    found = new AgentStatus({ ...options, agentName });
    clients.set(agentName, found);
  }
  return found;
}

export const markAgentStarted = (agentName: string) => client(agentName).markStarted();
export const markAgentStopped = (agentName: string) => client(agentName).markStopped();
export const updateAgentStatus = (agentName: string, status?: StatusUpdate['status'], health?: number, lastActivity?: string) =>
  client(agentName).updateStatus({ status, health, lastActivity });
export const sendHeartbeat = (agentName: string) => client(agentName).heartbeat();
export const reportError = (agentName: string, errorMessage: unknown) => client(agentName).reportError(errorMessage);
export const reportWarning = (agentName: string, warningMessage: string, health?: number) =>
  client(agentName).reportWarning(warningMessage, health);
/** Delivers what every agent of this process has pending, within the deadline. */
export const flushAll = async (timeoutMs?: number) =>
  (await Promise.all([...clients.values()].map((c) => c.flush(timeoutMs)))).every(Boolean);
