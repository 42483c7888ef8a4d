import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

function listenable(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

// The lowest port the kernel hands out as the local port of outgoing connections (Linux).
function ephemeralLow(): number | undefined {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Taken below the kernel's ephemeral range where
 * it is known: a port from that range can be taken, before the server meant for it binds it, by any
 * outgoing connection (tests open many), which fails that server with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  if (low && low > 11_000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
      try {
        return await listenable(port);
      } catch {
        // in use: try another
      }
    }
  }
  return listenable(0);
}
