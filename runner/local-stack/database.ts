// The database of the local stack, in the order of choice of the issue: a DATABASE_URL as given; a
// private PostgreSQL cluster with pg_cron (`--db postgres`); or embedded PGlite (the default). Then
// the same preparation for all three: migrations, the auth stand-in's schema, the authenticator login.
import postgres, { type Sql } from 'postgres';
import { startPostgresCluster } from './postgres-cluster.ts';
import type { ExitHandler } from './children.ts';
import { startPglite } from './pglite.ts';
import { applyMigrations } from './migrate.ts';
import { prepareAuthSchema } from './auth.ts';

export type DatabaseChoice =
  | { kind: 'url'; url: string }
  | { kind: 'postgres'; dataDir: string; port: number }
  | { kind: 'pglite'; dataDir: string; port: number };

export interface Database {
  kind: DatabaseChoice['kind'];
  /** superuser URL (what SUPABASE_DB_URL is to a deployed function) */
  url: string;
  /** what PostgREST logs in with */
  authenticatorUrl: string;
  /** the stack's own superuser connection */
  sql: Sql;
  /** whether pg_cron runs the sweep in this database */
  hasSweepJob: boolean;
  /** Calls onNotify for each NOTIFY on the channel (on PGlite too, where a client's LISTEN hears nothing). */
  listen(channel: string, onNotify: () => void): Promise<{ unlisten(): Promise<void> }>;
  stop(): Promise<void>;
}

/** Options for postgres.js clients of this database; PGlite serves all clients on one backend. */
export function clientOptions(kind: DatabaseChoice['kind']) {
  return { onnotice: () => {}, prepare: kind !== 'pglite' } as const;
}

async function startServer(
  choice: DatabaseChoice,
  log: (line: string) => void,
  onExit?: ExitHandler,
  onBack?: () => void,
): Promise<{ url: string; stop(): Promise<void>; listen?: Database['listen'] }> {
  if (choice.kind === 'url') return { url: choice.url, stop: async () => {} };
  if (choice.kind === 'postgres') {
    const cluster = await startPostgresCluster({ dataDir: choice.dataDir, port: choice.port, requirePgCron: true, log, onExit, onBack });
    return { url: cluster.url, stop: () => cluster.stop() };
  }
  log(`starting the embedded database (PGlite) in ${choice.dataDir}`);
  return startPglite({ dataDir: choice.dataDir, port: choice.port });
}

// PostgREST logs in as authenticator. Where the superuser has a password, authenticator gets the same
// one (as in `supabase start`); trust-authenticated clusters and PGlite need none.
async function authenticatorUrl(sql: Sql, superuserUrl: string): Promise<string> {
  const url = new URL(superuserUrl);
  url.username = 'authenticator';
  if (url.password) {
    await sql.unsafe(`alter role authenticator with login password '${decodeURIComponent(url.password).replaceAll("'", "''")}'`);
  }
  return url.toString();
}

/**
 * onExit: the database server stopped without being asked, and is started again; onBack: it takes
 * connections again (PostgreSQL cluster only).
 */
export async function startDatabase(
  choice: DatabaseChoice,
  log: (line: string) => void,
  onExit?: ExitHandler,
  onBack?: () => void,
): Promise<Database> {
  const server = await startServer(choice, log, onExit, onBack);
  const sql = postgres(server.url, { ...clientOptions(choice.kind), max: 4 });
  try {
    const { applied } = await applyMigrations(sql, { log });
    log(applied.length ? `applied ${applied.length} migration(s)` : 'database schema is up to date');
    await prepareAuthSchema(sql);
    const [{ job }] = await sql`
      select to_regclass('cron.job') is not null
         and exists (select 1 from cron.job where jobname = 'agent-status-sweep') as job`.catch(() => [{ job: false }]);
    return {
      kind: choice.kind,
      url: server.url,
      authenticatorUrl: await authenticatorUrl(sql, server.url),
      sql,
      hasSweepJob: Boolean(job),
      listen: server.listen ?? ((channel, onNotify) => sql.listen(channel, onNotify)),
      async stop() {
        await sql.end({ timeout: 5 });
        await server.stop();
      },
    };
  } catch (error) {
    await sql.end({ timeout: 1 });
    await server.stop();
    throw error;
  }
}
