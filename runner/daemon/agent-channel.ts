// The agents' way to the database under a runner: an HTTP server speaking the same
// /functions/v1/heartbeat and /functions/v1/report as the edge functions, so the SDKs and
// `agent-status run` work unchanged with the AGENT_STATUS_* variables the runner gives them. Each
// agent gets its own random secret, good for its own name only, instead of the runner's token (with
// which any agent could claim and fake the host's commands, un-manage every agent, or register new
// names). The runner forwards through PostgREST with its own token, so supervised agents cost no edge
// function invocations at all.
//
// Proof of life waits for the runner's next heartbeat: a plain heartbeat (no new status or health, no
// `at`, the same declared interval) of an agent the database has answered for before is kept (the newest one
// per agent, its activity carried forward) and answered at once with the agent's state as the
// database last gave it; the runner sends every kept heartbeat with its own, in one call per
// interval (takeHeartbeats). Anything that may change what the dashboard shows goes at once, as do
// reports, each after the agent's kept heartbeat so the database sees them in the agent's order (a
// report leaves with whatever the runner's other agents have queued: runner/daemon/reporter.ts).
//
// A Unix socket in a folder only the runner's user may enter (0700), not a loopback port: any local
// user could bind a port the runner had given up (while it restarted), collect the agents' secrets and
// report for them, and the agents stayed mute talking to the squatter. The socket's path lives in the
// state folder, so it is the same after a restart; agents adopted from another state folder (a
// takeover) are served on their own path too. The SDKs, Node and Deno (node:http) and Python
// (http.client) alike, speak HTTP over it; curl does with --unix-socket.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { AgentState } from '../../shared/api/agent.ts';
import { ERROR_STATUS, type ErrorBody, type ErrorCode, SQLSTATE_ERROR } from '../../shared/api/errors.ts';
import { HEARTBEAT_MAX_BYTES, HeartbeatRequest } from '../../shared/api/heartbeat.ts';
import { describeIssues } from '../../shared/api/parse.ts';
import { parseReportRequest, REPORT_MAX_BYTES, type Report } from '../../shared/api/report.ts';
import { AGENT_REPORT_EVENTS } from '../../shared/status.ts';
import type { Account } from './accounts.ts';
import { RunnerCallError } from './api.ts';

/** What the channel needs of the database: the agent's heartbeat or report, sent with the runner's token; each answers the agent's state. */
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

/** AGENT_STATUS_URL under a runner: the Host of requests that travel over AGENT_STATUS_SOCKET. */
export const CHANNEL_URL = 'http://localhost';

// Requests one agent may have on their way to the database at once; more are refused (429) at once.
// An agent flooding its channel on 200 connections held every forwarding connection, moving another
// agent's heartbeat from 20-40 ms to 1-7 s. An SDK sends one request at a time.
const AGENT_IN_FLIGHT = 2;

// sockaddr_un holds 108 bytes with the terminating zero
const MAX_SOCKET_PATH = 107;

/** The newest heartbeats kept per agent, with how the database answered each (in order). */
export interface KeptHeartbeats {
  heartbeats: HeartbeatRequest[];
  /** Hands the database's answers back (agent_heartbeat_batch's {agent} | {error} items, in order). */
  settle(answers: { agent?: Record<string, unknown>; error?: { message: string } }[]): void;
  /** The call failed: keeps them for the next one, unless a newer heartbeat of the agent came meanwhile. */
  putBack(): void;
}

export class AgentChannel {
  /** Plain heartbeats waiting for the runner's next call, newest per agent. */
  private readonly kept = new Map<string, HeartbeatRequest>();
  /** What the database last answered for each agent, given to a heartbeat that is kept. */
  private readonly lastState = new Map<string, AgentState>();
  /** The interval each agent last declared: a change goes at once (it moves the agent's deadline). */
  private readonly declared = new Map<string, number | null | undefined>();
  /** Agents whose kept heartbeats are on their way now, and when that call ends. */
  private sending?: { agents: Set<string>; done: Promise<void> };
  /** SHA-256 of each live secret -> the agent it speaks for. */
  private readonly secrets = new Map<string, string>();
  /** Requests each agent has on their way to the database. */
  private readonly inFlight = new Map<string, number>();
  /** Socket path -> its server: this runner's own, then any adopted agents brought from elsewhere. */
  private readonly servers = new Map<string, Server>();
  /** Sockets of agents that run as their own users (user: under a root runner): uid -> path. */
  private readonly userSockets = new Map<number, string>();
  /** Socket path -> the agent user whose folder holds it. */
  private readonly owners = new Map<string, Account>();

  private constructor(
    private readonly forward: Forwarder,
    private readonly own: string,
  ) {}

  /** Listens on socketPath, in a folder made (or made again) 0700 for the runner's user alone. */
  static async listen(forward: Forwarder, socketPath: string): Promise<AgentChannel> {
    const channel = new AgentChannel(forward, socketPath);
    await channel.serve(socketPath, { create: true });
    return channel;
  }

  /** The socket of this runner's own agents (AGENT_STATUS_SOCKET). */
  get socket(): string {
    return this.own;
  }

  /**
   * The socket an agent reaches: this runner's own, or, for an agent that runs as its own user, one
   * served for that user (serveUser) in a folder only that user (and root) may enter. An agent never
   * gets a way into the runner's 0700 folders, and agents of two users never share a socket.
   */
  socketFor(account: Account | undefined): string {
    if (!account) return this.own;
    const socket = this.userSockets.get(account.uid);
    if (!socket) throw new Error(`no agent channel is served for user ${account.user}; serveUser() it first`);
    return socket;
  }

  /**
   * Serves a socket for agents running as account: <state_dir>/agent-channels/<uid>/agents.sock, the
   * folder that user's (0700), its parent the runner's and only traversable by others (0711), as is
   * the state folder: every file in them keeps its own private mode (state.json 0600, channel/ 0700).
   */
  async serveUser(account: Account): Promise<void> {
    if (this.userSockets.has(account.uid)) return;
    const stateDir = dirname(dirname(this.own));
    const base = join(stateDir, 'agent-channels');
    for (let folder = dirname(stateDir); ; folder = dirname(folder)) {
      const stat = lstatSync(folder);
      const enters = stat.uid === account.uid || (stat.mode & 0o001) !== 0 || (stat.gid === account.gid && (stat.mode & 0o010) !== 0);
      if (!enters)
        throw new Error(
          `agents running as ${account.user} cannot reach the runner's channel: ${folder} (mode ${(stat.mode & 0o777).toString(8)}) does not let them through; ` +
            `chmod o+x ${folder}, or set runner.state_dir to a folder under a path they may pass (e.g. /var/lib/agent-status)`,
        );
      if (folder === dirname(folder)) break;
    }
    mkdirSync(base, { recursive: true, mode: 0o711 });
    for (const folder of [stateDir, base]) {
      const stat = lstatSync(folder);
      if ((stat.mode & 0o011) !== 0o011) chmodSync(folder, (stat.mode & 0o700) | 0o011);
    }
    const socketPath = join(base, String(account.uid), 'agents.sock');
    this.owners.set(socketPath, account);
    await this.serve(socketPath, { create: true });
    this.userSockets.set(account.uid, socketPath);
  }

  /** Whether agents speaking on socketPath are heard. */
  serves(socketPath: string): boolean {
    return this.servers.has(socketPath);
  }

  /**
   * Serves agents adopted from another runner on the socket they know, if its folder is this user's
   * alone (then nobody else can have bound it either). Throws saying why not.
   */
  async alsoServe(socketPath: string): Promise<void> {
    if (!this.serves(socketPath)) await this.serve(socketPath, { create: false });
  }

  /**
   * Serves again any socket whose file is gone: a runner that handed the host over removes its
   * socket as it stops, even when this runner serves that path by then (after a takeover). Answers
   * why a socket could not be served again (it is then given up).
   */
  async heal(): Promise<string[]> {
    const failures: string[] = [];
    for (const [socketPath, server] of this.servers) {
      if (existsSync(socketPath)) continue;
      // closed first: closing a socket server removes the file at its path, even a new one
      await closeServer(server);
      this.servers.delete(socketPath);
      try {
        await this.serve(socketPath, { create: socketPath === this.own || this.owners.has(socketPath) });
      } catch (error) {
        failures.push(`the agent channel ${socketPath} was removed and cannot be served again: ${(error as Error).message}`);
      }
    }
    return failures;
  }

  private async serve(socketPath: string, options: { create: boolean }): Promise<void> {
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH)
      throw new Error(`the agent channel's socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes; choose a shorter state_dir`);
    const owner = this.owners.get(socketPath);
    privateFolder(dirname(socketPath), options.create, owner);
    // a socket left by a runner that is gone; nobody else can have made it in a private folder
    try {
      if (lstatSync(socketPath).isSocket()) unlinkSync(socketPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const server = createServer();
    server.on('request', (request, response) => void this.handle(request, response));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(socketPath, 0o600);
    if (owner) chownSync(socketPath, owner.uid, owner.gid);
    this.servers.set(socketPath, server);
  }

  /** A new secret for the agent; its previous one (a process now replaced) stops working. */
  issue(agent: string): string {
    const secret = `asl_${randomBytes(32).toString('base64url')}`;
    this.restore(agent, secret);
    return secret;
  }

  /** Accepts the agent's secret (a new one, or an adopted process's from its environment) and no other. */
  restore(agent: string, secret: string): void {
    this.revoke(agent);
    this.secrets.set(hash(secret), agent);
  }

  revoke(agent: string): void {
    for (const [key, name] of this.secrets) if (name === agent) this.secrets.delete(key);
    // a process that ended is not alive: its last proof of life must not reach the database after its exit
    this.kept.delete(agent);
    this.lastState.delete(agent);
    this.declared.delete(agent);
  }

  /** Whether heartbeats are kept for the runner's next call. */
  get keeping(): number {
    return this.kept.size;
  }

  /**
   * Takes up to `limit` kept heartbeats for the runner's call (oldest kept first). Until they are
   * settled or put back, a report of the same agent waits for them.
   */
  takeHeartbeats(limit: number): KeptHeartbeats {
    const taken = [...this.kept].slice(0, limit);
    for (const [agent] of taken) this.kept.delete(agent);
    let finish = () => {};
    const done = new Promise<void>((resolve) => (finish = resolve));
    const sending = { agents: new Set(taken.map(([agent]) => agent)), done };
    this.sending = sending;
    const end = () => {
      if (this.sending === sending) this.sending = undefined;
      finish();
    };
    return {
      heartbeats: taken.map(([, heartbeat]) => heartbeat),
      settle: (answers) => {
        taken.forEach(([agent], i) => {
          const state = answers[i]?.agent;
          if (state) this.lastState.set(agent, agentState(state));
          else {
            // refused: the agent's next heartbeat goes at once and hears why
            this.lastState.delete(agent);
            this.onRefused?.(agent, answers[i]?.error?.message ?? 'no answer');
          }
        });
        end();
      },
      putBack: () => {
        for (const [agent, heartbeat] of taken) if (!this.kept.has(agent) && this.lastState.has(agent)) this.kept.set(agent, heartbeat);
        end();
      },
    };
  }

  /** Told when the database refused a kept heartbeat (the agent itself only hears at its next one). */
  onRefused?: (agent: string, message: string) => void;

  async close(): Promise<void> {
    await Promise.all([...this.servers.values()].map(closeServer));
    this.servers.clear();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    try {
      const endpoint = /^\/functions\/v1\/(heartbeat|report)\/?$/.exec(new URL(request.url ?? '/', 'http://x').pathname)?.[1];
      if (!endpoint)
        throw new Refusal('not_found', `no route ${request.method} ${request.url}`, 'POST to /functions/v1/heartbeat or /report.');
      if (request.method !== 'POST') throw new Refusal('method_not_allowed', `${request.method} is not supported here`);
      const agent = this.agentOf(request.headers.authorization);
      const held = this.inFlight.get(agent) ?? 0;
      if (held >= AGENT_IN_FLIGHT) {
        throw new Refusal(
          'too_many_requests',
          `agent ${JSON.stringify(agent)} already has ${held} requests on their way`,
          'Send one at a time; retry with backoff.',
        );
      }
      this.inFlight.set(agent, held + 1);
      try {
        return await this.forwardRequest(request, response, endpoint, agent);
      } finally {
        const left = (this.inFlight.get(agent) ?? 1) - 1;
        if (left > 0) this.inFlight.set(agent, left);
        else this.inFlight.delete(agent);
      }
    } catch (error) {
      const refusal = asRefusal(error);
      const body: ErrorBody = { error: { code: refusal.code, message: refusal.message, ...(refusal.hint ? { hint: refusal.hint } : {}) } };
      answer(response, ERROR_STATUS[refusal.code], body);
    }
  }

  // One agent's request, read and forwarded; throws the refusal it gets.
  private async forwardRequest(request: IncomingMessage, response: ServerResponse, endpoint: string, agent: string): Promise<void> {
    const body = await readJson(request, endpoint === 'heartbeat' ? HEARTBEAT_MAX_BYTES : REPORT_MAX_BYTES);
    if (endpoint === 'heartbeat') {
      const parsed = HeartbeatRequest.safeParse(body);
      if (!parsed.success) throw new Refusal('invalid_request', describeIssues(parsed.error));
      this.mustBe(agent, parsed.data.agent_name);
      return answer(response, 200, { agent: await this.heartbeat(agent, parsed.data) });
    }
    const parsed = parseReportRequest(body);
    if (!parsed.success) throw new Refusal('invalid_request', describeIssues(parsed.error));
    for (const report of parsed.reports) {
      this.mustBe(agent, report.agent_name);
      // the runner's token may report exits and crashes; an agent speaking through it may not
      if (!(AGENT_REPORT_EVENTS as readonly string[]).includes(report.event))
        throw new Refusal('invalid_request', `${report.event} is reported by the runner that supervises the process`);
    }
    await this.sendKept(agent);
    const agents: AgentState[] = [];
    for (const report of parsed.reports) {
      agents.push(this.remember(agent, await this.forward.report(report)));
      if (report.heartbeat_interval_s != null) this.declared.set(agent, report.heartbeat_interval_s);
    }
    return answer(response, 200, parsed.batch ? { agents } : { agent: agents[0] });
  }

  // Keeps a plain heartbeat for the runner's next call, or sends it now (merged with any kept one).
  private async heartbeat(agent: string, heartbeat: HeartbeatRequest): Promise<AgentState> {
    const kept = this.kept.get(agent);
    const merged: HeartbeatRequest = {
      ...kept,
      ...Object.fromEntries(Object.entries(heartbeat).filter(([, value]) => value !== undefined && value !== null)),
      agent_name: agent,
    };
    const known = this.lastState.get(agent);
    // nothing the dashboard shows changes: no new status or health (an SDK repeats both), no `at`; a
    // health equal to one nobody reported (the row's default) is new: it makes "not reported" a figure
    const plain =
      known !== undefined &&
      (merged.status == null || merged.status === known.status) &&
      (merged.health == null || (merged.health === known.health && known.health_reported_at !== null)) &&
      merged.at == null &&
      (merged.heartbeat_interval_s ?? null) === (this.declared.get(agent) ?? null);
    if (plain) {
      this.kept.set(agent, merged);
      return known;
    }
    this.kept.delete(agent);
    if (this.sending?.agents.has(agent)) await this.sending.done;
    const state = this.remember(agent, await this.forward.heartbeat(merged));
    this.declared.set(agent, merged.heartbeat_interval_s);
    return state;
  }

  // A report goes after the agent's kept heartbeat (sent first, or still on its way in the runner's call).
  private async sendKept(agent: string): Promise<void> {
    if (this.sending?.agents.has(agent)) await this.sending.done;
    const kept = this.kept.get(agent);
    if (!kept) return;
    this.kept.delete(agent);
    this.remember(agent, await this.forward.heartbeat(kept));
  }

  private remember(agent: string, row: Record<string, unknown>): AgentState {
    const state = agentState(row);
    this.lastState.set(agent, state);
    return state;
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

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Makes sure folder is a directory of this user's (or, for an agent's own socket, of owner) that
 * nobody else may enter: created 0700 when create is set and it is missing, given to owner, and set
 * to 0700. Throws when it belongs to anybody else.
 */
function privateFolder(folder: string, create: boolean, owner?: Account): void {
  if (create) mkdirSync(folder, { recursive: true, mode: 0o700 });
  if (create && owner) {
    const made = lstatSync(folder);
    // only a folder this runner made (root's) is handed over; anything else must already be owner's
    if (made.isDirectory() && made.uid === process.getuid?.()) chownSync(folder, owner.uid, owner.gid);
  }
  const stat = lstatSync(folder);
  if (!stat.isDirectory()) throw new Error(`${folder} is not a directory`);
  const expected = owner?.uid ?? process.getuid?.();
  if (expected !== undefined && stat.uid !== expected)
    throw new Error(
      `${folder} belongs to user id ${stat.uid}, not to ${owner ? `the agent's user ${owner.user}` : "this runner's user"} (${expected})`,
    );
  if ((stat.mode & 0o077) !== 0) chmodSync(folder, 0o700);
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
