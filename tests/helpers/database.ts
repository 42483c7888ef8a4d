// A fresh database per test file, cloned from the migrated template the global setup made.
import { randomUUID } from 'node:crypto';
import postgres, { type Sql } from 'postgres';
import { inject, beforeAll, afterAll } from 'vitest';

export interface TestDatabase {
  name: string;
  url: string;
  /** superuser connection (trusted, like a migration or the service role over SQL) */
  sql: Sql;
}

async function createDatabase(admin: Sql, name: string, template: string) {
  // Cloning refuses while another session is connected to the template; that only happens for an
  // instant when several files clone at once, so retry briefly.
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.unsafe(`create database "${name}" template "${template}"`);
      return;
    } catch (error) {
      if (attempt >= 50 || !/being accessed by other users/.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Registers beforeAll/afterAll hooks that create and drop this file's own database. */
export function useTestDatabase(): TestDatabase {
  const config = inject('postgres');
  const db = {} as TestDatabase;
  let admin: Sql;
  beforeAll(async () => {
    admin = postgres(config.adminUrl, { max: 1, onnotice: () => {} });
    db.name = `test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    await createDatabase(admin, db.name, config.template);
    db.url = `postgres://postgres@127.0.0.1:${config.port}/${db.name}`;
    db.sql = postgres(db.url, { max: 20, onnotice: () => {} });
  });
  afterAll(async () => {
    await db.sql?.end({ timeout: 5 });
    await admin.unsafe(`drop database if exists "${db.name}" with (force)`);
    await admin.end();
  });
  return db;
}

export type Role = 'anon' | 'authenticated' | 'service_role';

/**
 * Runs fn in a transaction as PostgREST would for a request: SET LOCAL ROLE plus the JWT claims and the
 * role's own settings (statement_timeout as on Supabase: runner/local-stack/platform-roles.ts).
 * The transaction is rolled back, so a test can try writes without leaving them behind.
 */
export async function asRole<T>(sql: Sql, role: Role, claims: Record<string, unknown>, fn: (tx: Sql) => PromiseLike<T>): Promise<T> {
  let result: T;
  const rollback = new Error('rollback');
  try {
    await sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify({ role, ...claims })}, true)`;
      await tx`
        select set_config(split_part(entry, '=', 1), substr(entry, strpos(entry, '=') + 1), true)
        from pg_db_role_setting s cross join unnest(s.setconfig) entry
        where s.setrole = ${role}::regrole and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))`;
      await tx.unsafe(`set local role ${role}`);
      result = await fn(tx as unknown as Sql);
      throw rollback;
    });
  } catch (error) {
    if (error !== rollback) throw error;
  }
  return result!;
}
