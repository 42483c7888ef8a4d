// The migrations as the real Supabase CLI applies them (`supabase db push --db-url`, no Docker
// needed), and the two migrators agreeing on what has been applied.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { describe, expect, it, inject, afterAll } from 'vitest';
import postgres from 'postgres';
import { applyMigrations, listMigrations } from '../../runner/local-stack/migrate.ts';
import { createToken } from '../helpers/agents.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const supabaseBin = join(root, 'node_modules', '.bin', 'supabase');

describe('the Supabase CLI', () => {
  const config = inject('postgres');
  const admin = postgres(config.adminUrl, { max: 1, onnotice: () => {} });
  const databases: string[] = [];

  async function emptyDatabase(name: string) {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.unsafe(`create database ${name}`);
    databases.push(name);
    return `postgres://postgres@127.0.0.1:${config.port}/${name}`;
  }
  // this cluster speaks no TLS; the CLI tries it first unless told not to
  const push = (url: string) =>
    run(supabaseBin, ['db', 'push', '--db-url', `${url}?sslmode=disable`, '--yes'], { cwd: root, timeout: 120_000 });

  afterAll(async () => {
    for (const name of databases) await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  });

  it('supabase db push applies every migration to an empty PostgreSQL, and the result works', async () => {
    const url = await emptyDatabase('cli_push');
    const { stdout, stderr } = await push(url);
    expect(stdout + stderr).toMatch(/Finished supabase db push/);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql`select version from supabase_migrations.schema_migrations order by version`;
      expect(rows.map((r) => r.version)).toEqual(listMigrations().map((m) => m.version));
      const token = await createToken(sql, 'agent', { agent: 'pushed' });
      const [{ agent_heartbeat: row }] = await sql`select public.agent_heartbeat(${token}, 'pushed', 'running', 90) as agent_heartbeat`;
      expect(row).toMatch(/running/);
      // and our own migrator sees nothing left to do
      const result = await applyMigrations(sql);
      expect(result.applied).toEqual([]);
    } finally {
      await sql.end();
    }
  });

  it('after our migrator, supabase db push finds the database up to date', async () => {
    const url = await emptyDatabase('cli_ours');
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await applyMigrations(sql);
    } finally {
      await sql.end();
    }
    const { stdout, stderr } = await push(url);
    expect(stdout + stderr).toMatch(/Remote database is up to date/);
  });
});
