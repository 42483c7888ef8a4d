// Embedded PostgreSQL: PGlite (WASM, in this process) persisted in a folder, served on the wire
// protocol by pglite-socket so PostgREST, the Deno functions and the runner connect to it like to any
// PostgreSQL. pglite-socket queues the clients' messages onto the one PGlite backend, so clients must
// not rely on per-connection state: no named prepared statements (postgres.js: prepare: false).
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

// pglite-socket keeps one client's messages together only while PGlite is inside a transaction. An
// extended-protocol query (Parse, Bind, Describe, Execute, ... up to Sync) outside a transaction is
// several messages too, and another client's Parse between them corrupts both ("bind message supplies
// 0 parameters"). Reporting such a half-sent query as an open transaction makes the queue wait for
// the rest of it from the same client.
const EXTENDED_UNTIL_SYNC = new Set(['P', 'B', 'D', 'E', 'C', 'H']);

// LISTEN on PGlite: its one backend sends a NotificationResponse to whichever client's query is
// running when a notifying transaction commits, not to the connection that said LISTEN. So the
// stack's own listener (the alert dispatcher's wake) never heard the outbox's pg_notify, and notices
// left only on the 5 s timer (0.1-4.9 s after the flip, against 17-25 ms on PostgreSQL). The stack
// reads the answers here instead: a NotificationResponse on a channel it listens to is handed to its
// handlers and left out of the client's answer (a client that did not LISTEN must not get one).
const NOTIFICATION = 0x41; // 'A'

class NotificationTap {
  readonly handlers = new Map<string, Set<() => void>>();

  /** Wraps one call's onRawData: the output minus the notifications the stack listens to. */
  filter(onRawData: (data: Uint8Array) => void): { onRawData: (data: Uint8Array) => void; end(): void } {
    // bytes of a message begun in an earlier chunk still to pass on, and a header cut in two
    let passing = 0;
    let carry = new Uint8Array(0);
    const filtered = (chunk: Uint8Array) => {
      const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      carry = new Uint8Array(0);
      const kept: Uint8Array[] = [];
      let at = Math.min(passing, data.length);
      passing -= at;
      if (at) kept.push(data.subarray(0, at));
      while (at < data.length) {
        if (data.length - at < 5) {
          carry = data.slice(at);
          break;
        }
        const end = at + 1 + Buffer.from(data.buffer, data.byteOffset + at + 1, 4).readInt32BE(0);
        if (end > data.length) {
          passing = end - data.length;
          kept.push(data.subarray(at));
          break;
        }
        if (!(data[at] === NOTIFICATION && this.notify(data.subarray(at + 9, end)))) kept.push(data.subarray(at, end));
        at = end;
      }
      const out = kept.length === 1 ? kept[0] : Buffer.concat(kept);
      if (out.length) onRawData(out);
    };
    return { onRawData: filtered, end: () => carry.length && onRawData(carry) };
  }

  // channel\0payload\0 after the sending backend's pid; true when the stack listens to the channel
  private notify(body: Uint8Array): boolean {
    const channel = Buffer.from(body.subarray(0, body.indexOf(0))).toString('utf8');
    const handlers = this.handlers.get(channel);
    if (!handlers?.size) return false;
    for (const handler of handlers) queueMicrotask(handler);
    return true;
  }
}

function keepExtendedQueriesTogether(db: PGlite, tap: NotificationTap): PGlite {
  let midQuery = false;
  return new Proxy(db, {
    get(target, property) {
      if (property === 'isInTransaction') return () => midQuery || target.isInTransaction();
      if (property === 'execProtocolRawStream') {
        return async (message: Uint8Array, options: Parameters<PGlite['execProtocolRawStream']>[1]) => {
          midQuery = EXTENDED_UNTIL_SYNC.has(String.fromCharCode(message[0]));
          if (!options?.onRawData || tap.handlers.size === 0) return target.execProtocolRawStream(message, options);
          const output = tap.filter(options.onRawData);
          await target.execProtocolRawStream(message, { ...options, onRawData: output.onRawData });
          output.end();
        };
      }
      if (property === 'exec') {
        // pglite-socket rolls back with exec() when a client leaves mid-transaction.
        return (...args: Parameters<PGlite['exec']>) => {
          midQuery = false;
          return target.exec(...args);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export interface PgliteServer {
  url: string;
  /** Calls onNotify for each NOTIFY on the channel, whichever client's transaction sent it. */
  listen(channel: string, onNotify: () => void): Promise<{ unlisten(): Promise<void> }>;
  stop(): Promise<void>;
}

export async function startPglite(options: { dataDir: string; port: number }): Promise<PgliteServer> {
  mkdirSync(options.dataDir, { recursive: true });
  let db: PGlite;
  try {
    db = await PGlite.create({ dataDir: options.dataDir, extensions: { pgcrypto } });
  } catch (error) {
    // PGlite says "Aborted()" or names a block: the folder is damaged (two starts that wrote it at
    // once did this), and every later start fails the same way until it is removed.
    throw new Error(
      `the embedded database in ${options.dataDir} cannot be opened (${(error as Error).message || String(error)}): the folder ` +
        `is damaged. Delete it to start from an empty database (rm -rf ${options.dataDir}), or move it aside to keep it.`,
    );
  }
  const tap = new NotificationTap();
  const server = new PGLiteSocketServer({
    db: keepExtendedQueriesTogether(db, tap),
    host: '127.0.0.1',
    port: options.port,
    maxConnections: 100,
  });
  try {
    await server.start();
  } catch (error) {
    await db.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(
        `port ${options.port} on 127.0.0.1 is already in use, so the embedded database cannot listen there. Stop what ` +
          `uses it, or choose another port with --db-port.`,
      );
    }
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${options.port}/postgres`,
    async listen(channel, onNotify) {
      const handlers = tap.handlers.get(channel) ?? new Set();
      tap.handlers.set(channel, handlers.add(onNotify));
      // the backend itself listens; the tap takes what it is sent (outside runExclusive, exec waits its turn)
      await db.exec(`listen "${channel.replaceAll('"', '""')}"`);
      return {
        async unlisten() {
          handlers.delete(onNotify);
        },
      };
    },
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
