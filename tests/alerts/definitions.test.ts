// shared/alerts.ts mirrors the alert definitions of the database; these checks fail when either side
// changes alone.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { ALERT_FLIPS, CHANNEL_KINDS, DELIVERY_STATUSES, NOTICE_KINDS } from '../../shared/alerts.ts';

const db = useTestDatabase();

/** The quoted values of the check constraint on table.column. */
async function allowed(table: string, column: string): Promise<string[]> {
  const rows = await db.sql`
    select pg_get_constraintdef(c.oid) as def from pg_constraint c
    where c.conrelid = ${`public.${table}`}::regclass and c.contype = 'c' and pg_get_constraintdef(c.oid) ~ ${`\\m${column}\\M`}`;
  const def = rows
    .map((r) => r.def as string)
    .find((d) => d.startsWith(`CHECK ((${column} = ANY`) || d.startsWith(`CHECK ((${column} <@`))!;
  return [...def.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]).sort();
}

describe('alert definitions', () => {
  it('channel kinds, flips, notice kinds and delivery statuses match the database', async () => {
    expect(await allowed('alert_channels', 'kind')).toEqual([...CHANNEL_KINDS].sort());
    expect(await allowed('alert_channels', 'flips')).toEqual([...ALERT_FLIPS].sort());
    expect(await allowed('alert_deliveries', 'kind')).toEqual([...NOTICE_KINDS].sort());
    expect(await allowed('alert_deliveries', 'status')).toEqual([...DELIVERY_STATUSES].sort());
  });
});
