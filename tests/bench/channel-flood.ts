// The neighbours bench's flooding agent, in a process of its own so its event loop does not delay the
// measured agent's requests: FLOOD_CONNECTIONS closed loops of heartbeats over the runner's channel
// with one agent's secret, as fast as the answers come, until it is killed.
import { Agent, request } from 'node:http';

const socketPath = process.env.FLOOD_SOCKET!;
const connections = Number(process.env.FLOOD_CONNECTIONS ?? 200);
const agent = new Agent({ keepAlive: true, maxSockets: connections });
const body = JSON.stringify({ agent_name: process.env.FLOOD_AGENT, health: 1 });
const headers = {
  host: new URL(process.env.FLOOD_URL!).host,
  'content-type': 'application/json',
  'content-length': String(Buffer.byteLength(body)),
  authorization: `Bearer ${process.env.FLOOD_TOKEN}`,
};

function heartbeat(): Promise<void> {
  return new Promise((resolve) => {
    const call = request({ socketPath, agent, path: '/functions/v1/heartbeat', method: 'POST', headers }, (response) => {
      response.resume();
      response.on('end', resolve);
      response.on('error', () => resolve());
    });
    call.on('error', () => setTimeout(resolve, 10));
    call.end(body);
  });
}

await Promise.all(
  Array.from({ length: connections }, async () => {
    for (;;) await heartbeat();
  }),
);
