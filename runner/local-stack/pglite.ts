// Embedded PostgreSQL: PGlite (WASM, in this process) persisted in a folder, served on the wire
// protocol by pglite-socket so PostgREST, the Deno functions and the runner connect to it like to any
// PostgreSQL. pglite-socket queues the clients' messages onto the one PGlite backend, so clients must
// not rely on per-connection state: no named prepared statements (postgres.js: prepare: false).
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface PgliteServer {
  url: string;
  stop(): Promise<void>;
}

export async function startPglite(options: { dataDir: string; port: number }): Promise<PgliteServer> {
  mkdirSync(options.dataDir, { recursive: true });
  const db = await PGlite.create({ dataDir: options.dataDir, extensions: { pgcrypto } });
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: options.port, maxConnections: 100 });
  try {
    await server.start();
  } catch (error) {
    await db.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`port ${options.port} on 127.0.0.1 is already in use, so the embedded database cannot listen there. Stop what uses it, or choose another port with --db-port.`);
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
