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

function keepExtendedQueriesTogether(db: PGlite): PGlite {
  let midQuery = false;
  return new Proxy(db, {
    get(target, property) {
      if (property === 'isInTransaction') return () => midQuery || target.isInTransaction();
      if (property === 'execProtocolRawStream') {
        return async (message: Uint8Array, options: Parameters<PGlite['execProtocolRawStream']>[1]) => {
          midQuery = EXTENDED_UNTIL_SYNC.has(String.fromCharCode(message[0]));
          return target.execProtocolRawStream(message, options);
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
  const server = new PGLiteSocketServer({
    db: keepExtendedQueriesTogether(db),
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
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
