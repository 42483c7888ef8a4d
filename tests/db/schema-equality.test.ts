// supabase/schemas/ is the current definition of every SQL object; supabase/migrations/ is how
// deployed databases got there. A fresh database from each must be the same database: every table,
// column, default, constraint, index, view, trigger, RLS flag, policy, grant, default privilege,
// sequence, function (its whole body, not a hash) and pg_cron job (runner/local-stack/catalog.sql).
// Each side is built in its own cluster with pg_cron in the built database, so cron jobs compare too.
// On a difference the test prints it object by object; `npm run db:diff -- <name>` writes the
// migration that closes it.
import { readdirSync, readFileSync } from 'node:fs';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, listMigrations, MIGRATIONS_DIR } from '../../runner/local-stack/migrate.ts';
import { startPostgresCluster, type PostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { applySchemaFiles, catalogLines, describeCatalogDifference, listSchemaFiles } from '../../runner/local-stack/schema-files.ts';

// The first migration written after supabase/schemas/ existed; from here on a changed function is a
// plain `create or replace` generated from its schema file, never a patch of its stored source.
const FIRST_DECLARATIVE_VERSION = '20261205000000';

describe('supabase/schemas/ and supabase/migrations/', () => {
  const clusters: PostgresCluster[] = [];
  const connections: Sql[] = [];
  let fromMigrations: string[];
  let fromSchemas: string[];

  async function build(apply: (sql: Sql) => Promise<unknown>): Promise<string[]> {
    const cluster = await startPostgresCluster({ requirePgCron: true });
    clusters.push(cluster);
    const sql = postgres(cluster.url, { max: 1, onnotice: () => {} });
    connections.push(sql);
    await apply(sql);
    return catalogLines(sql);
  }

  beforeAll(async () => {
    [fromMigrations, fromSchemas] = await Promise.all([build((sql) => applyMigrations(sql)), build(applySchemaFiles)]);
  });
  afterAll(async () => {
    await Promise.all(connections.map((sql) => sql.end()));
    await Promise.all(clusters.map((cluster) => cluster.stop()));
  });

  it('make the same database, object for object', () => {
    const difference = describeCatalogDifference(fromMigrations, fromSchemas);
    expect(difference, 'run `npm run db:diff -- <name>` to generate the missing migration').toBe('');
  });

  it('are compared on what matters: whole function bodies, policies, grants and the cron jobs', () => {
    const kinds = new Set(fromSchemas.map((line) => line.slice(0, line.indexOf(' '))));
    for (const kind of ['relation', 'column', 'constraint', 'index', 'view', 'trigger', 'policy', 'function', 'sequence', 'cron_jobs']) {
      expect(kinds, kind).toContain(kind);
    }
    const applyEvent = fromSchemas.find((line) => line.includes('"name": "agent_private.apply_event"'));
    expect(JSON.parse(applyEvent!.slice('function '.length)).body).toContain('update public.agent_status');
    const cron = fromSchemas.find((line) => line.startsWith('cron_jobs '))!;
    expect(cron).toContain('agent-status-sweep');
  });

  it('tell a drifted function body apart and show the lines that differ', () => {
    const drifted = fromSchemas.map((line) =>
      line.includes('"name": "agent_private.is_service"') ? line.replace("= 'service_role'", "= 'drifted'") : line,
    );
    const difference = describeCatalogDifference(fromMigrations, drifted);
    expect(difference).toContain('differs: function agent_private.is_service');
    expect(difference).toMatch(/^ {4}- .*= 'service_role'$/m);
    expect(difference).toMatch(/^ {4}\+ .*= 'drifted'$/m);
  });
});

describe('supabase/schemas/', () => {
  // `create` statements at the start of a line (bodies and DO blocks are indented), keyed by object
  function definitions(): string[] {
    const keys: string[] = [];
    for (const file of listSchemaFiles()) {
      const text = readFileSync(file, 'utf8');
      const pattern =
        /^create\s+(?:or\s+replace\s+)?(function|view|table|domain|(?:unique\s+)?index|trigger|policy|schema(?:\s+if\s+not\s+exists)?)\s+([\w."]+)(?:\s+on\s+([\w."]+))?/gim;
      for (const m of text.matchAll(pattern)) {
        const kind = m[1]
          .replace(/^unique\s+/i, '')
          .replace(/\s+if\s+not\s+exists/i, '')
          .toLowerCase();
        const on = kind === 'policy' || kind === 'trigger' ? ` on ${m[3]}` : '';
        keys.push(`${kind} ${m[2].replaceAll('"', '').toLowerCase()}${on}`);
      }
    }
    return keys;
  }

  it('define every object once', () => {
    const keys = definitions();
    expect(keys.length).toBeGreaterThan(150);
    const twice = keys.filter((key, i) => keys.indexOf(key) !== i);
    expect(twice).toEqual([]);
  });

  it('are the only place a migration since them takes its function text from', () => {
    const patching = listMigrations()
      .filter((m) => m.version >= FIRST_DECLARATIVE_VERSION)
      .filter((m) => /pg_get_functiondef|replace\s*\(\s*definition/i.test(readFileSync(m.file, 'utf8')))
      .map((m) => `${m.version}_${m.name}.sql`);
    expect(patching).toEqual([]);
    expect(readdirSync(MIGRATIONS_DIR).length).toBeGreaterThan(0);
  });
});
