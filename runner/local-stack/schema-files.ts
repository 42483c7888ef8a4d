// supabase/schemas/ (the current definition of every SQL object) and the catalog that compares a
// database built from them with one built from supabase/migrations/: the equality test and
// `npm run db:diff` both use these.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { SCHEMAS_DIR } from '../paths.ts';

export { SCHEMAS_DIR };

/** The schema files in the order they apply: file-name order, as Supabase's declarative schemas. */
export function listSchemaFiles(dir = SCHEMAS_DIR): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => join(dir, file));
}

/** Builds the schema in an empty database from the schema files, in one transaction. */
export async function applySchemaFiles(sql: Sql, dir = SCHEMAS_DIR): Promise<void> {
  await sql.begin(async (tx) => {
    for (const file of listSchemaFiles(dir)) {
      try {
        await tx.unsafe(readFileSync(file, 'utf8'));
      } catch (error) {
        throw new Error(`schema file ${file} failed: ${(error as Error).message}`, { cause: error });
      }
    }
  });
}

const CATALOG_SQL = join(import.meta.dirname, 'catalog.sql');

/**
 * One sorted line per object of a database (catalog.sql). `bodies: 'md5'` reduces function bodies to
 * their md5 and length, the form tests/db/fixtures/catalog-before-split.txt was dumped in.
 */
export async function catalogLines(sql: Sql, options: { bodies?: 'full' | 'md5' } = {}): Promise<string[]> {
  const query = readFileSync(CATALOG_SQL, 'utf8').replace(/;\s*$/, '');
  const wrapped =
    options.bodies === 'md5'
      ? `select line from (
           select case when line like 'function %'
                       then 'function ' || ((substr(line, 10)::jsonb - 'body')
                            || jsonb_build_object('body_md5', md5(substr(line, 10)::jsonb ->> 'body'),
                                                  'body_length', length(substr(line, 10)::jsonb ->> 'body')))::text
                       else line end as line
           from (${query}) catalog) reduced
         order by line collate "C"`
      : query;
  const rows = await sql.unsafe(wrapped);
  return rows.map((row) => row.line as string);
}

/** The name of what a catalog line describes, so two catalogs can be compared object by object. */
function objectKey(line: string): string {
  const space = line.indexOf(' ');
  const kind = line.slice(0, space);
  try {
    const fields = JSON.parse(line.slice(space + 1)) as Record<string, unknown>;
    const name = fields.name ?? fields.object ?? fields.publication;
    const parts = [
      kind,
      fields.relation,
      name,
      fields.identity_args,
      fields.position,
      fields.table,
      fields.role,
      fields.schema,
      fields.type,
    ];
    return parts.filter((part) => part !== undefined && part !== null).join(' ');
  } catch {
    return line;
  }
}

/**
 * What differs between two catalogs, readable: each object only on one side, and for an object on
 * both sides the fields that differ (a function body as the lines that differ). Empty when equal.
 */
export function describeCatalogDifference(
  left: string[],
  right: string[],
  labels: { left: string; right: string } = { left: 'migrations', right: 'schemas' },
): string {
  const index = (lines: string[]) => new Map(lines.map((line) => [objectKey(line), line]));
  const a = index(left);
  const b = index(right);
  const out: string[] = [];
  for (const [key, line] of a) {
    const other = b.get(key);
    if (other === undefined) out.push(`only in ${labels.left}: ${line}`);
    else if (other !== line) out.push(describeChange(key, line, other, labels));
  }
  for (const [key, line] of b) if (!a.has(key)) out.push(`only in ${labels.right}: ${line}`);
  return out.join('\n');
}

function describeChange(key: string, left: string, right: string, labels: { left: string; right: string }): string {
  const parse = (line: string) => JSON.parse(line.slice(line.indexOf(' ') + 1)) as Record<string, unknown>;
  let a: Record<string, unknown>;
  let b: Record<string, unknown>;
  try {
    a = parse(left);
    b = parse(right);
  } catch {
    return `differs: ${key}\n  ${labels.left}: ${left}\n  ${labels.right}: ${right}`;
  }
  const out = [`differs: ${key}`];
  for (const field of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[field];
    const y = b[field];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    if (typeof x === 'string' && typeof y === 'string' && (x.includes('\n') || y.includes('\n'))) {
      out.push(`  ${field}:`, ...lineDiff(x.split('\n'), y.split('\n'), labels).map((l) => `    ${l}`));
    } else {
      out.push(`  ${field}: ${labels.left} ${JSON.stringify(x)}, ${labels.right} ${JSON.stringify(y)}`);
    }
  }
  return out.join('\n');
}

/** A plain longest-common-subsequence line diff, with `-` for the left side and `+` for the right. */
function lineDiff(a: string[], b: string[], labels: { left: string; right: string }): string[] {
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [`(- ${labels.left}, + ${labels.right})`];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      i++;
      j++;
    } else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push(`+ ${b[j++]}`);
    } else {
      out.push(`- ${a[i++]}`);
    }
  }
  return out;
}
