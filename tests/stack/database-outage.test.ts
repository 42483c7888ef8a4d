// The functions after the database was out of reach for seconds under load. The stack reaches this
// file's database through a TCP relay the test can cut: while it is cut, connections are refused as
// from a stopped server; then it takes connections again. On main before the guarded pool
// (shared/guarded-pool.ts), seconds of refusals made postgres.js wait longer and longer between
// connection attempts while a heartbeat batch waited on each of them; the batch was given up after
// 5 s, which wedged its connection for good, and /heartbeat answered 503 until it was restarted.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../runner/local-stack/ports.ts';
import { startStack, type Stack } from '../../runner/local-stack/stack.ts';
import { waitUntil } from '../../runner/local-stack/wait.ts';
import { createToken } from '../helpers/agents.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { heartbeatLoad, type LoadAgent } from './heartbeat-load.ts';

const db = useTestDatabase();

/** A relay from a port of its own to the database's, that can be cut and restored. */
function relay(target: { host: string; port: number }, port: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(target.port, target.host);
        for (const [socket, other] of [
          [client, upstream],
          [upstream, client],
        ]) {
          sockets.add(socket);
          socket.pipe(other);
          socket.on('error', () => other.destroy());
          socket.on('close', () => {
            sockets.delete(socket);
            other.destroy();
          });
        }
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const cut = async () => {
    const closed = new Promise((resolve) => server?.close(resolve));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  return { listen, cut };
}

let stack: Stack;
let link: ReturnType<typeof relay>;
let agents: LoadAgent[];
let crash: string | undefined;

beforeAll(async () => {
  const target = new URL(db.url);
  const port = await freePort();
  link = relay({ host: target.hostname, port: Number(target.port) }, port);
  await link.listen();
  const relayed = new URL(db.url);
  relayed.port = String(port);
  stack = await startStack({
    port: await freePort(),
    database: { kind: 'url', url: relayed.toString() },
    sweep: false,
    alerts: false,
    operator: { email: 'operator@agent-status.test', password: randomBytes(12).toString('base64url') },
    onCrash: (name, reason) => {
      crash = `${name} ${reason}`;
    },
  });
  agents = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const name = `outage-agent-${i}`;
      return { name, token: await createToken(db.sql, 'agent', { agent: name }) };
    }),
  );
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await link?.cut();
  expect(crash).toBeUndefined();
});

describe('the database out of reach for 10 s under 20 agents × 1/s', () => {
  it('every agent is answered again within 20 s of the database taking connections again', async () => {
    const traffic = heartbeatLoad(stack.url, agents, 1_000);
    let backAt = 0;
    try {
      await waitUntil('every agent answered before the outage', async () => traffic.allAnsweredSince(0), { timeoutMs: 20_000 });
      await link.cut();
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      await link.listen();
      backAt = Date.now();
      // A liveness bound, not a speed claim: a call still unanswered after 5 s replaces its pool.
      await waitUntil("every agent's heartbeat answered again", async () => traffic.allAnsweredSince(backAt), { timeoutMs: 20_000 });
    } finally {
      await traffic.stop();
    }
    const { sent, failed, lastFailureAt } = traffic.stats();
    console.log(
      `database out of reach for 10 s: ${failed} of ${sent} heartbeats failed; the last failure ${((lastFailureAt - backAt) / 1000).toFixed(1)} s after it was back`,
    );
  }, 90_000);
});
