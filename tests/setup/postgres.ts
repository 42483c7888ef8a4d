// Global setup: one private PostgreSQL 15 cluster with pg_cron for the whole run, and a template
// database holding the migrated schema. Each test file clones the template (tests/helpers/database.ts),
// so files never share state and a clone costs milliseconds instead of a migration run.
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { startPostgresCluster, type PostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { applyMigrations } from '../../runner/local-stack/migrate.ts';
import { applyPlatformRoleSettings } from '../../runner/local-stack/platform-roles.ts';

export const TEMPLATE_DATABASE = 'agent_status_template';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: { adminUrl: string; port: number; template: string; hasPgCron: boolean };
  }
}

let cluster: PostgresCluster | undefined;

export async function setup(project: TestProject) {
  // CI must fail loudly when PostgreSQL or pg_cron is missing, never skip.
  cluster = await startPostgresCluster({ requirePgCron: true });
  const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const template = postgres(cluster.urlFor(TEMPLATE_DATABASE), { max: 1, onnotice: () => {} });
  try {
    await applyMigrations(template);
    // the API roles' timeouts as on Supabase, for every database of the cluster
    await applyPlatformRoleSettings(template);
  } finally {
    await template.end();
  }
  project.provide('postgres', {
    adminUrl: cluster.url,
    port: cluster.port,
    template: TEMPLATE_DATABASE,
    hasPgCron: cluster.hasPgCron,
  });
}

export async function teardown() {
  await cluster?.stop();
}
