// A small HTTP server on 127.0.0.1 standing in for a channel's endpoint (Slack, a webhook, the
// Telegram Bot API...): it records every request and answers as the test tells it to, per path.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  // whatever the channel sent, for the tests to look into
  json: ReturnType<typeof JSON.parse>;
}

/** How to answer a request: a status (and body), or 'hang' to never answer. */
export type Answer = { status: number; body?: string } | 'hang';

export interface Receiver {
  url: string;
  requests: Received[];
  /** answers for a path, used in order; the last one repeats. Default: 200 "ok". */
  answer(path: string, ...answers: Answer[]): void;
  on(path: string): Received[];
}

/** Registers beforeAll/afterAll hooks that start and stop one receiver. */
export function useReceiver(): Receiver {
  let server: Server;
  const answers = new Map<string, Answer[]>();
  const hanging = new Set<() => void>();
  const receiver = {
    requests: [] as Received[],
    answer(path: string, ...list: Answer[]) {
      answers.set(path, list);
    },
    on(path: string) {
      return receiver.requests.filter((request) => request.path === path);
    },
  } as Receiver;

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: ReturnType<typeof JSON.parse>;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const path = request.url ?? '/';
        receiver.requests.push({ path, headers: request.headers, body, json });
        const list = answers.get(path) ?? [];
        const answer = list.length > 1 ? list.shift()! : (list[0] ?? { status: 200, body: 'ok' });
        if (answer === 'hang') {
          // never answers; closed when the receiver stops
          hanging.add(() => response.destroy());
          return;
        }
        response.writeHead(answer.status, { 'content-type': 'text/plain' });
        response.end(answer.body ?? '');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const close of hanging) close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  return receiver;
}
