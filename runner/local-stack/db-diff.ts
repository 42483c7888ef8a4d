// npm run db:diff -- <name> [--version <YYYYMMDDHHMMSS>]
//
// Generates the migration for a change made in supabase/schemas/: builds one database from
// supabase/migrations/ and one from supabase/schemas/ (each in its own throwaway PostgreSQL cluster
// with pg_cron, so cron jobs compare too), asks pg-delta for the statements that turn the first into
// the second, writes them as supabase/migrations/<version>_<name>.sql, applies that file to the first
// database and compares the two catalogs again. Whatever pg-delta did not cover (it is an alpha; it
// knows nothing of pg_cron jobs, for one) is printed, to be written into the new file by hand; then
// run this again with the same name to check (it compares without generating when the file exists).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import postgres, { type Sql } from 'postgres';
import { REPO_ROOT } from '../paths.ts';
import { applyMigrations, listMigrations, MIGRATIONS_DIR } from './migrate.ts';
import { startPostgresCluster, type PostgresCluster } from './postgres-cluster.ts';
import { applySchemaFiles, catalogLines, describeCatalogDifference } from './schema-files.ts';

const USAGE = 'usage: npm run db:diff -- <name> [--version <YYYYMMDDHHMMSS>]   (name: snake_case, what the change does)';

function fail(message: string): never {
  console.error(`db:diff: ${message}`);
  process.exit(1);
}

function utcVersion(date = new Date()): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { version: { type: 'string' } }, allowPositionals: true });
  const name = positionals[0];
  if (!name || !/^[a-z][a-z0-9_]*$/.test(name)) fail(`say what the migration does, in snake_case.\n${USAGE}`);
  const existing = listMigrations();
  const last = existing.at(-1)?.version ?? '0';
  const same = existing.find((m) => m.name === name);
  const version = same?.version ?? values.version ?? utcVersion();
  if (!/^\d{14}$/.test(version)) fail(`--version must be 14 digits (YYYYMMDDHHMMSS), got ${version}.\n${USAGE}`);
  if (!same && version <= last) fail(`version ${version} is not after the last migration (${last}); pass a later --version.`);
  const file = join(MIGRATIONS_DIR, `${version}_${name}.sql`);

  const clusters: PostgresCluster[] = [];
  const connections: Sql[] = [];
  const open = async () => {
    const cluster = await startPostgresCluster({ requirePgCron: true });
    clusters.push(cluster);
    const sql = postgres(cluster.url, { max: 1, onnotice: () => {} });
    connections.push(sql);
    return { cluster, sql };
  };
  try {
    console.log('building a database from supabase/migrations/ and one from supabase/schemas/ ...');
    const [fromMigrations, fromSchemas] = await Promise.all([open(), open()]);
    // the file being checked is left out of the first build: it is applied after the comparison
    const migrationsDir = mkdtempSync(join(tmpdir(), 'agent-status-migrations-'));
    try {
      for (const entry of readdirSync(MIGRATIONS_DIR)) {
        if (entry !== `${version}_${name}.sql`) writeFileSync(join(migrationsDir, entry), readFileSync(join(MIGRATIONS_DIR, entry)));
      }
      await applyMigrations(fromMigrations.sql, { dir: migrationsDir });
      // the migrator's bookkeeping is not part of the schema; pg-delta would plan to drop it
      await fromMigrations.sql`drop schema supabase_migrations cascade`;
    } finally {
      rmSync(migrationsDir, { recursive: true, force: true });
    }
    await applySchemaFiles(fromSchemas.sql);
    const desired = await catalogLines(fromSchemas.sql);
    if (!existsSync(file)) {
      const before = await catalogLines(fromMigrations.sql);
      if (describeCatalogDifference(before, desired) === '') {
        console.log('supabase/schemas/ and supabase/migrations/ already make the same database: nothing to generate.');
        return;
      }
      console.log('asking pg-delta for the difference ...');
      writeFileSync(file, generate(fromMigrations.cluster.url, fromSchemas.cluster.url, name));
      console.log(`wrote ${file.slice(REPO_ROOT.length + 1)}`);
    } else {
      console.log(`checking the existing ${file.slice(REPO_ROOT.length + 1)} ...`);
    }
    try {
      await fromMigrations.sql.begin((tx) => tx.unsafe(readFileSync(file, 'utf8')));
    } catch (error) {
      fail(`the migration does not apply: ${(error as Error).message}\nEdit ${file} and run this again.`);
    }
    const left = describeCatalogDifference(await catalogLines(fromMigrations.sql), desired, {
      left: 'migrations',
      right: 'schemas',
    });
    if (left !== '') {
      fail(`after the migration the databases still differ; write these by hand into ${file}, then run this again:\n${left}`);
    }
    console.log('the migrations, with the new file, make exactly the database supabase/schemas/ makes.');
  } finally {
    await Promise.all(connections.map((sql) => sql.end()));
    await Promise.all(clusters.map((cluster) => cluster.stop()));
  }
}

function generate(sourceUrl: string, desiredUrl: string, name: string): string {
  const work = mkdtempSync(join(tmpdir(), 'agent-status-pgdelta-'));
  try {
    const pgdelta = join(REPO_ROOT, 'node_modules', '.bin', 'pgdelta');
    if (!existsSync(pgdelta)) fail('pg-delta is missing: run npm install (it is a dev dependency).');
    const run = (args: string[]) => execFileSync(pgdelta, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    run(['plan', '--source', sourceUrl, '--desired', desiredUrl, '--out', join(work, 'plan.json')]);
    run(['render', '--plan', join(work, 'plan.json'), '--out', join(work, 'migration.sql')]);
    const rendered = readdirSync(work).filter((f) => f.endsWith('.sql'));
    if (rendered.length !== 1) fail(`pg-delta rendered ${rendered.length} files (${rendered.join(', ')}); expected one.`);
    const body = readFileSync(join(work, rendered[0]), 'utf8');
    return `-- ${name.replaceAll('_', ' ')}: generated by npm run db:diff from supabase/schemas/ (pg-delta).\n\n${body.trim()}\n`;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error) => fail((error as Error).stack ?? String(error)));
