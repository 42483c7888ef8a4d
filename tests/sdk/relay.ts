// A real HTTP relay in front of the local stack that records the path of every request it passes
// on, so SDK tests can count what an SDK really sends.
import { createServer, request as httpRequest } from 'node:http';

export interface Relay {
  url: string;
  /** function names of the requests relayed so far ("heartbeat", "report") */
  sent: string[];
  close(): Promise<void>;
}

/** port 0: any free port; a given port lets a test bring the "service" up where an SDK already points. */
export async function startRelay(targetUrl: string, port = 0): Promise<Relay> {
  const target = new URL(targetUrl);
  const sent: string[] = [];
  const server = createServer((request, response) => {
    sent.push(request.url!.replace('/functions/v1/', ''));
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    sent,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
