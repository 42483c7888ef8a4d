// A private PgBouncer in transaction mode in front of a test cluster: what Supabase's pooler
// (Supavisor, port 6543) is to the edge functions. Debian's `pgbouncer` package; it refuses to run as
// root, so as root it runs as the user PostgreSQL runs as. It never outlives the process that started it.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SETPRIV } from '../../runner/local-stack/children.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { unprivilegedUser } from '../../runner/local-stack/postgres-cluster.ts';

const PGBOUNCER = process.env.PGBOUNCER ?? '/usr/sbin/pgbouncer';
const PSQL = process.env.PSQL ?? '/usr/bin/psql';

export interface Pgbouncer {
  port: number;
  /** postgres://postgres@127.0.0.1:<pooler port>/<database> */
  urlFor(database: string): string;
  /** Server connections the pooler holds to PostgreSQL for a database, from its SHOW POOLS. */
  serverConnections(database: string): Promise<number>;
  stop(): Promise<void>;
}

/** Starts PgBouncer in transaction mode, at most poolSize server connections per database. */
export async function startPgbouncer(options: { postgresPort: number; poolSize: number }): Promise<Pgbouncer> {
  if (!existsSync(PGBOUNCER)) throw new Error(`PgBouncer not found at ${PGBOUNCER}. Install it: apt-get install -y pgbouncer`);
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-pgbouncer-'));
  const port = await freePort();
  const user = unprivilegedUser();
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=127.0.0.1 port=${options.postgresPort}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'admin_users = postgres',
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize}`,
      'max_client_conn = 2000',
      // Supavisor, like this, hands each transaction to any server connection
      'server_reset_query =',
      '',
    ].join('\n'),
  );
  if (user) chownSync(dir, user.uid, user.gid);
  const args = [join(dir, 'pgbouncer.ini')];
  const asUser = user ? { uid: user.uid, gid: user.gid } : {};
  const child: ChildProcess = SETPRIV
    ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', PGBOUNCER, ...args], { ...asUser, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(PGBOUNCER, args, { ...asUser, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const admin = async (command: string) =>
    (
      await promisify(execFile)(
        PSQL,
        ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'pgbouncer', '-A', '-F', '\t', '-P', 'footer=off', '-c', command],
        { timeout: 10_000 },
      )
    ).stdout;
  const stop = async () => {
    child.kill('SIGINT');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  for (const deadline = Date.now() + 10_000; ; ) {
    if (child.exitCode !== null || child.signalCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`PgBouncer exited while starting: ${stderr.trim()}`);
    }
    try {
      await admin('show version');
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`PgBouncer did not take connections within 10 s: ${(error as Error).message}\n${stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    urlFor: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async serverConnections(database) {
      // every server connection is in one of these states, open to PostgreSQL
      const [header, ...rows] = (await admin('show pools'))
        .trim()
        .split('\n')
        .map((line) => line.split('\t'));
      const states = ['sv_active', 'sv_idle', 'sv_used', 'sv_tested', 'sv_login'].map((name) => header.indexOf(name));
      return rows
        .filter((cells) => cells[header.indexOf('database')] === database)
        .reduce((sum, cells) => sum + states.reduce((n, i) => n + Number(cells[i] ?? 0), 0), 0);
    },
    stop,
  };
}
