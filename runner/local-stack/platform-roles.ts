// What a Supabase project sets on its API roles and vanilla PostgreSQL lacks, so the local stack and
// the tests meet the same limits as a project: requests as anon give up after 3 s, as authenticated
// after 8 s, and PostgREST's own login (authenticator) after 8 s, lock waits included. PostgREST
// applies the impersonated role's settings to each request's transaction. (The platform also preloads
// pg-safeupdate for authenticator, which refuses UPDATE and DELETE without WHERE; Debian has no package
// for it, and every such statement here sits inside SQL functions, which it does not inspect.)
import type { Sql } from 'postgres';

export const PLATFORM_ROLE_SETTINGS: Record<string, Record<string, string>> = {
  anon: { statement_timeout: '3s' },
  authenticated: { statement_timeout: '8s' },
  authenticator: { statement_timeout: '8s', lock_timeout: '8s' },
};

/**
 * Sets each platform setting a role does not have yet; one the database's owner chose (a project's
 * own database behind DATABASE_URL) is kept. Role settings are the cluster's, not one database's.
 */
export async function applyPlatformRoleSettings(sql: Sql): Promise<void> {
  for (const [role, settings] of Object.entries(PLATFORM_ROLE_SETTINGS)) {
    const [{ config }] = await sql`
      select coalesce((select setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
                       where r.rolname = ${role} and s.setdatabase = 0), '{}') as config`;
    const present = new Set((config as string[]).map((entry) => entry.slice(0, entry.indexOf('='))));
    for (const [name, value] of Object.entries(settings)) {
      if (!present.has(name)) await sql.unsafe(`alter role ${role} set ${name} = '${value}'`);
    }
  }
}
