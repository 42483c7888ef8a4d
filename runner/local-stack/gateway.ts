// One port for the whole API, routed the way Supabase's gateway (Kong) routes it:
//   /rest/v1/*            -> PostgREST (requires an apikey, like Kong)
//   /functions/v1/<name>* -> that function's Deno process (JWT checked unless verify_jwt = false)
//   /auth/v1/*            -> the local auth stand-in (auth.ts)
//   /config.js            -> the dashboard's configuration: this stack's URL and anon key
//   /realtime/v1/*        -> 404 at once (no Realtime here), so clients fall back to polling quickly
//   /*                    -> the dashboard's static files
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
  type Server,
  type OutgoingHttpHeaders,
} from 'node:http';
import type { Hono } from 'hono';
import { verifyJwt } from './keys.ts';
import { serveStatic } from './static-files.ts';

export interface FunctionTarget {
  port: number;
  verifyJwt: boolean;
}

export interface GatewayOptions {
  port: number;
  postgrestPort: number;
  auth: Hono;
  anonKey: string;
  serviceKey: string;
  jwtSecret: string;
  /** Where a function is served, or a message saying why it is not. */
  functionTarget(name: string): Promise<FunctionTarget | string>;
  /** What the dashboard needs to connect, served as its /config.js. */
  dashboardConfig: { supabaseUrl: string; supabaseAnonKey: string };
}

const REALTIME_MISSING = 'the local stack has no Realtime server: dashboards and runners use their polling path';

const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
  'access-control-expose-headers': 'content-range, content-profile, x-supabase-api-version',
  'access-control-max-age': '3600',
};

function sendJson(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
  response.end(JSON.stringify(body));
}

function withCors(headers: OutgoingHttpHeaders | IncomingMessage['headers']): OutgoingHttpHeaders {
  return headers['access-control-allow-origin'] ? headers : { ...headers, 'access-control-allow-origin': '*' };
}

function proxy(request: IncomingMessage, response: ServerResponse, port: number, path: string, headers = request.headers) {
  const upstream = httpRequest({ host: '127.0.0.1', port, method: request.method, path, headers }, (answer) => {
    response.writeHead(answer.statusCode ?? 502, withCors(answer.headers));
    answer.pipe(response);
  });
  upstream.on('error', (error) => {
    if (response.headersSent) response.destroy(error);
    else sendJson(response, 502, { message: `the local service behind ${request.url} is not reachable: ${error.message}` });
  });
  request.pipe(upstream);
}

async function serveHono(app: Hono, request: IncomingMessage, response: ServerResponse) {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const answer = await app.fetch(
    new Request(`http://${request.headers.host ?? 'localhost'}${request.url}`, {
      method: request.method,
      headers,
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    }),
  );
  response.writeHead(answer.status, withCors(Object.fromEntries(answer.headers)));
  response.end(Buffer.from(await answer.arrayBuffer()));
}

function bearerToken(request: IncomingMessage): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1];
}

export class Gateway {
  private server: Server | undefined;

  constructor(private readonly options: GatewayOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.options.port}`;
  }

  private async route(request: IncomingMessage, response: ServerResponse) {
    const url = new URL(request.url ?? '/', 'http://local');
    if (request.method === 'OPTIONS') {
      response.writeHead(204, {
        ...CORS_HEADERS,
        'access-control-allow-headers': request.headers['access-control-request-headers'] ?? '*',
      });
      response.end();
      return;
    }
    if (url.pathname === '/rest/v1' || url.pathname.startsWith('/rest/v1/')) {
      const apikey = (request.headers.apikey as string | undefined) ?? url.searchParams.get('apikey') ?? undefined;
      if (!apikey) {
        return sendJson(response, 401, {
          message: 'No API key found in request',
          hint: 'Send the anon key in the apikey header (supabase-js does this).',
        });
      }
      if (apikey !== this.options.anonKey && apikey !== this.options.serviceKey) {
        return sendJson(response, 401, {
          message: 'Invalid API key',
          hint: 'Use the anon key printed by npm start (also in .agent-status/local.json).',
        });
      }
      const headers = { ...request.headers };
      headers.authorization ??= `Bearer ${apikey}`;
      // The key is the gateway's business (Kong hides it too): as a query parameter it would reach
      // PostgREST as a filter on a column named apikey. Other queries pass byte for byte.
      let forwarded = (request.url ?? '/').slice('/rest/v1'.length);
      if (url.searchParams.has('apikey')) {
        url.searchParams.delete('apikey');
        forwarded = url.pathname.slice('/rest/v1'.length) + url.search;
      }
      return proxy(request, response, this.options.postgrestPort, forwarded.startsWith('/') ? forwarded : `/${forwarded}`, headers);
    }
    const fn = /^\/functions\/v1\/([^/?]+)/.exec(url.pathname);
    if (fn) {
      const target = await this.options.functionTarget(fn[1]);
      if (typeof target === 'string') return sendJson(response, 404, { code: 'NOT_FOUND', message: target });
      if (target.verifyJwt) {
        const token = bearerToken(request);
        if (!token) return sendJson(response, 401, { code: 401, message: 'Missing authorization header' });
        if (!(await verifyJwt(this.options.jwtSecret, token))) return sendJson(response, 401, { code: 401, message: 'Invalid JWT' });
      }
      return proxy(request, response, target.port, (request.url ?? '/').slice('/functions/v1'.length));
    }
    if (url.pathname === '/auth/v1' || url.pathname.startsWith('/auth/v1/')) {
      return serveHono(this.options.auth, request, response);
    }
    if (url.pathname.startsWith('/realtime/')) {
      return sendJson(response, 404, { message: REALTIME_MISSING });
    }
    if (url.pathname === '/config.js') {
      // In place of the dashboard's own config.js: this stack's URL and anon key (public anyway).
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
      response.end(`window.AGENT_STATUS_CONFIG = ${JSON.stringify(this.options.dashboardConfig)};\n`);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return sendJson(response, 404, {
        message: `nothing at ${request.method} ${url.pathname}: the API is under /rest/v1, /functions/v1 and /auth/v1`,
      });
    }
    serveStatic(request, response);
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((request, response) => {
      this.route(request, response).catch((error: Error) => {
        if (response.headersSent) response.destroy(error);
        else sendJson(response, 500, { message: `local gateway error: ${error.message}` });
      });
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
