// The agents' way to the database under a runner: a loopback HTTP server speaking the same
// /functions/v1/heartbeat and /functions/v1/report as the edge functions, so the SDKs and
// `agent-status run` work unchanged with the AGENT_STATUS_URL and AGENT_STATUS_TOKEN the runner gives
// them. Each agent gets its own random secret, good for its own name only, instead of the runner's
// token (with which any agent could claim and fake the host's commands, un-manage every agent, or
// register new names). The runner forwards through PostgREST with its own token, so supervised
// agents cost no edge function invocations at all.
//
// Loopback with a per-agent secret rather than a Unix socket: fetch (TypeScript SDK) and urllib
// (Python SDK) take an http:// URL, not a socket path. Another local user can reach the port but
// holds no secret; only SHA-256 hashes of the secrets are kept (in memory and in the state file, so
// agents adopted after a runner restart keep speaking).
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentState } from '../../shared/api/agent.ts';
import { ERROR_STATUS, type ErrorBody, type ErrorCode, SQLSTATE_ERROR } from '../../shared/api/errors.ts';
import { HEARTBEAT_MAX_BYTES, HeartbeatRequest } from '../../shared/api/heartbeat.ts';
import { describeIssues } from '../../shared/api/parse.ts';
import { parseReportRequest, REPORT_MAX_BYTES, type Report } from '../../shared/api/report.ts';
import { AGENT_REPORT_EVENTS } from '../../shared/status.ts';
import { RunnerCallError } from './api.ts';

/** What the channel needs of the database: the agent's heartbeat or report, sent with the runner's token. */
export interface Forwarder {
  heartbeat(heartbeat: HeartbeatRequest): Promise<Record<string, unknown>>;
  report(report: Report): Promise<Record<string, unknown>>;
}

class Refusal extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

export class AgentChannel {
  /** SHA-256 of each live secret -> the agent it speaks for. */
  private readonly secrets = new Map<string, string>();
  /** Kept: the server forgets its address once closed, and the state file still records it. */
  port = 0;

  private constructor(
    private readonly server: Server,
    private readonly forward: Forwarder,
  ) {}

  /** Listens on 127.0.0.1: on `port` when it is free (the one adopted agents know), else on any free port. */
  static async listen(forward: Forwarder, port = 0, log: (line: string) => void = () => {}): Promise<AgentChannel> {
    const server = createServer();
    const channel = new AgentChannel(server, forward);
    server.on('request', (request, response) => void channel.handle(request, response));
    const bind = (wanted: number) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(wanted, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
    try {
      await bind(port);
    } catch (error) {
      if (port === 0) throw error;
      log(`agent channel: port ${port} is taken (${(error as Error).message}); agents adopted from before cannot report until restarted`);
      await bind(0);
    }
    channel.port = (server.address() as AddressInfo).port;
    return channel;
  }

  /** The AGENT_STATUS_URL of supervised agents. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A new secret for the agent; its previous one (a process now replaced) stops working. Returns the secret and its hash. */
  issue(agent: string): { secret: string; hash: string } {
    this.revoke(agent);
    const secret = `asl_${randomBytes(32).toString('base64url')}`;
    this.secrets.set(hash(secret), agent);
    return { secret, hash: hash(secret) };
  }

  /** Accepts again the secret of an agent adopted after a runner restart (its hash from the state file). */
  restore(agent: string, secretHash: string): void {
    this.revoke(agent);
    this.secrets.set(secretHash, agent);
  }

  revoke(agent: string): void {
    for (const [key, name] of this.secrets) if (name === agent) this.secrets.delete(key);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    try {
      const endpoint = /^\/functions\/v1\/(heartbeat|report)\/?$/.exec(new URL(request.url ?? '/', 'http://x').pathname)?.[1];
      if (!endpoint)
        throw new Refusal('not_found', `no route ${request.method} ${request.url}`, 'POST to /functions/v1/heartbeat or /report.');
      if (request.method !== 'POST') throw new Refusal('method_not_allowed', `${request.method} is not supported here`);
      const agent = this.agentOf(request.headers.authorization);
      const body = await readJson(request, endpoint === 'heartbeat' ? HEARTBEAT_MAX_BYTES : REPORT_MAX_BYTES);
      if (endpoint === 'heartbeat') {
        const parsed = HeartbeatRequest.safeParse(body);
        if (!parsed.success) throw new Refusal('invalid_request', describeIssues(parsed.error));
        this.mustBe(agent, parsed.data.agent_name);
        return answer(response, 200, { agent: agentState(await this.forward.heartbeat(parsed.data)) });
      }
      const parsed = parseReportRequest(body);
      if (!parsed.success) throw new Refusal('invalid_request', describeIssues(parsed.error));
      for (const report of parsed.reports) {
        this.mustBe(agent, report.agent_name);
        // the runner's token may report exits and crashes; an agent speaking through it may not
        if (!(AGENT_REPORT_EVENTS as readonly string[]).includes(report.event))
          throw new Refusal('invalid_request', `${report.event} is reported by the runner that supervises the process`);
      }
      const agents: AgentState[] = [];
      for (const report of parsed.reports) agents.push(agentState(await this.forward.report(report)));
      return answer(response, 200, parsed.batch ? { agents } : { agent: agents[0] });
    } catch (error) {
      const refusal = asRefusal(error);
      const body: ErrorBody = { error: { code: refusal.code, message: refusal.message, ...(refusal.hint ? { hint: refusal.hint } : {}) } };
      answer(response, ERROR_STATUS[refusal.code], body);
    }
  }

  private agentOf(authorization: string | undefined): string {
    const secret = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    const agent = secret ? this.secrets.get(hash(secret)) : undefined;
    if (!agent) throw refused('this agent');
    return agent;
  }

  private mustBe(agent: string, named: string): void {
    if (named !== agent) throw refused(`agent ${JSON.stringify(named)}`);
  }
}

// The same words as the database's refusal, so an agent cannot tell a wrong name from a wrong secret.
function refused(what: string): Refusal {
  return new Refusal(
    'unauthorized',
    `token is missing, unknown, revoked, or not allowed to speak for ${what}`,
    'Under a runner, use the AGENT_STATUS_TOKEN and AGENT_NAME the runner gave this process.',
  );
}

function asRefusal(error: unknown): Refusal {
  if (error instanceof Refusal) return error;
  if (error instanceof RunnerCallError && !error.retryable) {
    const code = SQLSTATE_ERROR[error.code] ?? (/^2[23]/.test(error.code) ? 'invalid_request' : undefined);
    if (code) return new Refusal(code, error.reason, error.hint);
  }
  return new Refusal('unavailable', `the runner could not reach the status database: ${(error as Error).message}`, 'Retry with backoff.');
}

async function readJson(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new Refusal('payload_too_large', `the request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new Refusal('invalid_json', text.trim() === '' ? 'the request body is empty' : 'the request body is not valid JSON');
  }
}

// agent_heartbeat and agent_report answer the whole row; the API answers its AgentState part.
function agentState(row: Record<string, unknown>): AgentState {
  return Object.fromEntries(Object.keys(AgentState.shape).map((key) => [key, row[key] ?? null])) as AgentState;
}

function answer(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
