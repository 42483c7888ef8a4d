// The SDK's settings: options passed in code win, then the environment (AGENT_STATUS_URL,
// AGENT_STATUS_SOCKET, AGENT_STATUS_TOKEN, AGENT_NAME, ...), then cheap defaults.

export interface AgentStatusOptions {
  /** Project URL (https://<ref>.supabase.co, or http://127.0.0.1:54321 locally); env AGENT_STATUS_URL. */
  url?: string;
  /** Unix socket the requests travel over (a runner's agent channel; the URL then gives only the path); env AGENT_STATUS_SOCKET. */
  socket?: string;
  /** The agent's token (asa_...) or its host runner's; env AGENT_STATUS_TOKEN. */
  token?: string;
  /** The agent's name, exactly as in agent_status; env AGENT_NAME. */
  agentName?: string;
  /** Automatic heartbeat period once started; 0 turns it off. Env AGENT_STATUS_HEARTBEAT_INTERVAL (seconds). Default 30 s. */
  heartbeatIntervalMs?: number;
  /** Time limit of one request. Env AGENT_STATUS_TIMEOUT (seconds). Default 5 s. */
  requestTimeoutMs?: number;
  /** How long the final flush (stop, exit, signal) may wait for the service. Env AGENT_STATUS_FLUSH_TIMEOUT (seconds). Default 5 s. */
  flushTimeoutMs?: number;
  /** Reports kept while the service is unreachable; the oldest heartbeats go first. Default 100. */
  maxPending?: number;
  /** Longest wait between retries. Env AGENT_STATUS_MAX_BACKOFF (seconds). Default 30 s. */
  maxBackoffMs?: number;
  /** Where the SDK says what went wrong (it never throws into agent code). Default console.warn. */
  log?: (message: string) => void;
}

export interface AgentStatusConfig {
  url: string | undefined;
  socket: string | undefined;
  token: string | undefined;
  agentName: string | undefined;
  heartbeatIntervalMs: number;
  requestTimeoutMs: number;
  flushTimeoutMs: number;
  maxPending: number;
  maxBackoffMs: number;
  log: (message: string) => void;
}

function environment(name: string): string | undefined {
  try {
    return (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name] || undefined;
  } catch {
    return undefined; // Deno without --allow-env: options only
  }
}

function seconds(name: string): number | undefined {
  const value = environment(name);
  if (value === undefined) return undefined;
  const parsed = Number(value);
  return Number.isFinite(parsed) && parsed >= 0 ? parsed * 1000 : undefined;
}

export function resolveConfig(options: AgentStatusOptions = {}): AgentStatusConfig {
  return {
    url: options.url ?? environment('AGENT_STATUS_URL'),
    socket: options.socket ?? environment('AGENT_STATUS_SOCKET'),
    token: options.token ?? environment('AGENT_STATUS_TOKEN'),
    agentName: options.agentName ?? environment('AGENT_NAME'),
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? seconds('AGENT_STATUS_HEARTBEAT_INTERVAL') ?? 30_000,
    requestTimeoutMs: options.requestTimeoutMs ?? seconds('AGENT_STATUS_TIMEOUT') ?? 5_000,
    flushTimeoutMs: options.flushTimeoutMs ?? seconds('AGENT_STATUS_FLUSH_TIMEOUT') ?? 5_000,
    maxPending: Math.max(2, options.maxPending ?? 100),
    maxBackoffMs: options.maxBackoffMs ?? seconds('AGENT_STATUS_MAX_BACKOFF') ?? 30_000,
    log: options.log ?? ((message) => console.warn(`[agent-status] ${message}`)),
  };
}
