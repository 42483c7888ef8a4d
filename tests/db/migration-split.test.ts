// The big API migration was split into one migration per concern (issue 10) without changing the
// schema: an empty database migrated with the split files has the same catalog, object for object,
// grant for grant and function body for function body, as one migrated with the files before the
// split. The reference, tests/db/fixtures/catalog-before-split.txt, was dumped from the commit before
// the split by tests/db/fixtures/dump-catalog.sh with the same query (runner/local-stack/catalog.sql, bodies as md5).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it, inject, beforeAll, afterAll } from 'vitest';
import postgres, { type Sql } from 'postgres';
import { catalogLines } from '../../runner/local-stack/schema-files.ts';

const root = join(import.meta.dirname, '..', '..');
const migrationsDir = join(root, 'supabase', 'migrations');
const fixtures = join(import.meta.dirname, 'fixtures');

// Migrations after this one come from later changes and are not part of the comparison.
const LAST_SPLIT_VERSION = '20261124000700';

const SPLIT_FILES = [
  '20261124000100_supabase_compat.sql',
  '20261124000200_agent_status_schema.sql',
  '20261124000300_input_checks.sql',
  '20261124000310_state_machine.sql',
  '20261124000320_identity.sql',
  '20261124000330_agent_api.sql',
  '20261124000340_runners.sql',
  '20261124000350_commands.sql',
  '20261124000360_sweep.sql',
  '20261124000370_live_view.sql',
  '20261124000400_agent_status_security.sql',
  '20261124000500_agent_status_cron.sql',
  '20261124000600_agent_heartbeat_batch.sql',
  '20261124000700_operator_reads.sql',
];

function splitFiles(): string[] {
  return readdirSync(migrationsDir)
    .filter((file) => /^\d+_.+\.sql$/.test(file) && file.split('_')[0] <= LAST_SPLIT_VERSION)
    .sort();
}

// the reference was dumped with function bodies as md5 and length
const catalog = (sql: Sql) => catalogLines(sql, { bodies: 'md5' });

describe('the migrations split by concern', () => {
  const config = inject('postgres');
  const name = `split_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = postgres(config.adminUrl, { max: 1, onnotice: () => {} });
  let sql: Sql;
  const before = readFileSync(join(fixtures, 'catalog-before-split.txt'), 'utf8').trimEnd().split('\n');

  beforeAll(async () => {
    await admin.unsafe(`create database "${name}" template template0`);
    sql = postgres(`postgres://postgres@127.0.0.1:${config.port}/${name}`, { max: 1, onnotice: () => {} });
    // in filename order, one transaction each, as `supabase db push` applies them
    for (const file of splitFiles()) {
      try {
        await sql.begin((tx) => tx.unsafe(readFileSync(join(migrationsDir, file), 'utf8')));
      } catch (error) {
        throw new Error(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
      }
    }
  });
  afterAll(async () => {
    await sql?.end();
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });

  it('are these files, numbered in order', () => {
    expect(splitFiles()).toEqual(SPLIT_FILES);
  });

  it('make exactly the schema the migrations made before the split', async () => {
    expect(await catalog(sql)).toEqual(before);
  });

  it('are compared on what matters: the reference holds the API, its grants and its bodies', () => {
    const fn = (qualified: string) => before.find((line) => line.startsWith('function ') && line.includes(`"name": "${qualified}"`));
    expect(fn('public.agent_heartbeat')).toMatch(/"acl": "[^"]*anon=X\/postgres/);
    expect(fn('public.agent_heartbeat')).toMatch(/"security_definer": true/);
    expect(fn('agent_private.apply_event')).toMatch(/"body_md5": "[0-9a-f]{32}"/);
    expect(before.filter((line) => line.startsWith('function '))).toHaveLength(46);
    expect(before.filter((line) => line.startsWith('policy '))).toHaveLength(7);
    expect(before.some((line) => line.startsWith('view ') && line.includes('public.agent_status_live'))).toBe(true);
  });

  it('would notice a dropped grant, a changed function body or a dropped function', async () => {
    await sql
      .begin(async (tx) => {
        await tx.unsafe('revoke execute on function public.whoami() from authenticated');
        await tx.unsafe(`create or replace function agent_private.is_event(p_event text) returns boolean
        language sql immutable set search_path = '' as $$ select p_event = 'started' $$`);
        await tx.unsafe('drop function public.operator_sweep_status(text)');
        const changed = await catalog(tx as unknown as Sql);
        const gone = before.filter((line) => !changed.includes(line));
        expect(gone.map((line) => /"name": "([^"]+)"/.exec(line)?.[1])).toEqual(
          expect.arrayContaining(['public.whoami', 'agent_private.is_event', 'public.operator_sweep_status']),
        );
        throw new Error('rollback');
      })
      .catch((error: Error) => {
        if (error.message !== 'rollback') throw error;
      });
    expect(await catalog(sql)).toEqual(before);
  });
});
