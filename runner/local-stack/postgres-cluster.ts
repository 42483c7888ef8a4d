// A private PostgreSQL cluster started from the system's binaries (Debian: postgresql-15 and
// postgresql-15-cron), for the test harness and `npm start -- --db postgres`. It lives in its own
// folder, listens on 127.0.0.1 only, and runs pg_cron in the `postgres` database.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, chownSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { freePort } from './ports.ts';

const INSTALL_HINT = 'Install PostgreSQL 15 and pg_cron: apt-get update && apt-get install -y postgresql-15 postgresql-15-cron';

export interface PostgresBinaries {
  bindir: string;
  hasPgCron: boolean;
}

// Finds initdb and postgres, preferring version 15 (what Supabase's pg_cron 1.4 here is built for).
export function findPostgresBinaries(): PostgresBinaries {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const version = versions.includes('15') ? '15' : versions.find((v) => existsSync(join(root, v, 'bin', 'postgres')));
  if (!version || !existsSync(join(root, version, 'bin', 'initdb'))) {
    throw new Error(`PostgreSQL server binaries not found under ${root}. ${INSTALL_HINT}`);
  }
  return {
    bindir: join(root, version, 'bin'),
    hasPgCron: existsSync(join(root, version, 'lib', 'pg_cron.so')),
  };
}

export interface PostgresCluster {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  dataDir: string;
  hasPgCron: boolean;
  process: ChildProcess;
  urlFor(database: string): string;
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /** Keep data here across runs; a temporary folder (removed on stop) when absent. */
  dataDir?: string;
  port?: number;
  /** Fail when pg_cron is missing instead of running without it. */
  requirePgCron?: boolean;
  log?: (line: string) => void;
}

// Postgres refuses to run as root; as root we hand the folder to the `postgres` system user.
function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name]).toString().trim());
      const gid = Number(execFileSync('id', ['-g', name]).toString().trim());
      return { uid, gid };
    } catch {
      // try the next user
    }
  }
  throw new Error('running as root and no unprivileged user (postgres or nobody) exists to run PostgreSQL as');
}

export async function startPostgresCluster(options: StartClusterOptions = {}): Promise<PostgresCluster> {
  const { bindir, hasPgCron } = findPostgresBinaries();
  if (options.requirePgCron && !hasPgCron) {
    throw new Error(`pg_cron is not installed for this PostgreSQL. ${INSTALL_HINT}`);
  }
  const user = unprivilegedUser();
  const temporary = !options.dataDir;
  const base = options.dataDir ?? mkdtempSync(join(tmpdir(), 'agent-status-pg-'));
  mkdirSync(base, { recursive: true });
  const dataDir = join(base, 'data');
  const socketDir = join(base, 'socket');
  mkdirSync(socketDir, { recursive: true });
  if (user) {
    chownSync(base, user.uid, user.gid);
    chownSync(socketDir, user.uid, user.gid);
  }
  const asUser = user ? { uid: user.uid, gid: user.gid } : {};

  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    options.log?.(`initialising a PostgreSQL cluster in ${dataDir}`);
    execFileSync(join(bindir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale'], {
      ...asUser,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // Settings for a throwaway, local-only cluster: durability off (tests, dev), pg_cron in `postgres`
    // running jobs in background workers so it needs no password or TCP login.
    appendFileSync(
      join(dataDir, 'postgresql.conf'),
      [
        '',
        "listen_addresses = '127.0.0.1'",
        'max_connections = 300',
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        'max_worker_processes = 32',
        hasPgCron ? "shared_preload_libraries = 'pg_cron'" : '',
        hasPgCron ? "cron.database_name = 'postgres'" : '',
        hasPgCron ? 'cron.use_background_workers = on' : '',
        hasPgCron ? 'cron.max_running_jobs = 8' : '',
        '',
      ].join('\n'),
    );
  }

  const port = options.port ?? (await freePort());
  const child = spawn(join(bindir, 'postgres'), ['-D', dataDir, '-p', String(port), '-k', socketDir], {
    ...asUser,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  let exited: string | undefined;
  child.on('exit', (code, signal) => {
    exited = `PostgreSQL exited (${signal ?? `code ${code}`})`;
  });

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`${exited} while starting: ${stderr.trim().split('\n').slice(-5).join('\n')}`);
    const probe = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
    try {
      await probe`select 1`;
      await probe.end();
      break;
    } catch (error) {
      await probe.end({ timeout: 0 });
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`PostgreSQL did not accept connections within 30 s: ${(error as Error).message}\n${stderr}`);
      }
      await sleep(100);
    }
  }
  options.log?.(`PostgreSQL ${hasPgCron ? 'with pg_cron ' : ''}ready on 127.0.0.1:${port}`);

  return {
    url,
    port,
    dataDir,
    hasPgCron,
    process: child,
    urlFor: (database) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT'); // fast shutdown: roll back open transactions, exit
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await done;
        clearTimeout(timer);
      }
      if (temporary) rmSync(base, { recursive: true, force: true });
    },
  };
}
