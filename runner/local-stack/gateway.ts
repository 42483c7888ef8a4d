// One port for the whole API, routed the way Supabase's gateway routes it:
//   /rest/v1/*            -> PostgREST (requires an API key; a publishable or secret key is swapped
//                            for a role JWT, as the hosted gateway does)
//   /functions/v1/<name>* -> that function's Deno process (JWT checked unless verify_jwt = false)
//   /auth/v1/*            -> the local auth stand-in (auth.ts)
//   /config.js            -> the dashboard's configuration: this stack's URL and publishable key
//   /realtime/v1/*        -> 404 at once (no Realtime here), so clients fall back to polling quickly
//   /*                    -> the dashboard's static files
// /rest/v1 and /functions/v1 are piped with node:http, request and answer streamed as they are over
// a keep-alive pool, with the hop-by-hop headers (Connection, Keep-Alive, Transfer-Encoding, ...)
// dropped both ways: a client's `Connection: close` ends the client's connection, not the pooled
// one to PostgREST or a function. (Through a Fetch Request, undici and a proxy helper per request,
// the gateway answered 724 requests/s against 2,593 straight to the function; npm run bench, BENCH=gateway.)
// The streams are joined with pipe(), not stream.pipeline(): a CPU profile under BENCH=gateway put
// pipeline's per-call AbortController and DOMException at ~60 of the gateway's 230 µs per request.
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request as httpRequest,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Hono } from 'hono';
import type { StackKeys } from './keys.ts';
import { serveStatic } from './static-files.ts';

export interface FunctionTarget {
  port: number;
  verifyJwt: boolean;
}

export interface GatewayOptions {
  port: number;
  postgrestPort: number;
  auth: Hono;
  keys: StackKeys;
  /** Where a function is served, or a message saying why it is not. */
  functionTarget(name: string): Promise<FunctionTarget | string>;
  /** What the dashboard needs to connect, served as its /config.js. */
  dashboardConfig: { supabaseUrl: string; supabaseAnonKey: string; realtime: boolean };
}

const REALTIME_MISSING = 'the local stack has no Realtime server: dashboards and runners use their polling path';

const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': ALLOWED_METHODS,
  'access-control-expose-headers': 'content-range, content-profile, x-supabase-api-version',
  'access-control-max-age': '3600',
};

// Headers that belong to one connection, not to the request (RFC 9110 7.6.1), plus any the
// Connection header names.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase()),
  );
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !named.has(name)) kept[name] = value;
  }
  return kept;
}

function json(status: number, body: unknown): Response {
  return Response.json(body, { status });
}

function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1];
}

// Supabase refuses secret keys from browsers, which it recognises by their User-Agent.
function fromBrowser(headers: IncomingHttpHeaders): boolean {
  return /^Mozilla\//.test(headers['user-agent'] ?? '');
}

/** The Node request as a Fetch Request, its body streamed. */
function toRequest(request: IncomingMessage): Request {
  const headers = new Headers();
  for (let i = 0; i < request.rawHeaders.length; i += 2) headers.append(request.rawHeaders[i], request.rawHeaders[i + 1]);
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
  return new Request(`http://${request.headers.host ?? '127.0.0.1'}${request.url ?? '/'}`, {
    method: request.method,
    headers,
    body: hasBody ? (Readable.toWeb(request) as ReadableStream) : undefined,
    duplex: 'half',
  } as RequestInit);
}

async function writeResponse(answer: Response, response: ServerResponse) {
  const headers: OutgoingHttpHeaders = {};
  answer.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  const cookies = answer.headers.getSetCookie();
  if (cookies.length) headers['set-cookie'] = cookies;
  headers['access-control-allow-origin'] ??= '*';
  response.writeHead(answer.status, headers);
  if (!answer.body) {
    response.end();
    return;
  }
  // A client that hung up ends only its own response. (Left to reject, pipeline's "Premature close"
  // escaped as an unhandled rejection when a 502 went to a client already gone while the stack stopped;
  // tests/stack/gateway.test.ts.)
  await pipeline(Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream), response).catch(() => response.destroy());
}

export class Gateway {
  private server: Server | undefined;
  // keep-alive connections to PostgREST and the functions, shared by every client
  private readonly pool = new Agent({ keepAlive: true });

  constructor(private readonly options: GatewayOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.options.port}`;
  }

  /** Streams the request to 127.0.0.1:port at path and the answer back; 502 when nothing answers there. */
  private pipe(port: number, path: string, request: IncomingMessage, response: ServerResponse, headers = endToEnd(request.headers)) {
    headers.host = `127.0.0.1:${port}`;
    const upstream = httpRequest({ host: '127.0.0.1', port, path, method: request.method, headers, agent: this.pool }, (answer) => {
      const out = endToEnd(answer.headers);
      out['access-control-allow-origin'] ??= '*';
      response.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
      answer.on('error', (error) => response.destroy(error));
      answer.pipe(response);
    });
    // each request's head and body leave at once, not held back for an ACK (Nagle)
    upstream.setNoDelay(true);
    upstream.on('error', (error) => {
      if (response.headersSent) {
        response.destroy(error);
        return;
      }
      const pathname = (request.url ?? '/').split('?')[0];
      void writeResponse(json(502, { message: `the local service behind ${pathname} is not reachable: ${error.message}` }), response);
    });
    // a client that hangs up abandons its request upstream too
    response.on('close', () => {
      if (!response.writableFinished) upstream.destroy();
    });
    request.on('error', () => upstream.destroy());
    request.pipe(upstream);
  }

  /** Answers a /rest/v1 request: refused here (401) or piped to PostgREST with the role's JWT. */
  private rest(request: IncomingMessage, response: ServerResponse, url: URL): Response | undefined {
    const { keys } = this.options;
    const apikey = (request.headers.apikey as string | undefined) ?? url.searchParams.get('apikey');
    if (!apikey) {
      return json(401, {
        message: 'No API key found in request',
        hint: 'Send the publishable key in the apikey header (supabase-js does this).',
      });
    }
    const role = keys.apiKeyRole(apikey);
    if (!role) {
      return json(401, {
        message: 'Invalid API key',
        hint: `Use the ${keys.style === 'new' ? 'publishable (sb_publishable_...)' : 'anon'} key printed by npm start (also in .agent-status/local.json).`,
      });
    }
    if (role === 'service_role' && apikey.startsWith('sb_secret_') && fromBrowser(request.headers)) {
      return json(401, {
        message: 'Forbidden use of secret API key in browser',
        hint: 'Secret keys are for servers only; a browser uses the publishable key.',
      });
    }
    const headers = endToEnd(request.headers);
    // An API key in Authorization (or none) becomes the role's JWT, as on Supabase; a user's session
    // token passes as it is.
    const bearer = bearerToken(request.headers);
    if (!bearer || bearer === apikey) headers.authorization = `Bearer ${keys.roleToken(role)}`;
    // The key is the gateway's business: as a query parameter it would reach PostgREST as a filter on a
    // column named apikey. Other queries pass byte for byte.
    let forwarded = (request.url ?? '/').slice('/rest/v1'.length);
    if (url.searchParams.has('apikey')) {
      url.searchParams.delete('apikey');
      forwarded = url.pathname.slice('/rest/v1'.length) + url.search;
    }
    this.pipe(this.options.postgrestPort, `${forwarded.startsWith('/') ? '' : '/'}${forwarded}`, request, response, headers);
    return undefined;
  }

  /** Answers a /functions/v1/<name> request: refused here (404, 401) or piped to the function. */
  private async functions(request: IncomingMessage, response: ServerResponse, name: string): Promise<Response | undefined> {
    const target = await this.options.functionTarget(name);
    if (typeof target === 'string') return json(404, { code: 'NOT_FOUND', message: target });
    if (target.verifyJwt) {
      const token = bearerToken(request.headers);
      if (!token) return json(401, { code: 401, message: 'Missing authorization header' });
      if (!(await this.options.keys.verify(token))) return json(401, { code: 401, message: 'Invalid JWT' });
    }
    this.pipe(target.port, (request.url ?? '/').slice('/functions/v1'.length) || '/', request, response);
    return undefined;
  }

  /** The answer for anything but the API's two piped paths, or undefined for the dashboard's static files. */
  private async route(request: Request): Promise<Response | undefined> {
    const url = new URL(request.url);
    if (request.method === 'OPTIONS') {
      return new Response(null, {
        status: 204,
        headers: { ...CORS_HEADERS, 'access-control-allow-headers': request.headers.get('access-control-request-headers') ?? '*' },
      });
    }
    if (url.pathname === '/auth/v1' || url.pathname.startsWith('/auth/v1/')) return this.options.auth.fetch(request);
    if (url.pathname.startsWith('/realtime/')) return json(404, { message: REALTIME_MISSING });
    if (url.pathname === '/config.js') {
      // In place of the dashboard's own config.js: this stack's URL and publishable key (public anyway).
      return new Response(`window.AGENT_STATUS_CONFIG = ${JSON.stringify(this.options.dashboardConfig)};\n`, {
        headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' },
      });
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return json(404, { message: `nothing at ${request.method} ${url.pathname}: the API is under /rest/v1, /functions/v1 and /auth/v1` });
    }
    return undefined;
  }

  /** The API's paths, piped (undefined once the pipe has the response) or refused; null for everything else. */
  private api(request: IncomingMessage, response: ServerResponse): Promise<Response | undefined> | Response | undefined | null {
    if (request.method === 'OPTIONS') return null;
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/rest/v1' || url.pathname.startsWith('/rest/v1/')) return this.rest(request, response, url);
    const fn = /^\/functions\/v1\/([^/?]+)/.exec(url.pathname);
    if (fn) return this.functions(request, response, fn[1]);
    return null;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer(async (request, response) => {
      // fetch's Request cannot even hold TRACE (it answered 500), and nothing here serves it. (Node's
      // parser answers TRACK 400 itself, and CONNECT never reaches this handler.)
      if (request.method === 'TRACE') {
        await writeResponse(
          new Response(JSON.stringify({ message: `${request.method} is not supported here` }), {
            status: 405,
            headers: { 'content-type': 'application/json', allow: ALLOWED_METHODS },
          }),
          response,
        );
        return;
      }
      try {
        const piped = this.api(request, response);
        const answer = piped === null ? await this.route(toRequest(request)) : await piped;
        if (answer) await writeResponse(answer, response);
        else if (piped === null) serveStatic(request, response);
      } catch (error) {
        if (response.headersSent) response.destroy(error as Error);
        else await writeResponse(json(500, { message: `local gateway error: ${(error as Error).message}` }), response);
      }
    });
    // A WebSocket upgrade (Realtime) is refused at once instead of being answered with a page, which
    // a client would only give up on after its own timeout.
    server.on('upgrade', (_request, socket) => {
      const body = JSON.stringify({ message: REALTIME_MISSING });
      socket.end(
        `HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: ` +
          `${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        reject(
          error.code === 'EADDRINUSE'
            ? new Error(
                `port ${this.options.port} on 127.0.0.1 is already in use (another npm start or supabase start?). Stop ` +
                  `it, or choose another port with --port.`,
              )
            : error,
        );
      });
      server.listen(this.options.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Closes the port and every open connection: clients see the API as down. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    this.pool.destroy();
    await closed;
  }
}
