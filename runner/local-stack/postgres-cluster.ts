// A private PostgreSQL cluster started from the system's binaries (Debian: postgresql-15 and
// postgresql-15-cron), for the test harness and `npm start -- --db postgres`. It lives in its own
// folder, listens on 127.0.0.1 only, and runs pg_cron in the `postgres` database.
// It never outlives whoever started it: stop() stops the server serving its folder (also one that
// `pg_ctl restart` put in place of ours), and on Linux the kernel tells the server to shut down when
// the starting process dies. A server that exits on its own is started again with backoff.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, chownSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { freePort } from './ports.ts';
import { RESTART_BACKOFF, SETPRIV, type ExitHandler } from './children.ts';

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
  /** the server exited on its own; it is started again after restartInMs */
  onExit?: ExitHandler;
  /** the server takes connections again after a restart (clients may want a nudge) */
  onBack?: () => void;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // a stale pid file may name a process id that something else has now
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch {
    return process.platform !== 'linux';
  }
}

/** The server serving dataDir according to its postmaster.pid, if one runs. */
export function runningPostmaster(dataDir: string): { pid: number; port: number } | undefined {
  const file = join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, 'utf8').split('\n');
  const pid = Number(lines[0]);
  return pid && isAlive(pid) ? { pid, port: Number(lines[3]) } : undefined;
}

/** The command that stops the server of dataDir, as the user it runs as. */
export function stopCommand(dataDir: string): string {
  const pgCtl = join(findPostgresBinaries().bindir, 'pg_ctl');
  return `${process.getuid?.() === 0 ? 'runuser -u postgres -- ' : ''}${pgCtl} stop -D ${dataDir} -m fast`;
}

/** Refuses to start over a server left running on the folder (by an earlier stack killed with -9, or pg_ctl). */
export function assertNoLeftoverServer(baseDir: string): void {
  const dataDir = join(baseDir, 'data');
  const left = runningPostmaster(dataDir);
  if (left) {
    throw new Error(
      `a PostgreSQL server left over from an earlier run still serves ${dataDir} (pid ${left.pid}, port ${left.port}). Stop it with:\n  ${stopCommand(dataDir)}`,
    );
  }
}

/** Why the server does not take connections, or undefined when it does. */
async function refusal(url: string): Promise<string | undefined> {
  const probe = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
  try {
    await probe`select 1`;
    await probe.end();
    return undefined;
  } catch (error) {
    await probe.end({ timeout: 0 });
    return (error as Error).message;
  }
}

async function stopServer(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGINT'); // fast shutdown: roll back open transactions, exit
  } catch {
    return;
  }
  const deadline = Date.now() + 10_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await sleep(50);
  }
}

// Postgres (and PgBouncer) refuse to run as root; as root we hand the folder to the `postgres` system user.
export function unprivilegedUser(): { uid: number; gid: number } | undefined {
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

  assertNoLeftoverServer(base);
  const port = options.port ?? (await freePort());
  let stderr = '';
  let exited: string | undefined;
  let stopping = false;
  let failures = 0;
  let adoptedWatch: NodeJS.Timeout | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let child: ChildProcess;
  const spawnServer = () => {
    const [command, args] = [join(bindir, 'postgres'), ['-D', dataDir, '-p', String(port), '-k', socketDir]];
    // On Linux the kernel sends the server SIGINT (fast shutdown) when this process dies, however it dies.
    child = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'INT', '--', command, ...args], { ...asUser, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(command, args, { ...asUser, stdio: ['ignore', 'ignore', 'pipe'] });
    const startedAt = Date.now();
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-8000);
    });
    child.once('exit', (code, signal) => {
      exited = `PostgreSQL exited (${signal ?? `code ${code}`})`;
      if (stopping || !ready) return;
      failures = Date.now() - startedAt >= RESTART_BACKOFF.stableMs ? 1 : failures + 1;
      void gone(
        code === 0 ? 'was shut down from outside the stack' : `exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`})`,
        code === 0,
      );
    });
  };
  const announceWhenBack = async () => {
    for (const deadline = Date.now() + 60_000; !stopping && Date.now() < deadline; await sleep(100)) {
      if ((await refusal(url)) === undefined) {
        options.log?.('PostgreSQL takes connections again');
        options.onBack?.();
        return;
      }
    }
  };
  // The server went away without being asked. A clean exit is a requested shutdown: after
  // `pg_ctl restart` another server serves the folder within moments, which is then watched and
  // stopped with the stack. Otherwise (a crash, or no replacement) the stack starts it again.
  const gone = async (why: string, clean: boolean) => {
    for (const deadline = Date.now() + (clean ? 5_000 : 0); Date.now() < deadline && !stopping; await sleep(100)) {
      const other = runningPostmaster(dataDir);
      if (other) {
        options.log?.(
          `PostgreSQL ${why}; it was started again outside the stack (pid ${other.pid}, pg_ctl restart?), which now runs as part of this stack`,
        );
        adoptedWatch = setInterval(() => {
          if (stopping || isAlive(other.pid)) return;
          clearInterval(adoptedWatch);
          adoptedWatch = undefined;
          void gone(`(pid ${other.pid}) exited`, false);
        }, 1_000);
        void announceWhenBack();
        return;
      }
    }
    if (stopping) return;
    const delay = Math.min(RESTART_BACKOFF.firstMs * 2 ** (failures - 1), RESTART_BACKOFF.maxMs);
    options.onExit?.('PostgreSQL', `${why}; its last output:\n  ${stderr.trim().split('\n').slice(-3).join('\n  ')}`, delay);
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      if (stopping) return;
      spawnServer();
      void announceWhenBack();
    }, delay);
  };
  let ready = false;
  spawnServer();

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`${exited} while starting: ${stderr.trim().split('\n').slice(-5).join('\n')}`);
    const refused = await refusal(url);
    if (refused === undefined) break;
    if (Date.now() > deadline) {
      child!.kill('SIGKILL');
      throw new Error(`PostgreSQL did not accept connections within 30 s: ${refused}\n${stderr}`);
    }
    await sleep(100);
  }
  options.log?.(`PostgreSQL ${hasPgCron ? 'with pg_cron ' : ''}ready on 127.0.0.1:${port}`);
  ready = true;

  return {
    url,
    port,
    dataDir,
    hasPgCron,
    urlFor: (database) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      clearInterval(adoptedWatch);
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT'); // fast shutdown: roll back open transactions, exit
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await done;
        clearTimeout(timer);
      }
      // one that replaced ours (pg_ctl restart) goes too
      const other = runningPostmaster(dataDir);
      if (other) await stopServer(other.pid);
      if (temporary) rmSync(base, { recursive: true, force: true });
    },
  };
}
