// A proxy in front of a local stack that records every /rest/v1 request (the SQL function or table
// it names), so a test or bench sees each call a runner makes. With realtime set it also answers the
// Phoenix protocol's join and heartbeat on /realtime/v1/websocket (the local stack has no Realtime
// server), which is all a supabase-js subscription needs to read as live; hint(topic, event) then
// broadcasts on it as Realtime would. Without it, an upgrade is refused as the local gateway refuses it.
import { createServer, request as httpRequest } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import { freePort } from '../../runner/local-stack/ports.ts';

export interface CountingProxy {
  url: string;
  /** the SQL functions (or tables) requested through /rest/v1, in order */
  calls: string[];
  hint(topic: string, event: string): void;
  stop(): Promise<void>;
}

export async function countingProxy(target: string, options: { realtime?: boolean } = {}): Promise<CountingProxy> {
  const calls: string[] = [];
  const upstream = new URL(target);
  const server = createServer((incoming, outgoing) => {
    const named = /^\/rest\/v1\/(?:rpc\/)?(\w+)/.exec(incoming.url ?? '')?.[1];
    if (named) calls.push(named);
    const forwarded = httpRequest(
      { host: upstream.hostname, port: upstream.port, path: incoming.url, method: incoming.method, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  const sockets = new WebSocketServer({ noServer: true });
  const joined = new Map<WebSocket, Map<string, string | null>>();
  server.on('upgrade', (request, socket, head) => {
    if (!options.realtime) {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    sockets.handleUpgrade(request, socket, head, (ws) => {
      const topics = new Map<string, string | null>();
      joined.set(ws, topics);
      ws.on('close', () => joined.delete(ws));
      // Phoenix serializer 2.0.0: [join_ref, ref, topic, event, payload]; joins and heartbeats are answered ok
      ws.on('message', (data, binary) => {
        if (binary) return;
        const [joinRef, ref, topic, event] = JSON.parse(String(data)) as [string | null, string | null, string, string];
        if (event === 'phx_join') topics.set(topic, joinRef);
        if (event === 'phx_join' || event === 'heartbeat') {
          ws.send(JSON.stringify([joinRef, ref, topic, 'phx_reply', { status: 'ok', response: {} }]));
        }
      });
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    hint(topic, event) {
      for (const [ws, topics] of joined) {
        for (const [joinedTopic, joinRef] of topics) {
          if (joinedTopic.endsWith(topic))
            ws.send(JSON.stringify([joinRef, null, joinedTopic, 'broadcast', { type: 'broadcast', event, payload: {} }]));
        }
      }
    },
    async stop() {
      for (const client of sockets.clients) client.terminate();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
