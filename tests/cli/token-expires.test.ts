// `agent-status token create --expires`: the lifetimes people write, as the Postgres interval sent.
import { describe, expect, it } from 'vitest';
import { expiresIn } from '../../runner/cli/commands/token.ts';

describe('--expires', () => {
  it('takes every unit by its short and long name', () => {
    const cases: [string, string][] = [
      ['90d', '90 days'],
      ['12h', '12 hours'],
      ['30m', '30 minutes'],
      ['45s', '45 seconds'],
      ['2w', '2 weeks'],
      ['6mo', '6 months'],
      ['1y', '1 years'],
      ['90 days', '90 days'],
      ['1 Year', '1 years'],
      ['15min', '15 minutes'],
    ];
    for (const [text, interval] of cases) expect(expiresIn(text), text).toBe(interval);
  });

  it('refuses what is not a lifetime, naming the units', () => {
    for (const text of ['soon', '0d', '90', 'd', '5 fortnights', '-1d']) {
      expect(() => expiresIn(text), text).toThrow(/--expires must be a lifetime like 90d/);
    }
  });
});
