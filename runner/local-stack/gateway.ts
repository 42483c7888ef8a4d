// One port for the whole API, routed the way Supabase's gateway routes it:
//   /rest/v1/*            -> PostgREST (requires an API key; a publishable or secret key is swapped
//                            for a role JWT, as the hosted gateway does)
//   /functions/v1/<name>* -> that function's Deno process (JWT checked unless verify_jwt = false)
//   /auth/v1/*            -> the local auth stand-in (auth.ts)
//   /config.js            -> the dashboard's configuration: this stack's URL and publishable key
//   /realtime/v1/*        -> 404 at once (no Realtime here), so clients fall back to polling quickly
//   /*                    -> the dashboard's static files
// Forwarding goes through Hono's proxy helper, which drops hop-by-hop headers (Connection,
// Keep-Alive, Transfer-Encoding, ...) both ways: a client's `Connection: close` ends the client's
// connection, not the pooled one to PostgREST or a function.
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Hono } from 'hono';
import { proxy } from 'hono/proxy';
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

function json(status: number, body: unknown): Response {
  return Response.json(body, { status });
}

function bearerToken(request: Request): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(request.headers.get('authorization') ?? '')?.[1];
}

// Supabase refuses secret keys from browsers, which it recognises by their User-Agent.
function fromBrowser(request: Request): boolean {
  return /^Mozilla\//.test(request.headers.get('user-agent') ?? '');
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
  await pipeline(Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream), response);
}

export class Gateway {
  private server: Server | undefined;

  constructor(private readonly options: GatewayOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.options.port}`;
  }

  private async forward(target: string, request: Request, headers = request.headers): Promise<Response> {
    try {
      return await proxy(target, { raw: headers === request.headers ? request : new Request(request, { headers }) });
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
      return json(502, { message: `the local service behind ${new URL(request.url).pathname} is not reachable: ${cause}` });
    }
  }

  private rest(request: Request, url: URL): Promise<Response> | Response {
    const { keys } = this.options;
    const apikey = request.headers.get('apikey') ?? url.searchParams.get('apikey');
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
    if (role === 'service_role' && apikey.startsWith('sb_secret_') && fromBrowser(request)) {
      return json(401, {
        message: 'Forbidden use of secret API key in browser',
        hint: 'Secret keys are for servers only; a browser uses the publishable key.',
      });
    }
    const headers = new Headers(request.headers);
    // An API key in Authorization (or none) becomes the role's JWT, as on Supabase; a user's session
    // token passes as it is.
    const bearer = bearerToken(request);
    if (!bearer || bearer === apikey) headers.set('authorization', `Bearer ${keys.roleToken(role)}`);
    // The key is the gateway's business: as a query parameter it would reach PostgREST as a filter on a
    // column named apikey. Other queries pass byte for byte.
    let forwarded = request.url.slice(url.origin.length + '/rest/v1'.length);
    if (url.searchParams.has('apikey')) {
      url.searchParams.delete('apikey');
      forwarded = url.pathname.slice('/rest/v1'.length) + url.search;
    }
    return this.forward(
      `http://127.0.0.1:${this.options.postgrestPort}${forwarded.startsWith('/') ? '' : '/'}${forwarded}`,
      request,
      headers,
    );
  }

  private async functions(request: Request, url: URL, name: string): Promise<Response> {
    const target = await this.options.functionTarget(name);
    if (typeof target === 'string') return json(404, { code: 'NOT_FOUND', message: target });
    if (target.verifyJwt) {
      const token = bearerToken(request);
      if (!token) return json(401, { code: 401, message: 'Missing authorization header' });
      if (!(await this.options.keys.verify(token))) return json(401, { code: 401, message: 'Invalid JWT' });
    }
    const rest = request.url.slice(url.origin.length + '/functions/v1'.length);
    return this.forward(`http://127.0.0.1:${target.port}${rest}`, request);
  }

  /** The answer for a request, or undefined for the dashboard's static files. */
  private async route(request: Request): Promise<Response | undefined> {
    const url = new URL(request.url);
    if (request.method === 'OPTIONS') {
      return new Response(null, {
        status: 204,
        headers: { ...CORS_HEADERS, 'access-control-allow-headers': request.headers.get('access-control-request-headers') ?? '*' },
      });
    }
    if (url.pathname === '/rest/v1' || url.pathname.startsWith('/rest/v1/')) return this.rest(request, url);
    const fn = /^\/functions\/v1\/([^/?]+)/.exec(url.pathname);
    if (fn) return this.functions(request, url, fn[1]);
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
        const answer = await this.route(toRequest(request));
        if (answer) await writeResponse(answer, response);
        else serveStatic(request, response);
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
    await closed;
  }
}
