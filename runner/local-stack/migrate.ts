// Applies supabase/migrations/*.sql that a database has not seen yet, and records each one the way
// the Supabase CLI does (supabase_migrations.schema_migrations), so a database migrated here and one
// migrated with `supabase db push` look the same to both tools.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { MIGRATIONS_DIR } from '../paths.ts';

export { MIGRATIONS_DIR };

export interface Migration {
  version: string;
  name: string;
  file: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .map((file) => /^(\d+)_(.+)\.sql$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: m[1], name: m[2], file: join(dir, m[0]) }))
    .sort((a, b) => a.version.localeCompare(b.version));
}

export async function applyMigrations(
  sql: Sql,
  options: { dir?: string; log?: (line: string) => void } = {},
): Promise<{ applied: string[]; alreadyApplied: string[] }> {
  const migrations = listMigrations(options.dir);
  return sql.begin(async (tx) => {
    // Two stacks (or a stack and a test) migrating one database wait for each other here.
    await tx`select pg_advisory_xact_lock(hashtext('agent_status_migrations'))`;
    await tx.unsafe(`
      create schema if not exists supabase_migrations;
      create table if not exists supabase_migrations.schema_migrations (
        version text not null primary key, statements text[], name text)`);
    const done = new Set((await tx`select version from supabase_migrations.schema_migrations`).map((r) => r.version as string));
    const applied: string[] = [];
    const alreadyApplied: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) {
        alreadyApplied.push(migration.version);
        continue;
      }
      const text = readFileSync(migration.file, 'utf8');
      try {
        await tx.unsafe(text);
      } catch (error) {
        const e = error as Error & { position?: string };
        throw new Error(`migration ${migration.version}_${migration.name}.sql failed: ${e.message}`, { cause: error });
      }
      await tx`insert into supabase_migrations.schema_migrations (version, name, statements)
               values (${migration.version}, ${migration.name}, ${[text]})`;
      options.log?.(`applied migration ${migration.version}_${migration.name}`);
      applied.push(migration.version);
    }
    return { applied, alreadyApplied };
  });
}
