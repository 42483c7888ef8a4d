// The grants hold on a database that has Supabase's default privileges: there every new table,
// function and sequence in public is granted to anon and authenticated as it is created, so an object
// the grants file forgets is open. The per-file databases are plain PostgreSQL (no such defaults), so
// this file migrates its own database with them in place, as `supabase db push` meets a project.
import { randomUUID } from 'node:crypto';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyMigrations } from '../../runner/local-stack/migrate.ts';

describe("migrated under Supabase's default privileges", () => {
  const config = inject('postgres');
  const name = `defaults_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  let admin: Sql;
  let sql: Sql;

  beforeAll(async () => {
    admin = postgres(config.adminUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database "${name}"`);
    sql = postgres(`postgres://postgres@127.0.0.1:${config.port}/${name}`, { max: 2, onnotice: () => {} });
    // what a Supabase project's postgres role has (supabase/postgres migrations: "grant all on
    // sequences to anon, authenticated, service_role" by default in public)
    await sql`alter default privileges in schema public grant all on sequences to anon, authenticated, service_role`;
    await applyMigrations(sql);
  }, 120_000);

  afterAll(async () => {
    await sql?.end({ timeout: 5 });
    await admin?.unsafe(`drop database if exists "${name}" with (force)`);
    await admin?.end();
  });

  it('anon and authenticated may not use, read or set any sequence in public (burn or rewind ids)', async () => {
    const sequences =
      await sql`select c.oid::regclass::text as name from pg_class c where c.relkind = 'S' and c.relnamespace = 'public'::regnamespace`;
    expect(sequences.length).toBeGreaterThan(0);
    const open = await sql`
      select c.oid::regclass::text as sequence, r.role, p.privilege
      from pg_class c, unnest(array['anon', 'authenticated']) r(role), unnest(array['usage', 'update', 'select']) p(privilege)
      where c.relkind = 'S' and c.relnamespace = 'public'::regnamespace and has_sequence_privilege(r.role, c.oid, p.privilege)
      order by 1, 2, 3`;
    expect(open).toEqual([]);
  });
});
