// The read-only endpoints, through the real Deno functions behind the stack's gateway: /metrics parsed
// by a real exposition-format parser (parse-prometheus-text-format) and every figure checked against
// what the database says; badges for every status, rendered by Chromium; and both keys from the
// attacker's side: good for their one reader only, and dead once revoked.
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_STATUSES } from '../../shared/status.ts';
import { BADGE_COLORS } from '../../shared/badge.ts';
import { createToken, registerRunner } from '../helpers/agents.ts';
import { useTestStack } from '../helpers/stack.ts';
import { launchChromium, REPO, screenshot } from '../web/helpers.ts';

const stack = useTestStack({ functions: true });
const HOST = 'metrics-host';
// one agent per status, and a name that needs escaping in a label and in SVG
const NAMES = { running: 'm-running', warning: 'm-warning', error: 'm-error', stopped: 'm-stopped', stale: 'm-stale' } as const;
const ODD = 'm-odd "quoted" \\ back<slash> & co';
let metricsToken: string;
let badgeKey: string;

beforeAll(async () => {
  const { sql } = stack.db;
  // a channel first, so the flips below leave alert deliveries in the outbox
  await sql`select public.alert_channel_save('ops-hook', 'webhook', 'http://127.0.0.1:9/hook', 'whsec_0123456789abcdef')`;
  await sql`select public.alert_channel_rules('ops-hook', ${sql.json({ flap_threshold: 0 })})`;
  await registerRunner(sql, HOST, [...Object.values(NAMES), ODD]);
  await registerRunner(sql, 'quiet-host', []);
  // quiet-host's runner said nothing for ten minutes: silent
  await sql`update public.runners set last_seen_at = now() - interval '10 minutes' where host = 'quiet-host'`;
  for (const [status, name] of Object.entries(NAMES)) {
    if (status === 'stopped') continue;
    const token = await createToken(sql, 'agent', { agent: name });
    const said = status === 'stale' ? 'running' : status;
    // stale: an agent that declared a 2 s interval (a 5 s deadline) and then went quiet
    await sql`select public.agent_heartbeat(${token}, ${name}, ${said}, ${status === 'warning' ? 40 : 90}, null, null,
                                             ${status === 'stale' ? 2 : null})`;
  }
  await sql`update public.agent_status set restarts_total = 3 where agent_name = ${NAMES.error}`;
  metricsToken = (await sql`select token from public.create_api_token('metrics')`)[0].token;
  badgeKey = (await sql`select token from public.create_api_token('badge', 'README badges')`)[0].token;
  // the stale agent's deadline passes
  await new Promise((resolve) => setTimeout(resolve, 5500));
}, 30_000);

const scrape = (token?: string) =>
  fetch(`${stack.url}/functions/v1/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
const badge = (path: string, key = badgeKey) => fetch(`${stack.url}/functions/v1/badge/${path}?key=${encodeURIComponent(key)}`);

type Family = { name: string; help: string; type: string; metrics: { labels?: Record<string, string>; value: string }[] };

describe('/metrics', () => {
  it('answers the text format a Prometheus parser reads, and every figure is what the database says', async () => {
    const { sql } = stack.db;
    // the database read just before and just after the scrape: a figure that moves with time (a
    // heartbeat's age, a young agent's availability) must lie between the two readings
    const read = () => sql`
      select l.*, (public.agent_availability(l.agent_name) -> 'windows' -> '24h' ->> 'up_percent')::numeric as up_percent
      from public.agent_status_live l join public.agent_status a on a.id = l.id
      where a.archived_at is null order by l.agent_name`;
    const before = await read();
    const response = await scrape(metricsToken);
    const after = await read();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    const families = new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]));
    expect([...families.keys()].sort()).toEqual([
      'agent_status_alert_deliveries',
      'agent_status_availability_24h_ratio',
      'agent_status_health',
      'agent_status_restarts_total',
      'agent_status_runner_up',
      'agent_status_seconds_since_heartbeat',
      'agent_status_status',
    ]);
    expect(families.get('agent_status_restarts_total')!.type).toBe('COUNTER');

    const series = (family: string, labels: Record<string, string>) =>
      families.get(family)!.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    const between = (value: number, a: number, b: number, slack = 0) => value >= Math.min(a, b) - slack && value <= Math.max(a, b) + slack;
    expect(after.length).toBeGreaterThanOrEqual(6);
    expect(new Set(after.map((row) => row.status))).toEqual(new Set(AGENT_STATUSES));
    // a health nobody reported (m-stopped and the odd name only ever registered) has no sample: unknown, not 0
    const reported = after.filter((row) => row.health_reported_at !== null);
    expect(reported.length).toBeGreaterThanOrEqual(4);
    expect(families.get('agent_status_health')!.metrics).toHaveLength(reported.length);
    expect(series('agent_status_health', { agent: NAMES.stopped })).toEqual([]);
    after.forEach((row, index) => {
      const earlier = before[index];
      expect(earlier.status, `${row.agent_name} changed status during the test`).toBe(row.status);
      const who = { agent: row.agent_name, host: row.host ?? '' };
      const statuses = series('agent_status_status', who);
      expect(statuses.map((m) => m.labels!.status).sort(), row.agent_name).toEqual([...AGENT_STATUSES].sort());
      expect(
        statuses.filter((m) => m.value === '1').map((m) => m.labels!.status),
        row.agent_name,
      ).toEqual([row.status]);
      const health = series('agent_status_health', who);
      if (row.health_reported_at === null) expect(health, row.agent_name).toEqual([]);
      else expect(Number(health[0].value), row.agent_name).toBe(row.health);
      expect(Number(series('agent_status_restarts_total', who)[0].value)).toBe(row.restarts_total);
      const age = series('agent_status_seconds_since_heartbeat', who);
      if (row.seconds_since_heartbeat === null) expect(age).toEqual([]);
      else expect(between(Number(age[0].value), earlier.seconds_since_heartbeat, row.seconds_since_heartbeat), row.agent_name).toBe(true);
      const ratio = series('agent_status_availability_24h_ratio', who);
      if (row.up_percent === null) expect(ratio).toEqual([]);
      // percent rounded to 2 decimals: a ratio within 0.0001
      else expect(between(Number(ratio[0].value), earlier.up_percent / 100, row.up_percent / 100, 0.0001), row.agent_name).toBe(true);
    });
    expect(Number(series('agent_status_restarts_total', { agent: NAMES.error })[0].value)).toBe(3);
    expect(series('agent_status_status', { agent: NAMES.stale, status: 'stale' })[0].value).toBe('1');

    const runners = await sql`select host, status from public.runner_status_live`;
    expect(families.get('agent_status_runner_up')!.metrics).toHaveLength(runners.length);
    for (const runner of runners) {
      expect(series('agent_status_runner_up', { host: runner.host })[0].value).toBe(runner.status === 'online' ? '1' : '0');
    }
    expect(series('agent_status_runner_up', { host: 'quiet-host' })[0].labels!.status).toBe('silent');

    const deliveries = await sql`select c.name, d.status, count(*)::int as n from public.alert_deliveries d
                                 join public.alert_channels c on c.id = d.channel_id group by c.name, d.status`;
    expect(deliveries.length).toBeGreaterThan(0);
    expect(families.get('agent_status_alert_deliveries')!.metrics).toHaveLength(deliveries.length);
    for (const d of deliveries) {
      expect(Number(series('agent_status_alert_deliveries', { channel: d.name, outcome: d.status })[0].value)).toBe(d.n);
    }
  });

  it('the Grafana dashboard (docs/grafana) queries only series the endpoint exports, by labels they carry', async () => {
    const families = parsePrometheusTextFormat(await (await scrape(metricsToken)).text());
    const labels = new Map(families.map((f) => [f.name, new Set(f.metrics.flatMap((m) => Object.keys(m.labels ?? {})))]));
    const dashboard = JSON.parse(readFileSync(join(REPO, 'docs/grafana/agent-status-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string; legendFormat: string }[] }[];
    };
    expect(dashboard.panels.length).toBeGreaterThan(5);
    for (const panel of dashboard.panels) {
      for (const { expr, legendFormat } of panel.targets) {
        const names = expr.match(/agent_status_\w+/g) ?? [];
        expect(names.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
        const carried = new Set(names.flatMap((name) => [...(labels.get(name) ?? ['<not exported>'])]));
        for (const name of names) expect(labels.has(name), `${panel.title}: ${name} is not exported`).toBe(true);
        const used = [
          ...[...expr.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((label) => label.trim())),
          ...[...expr.matchAll(/\{(\w+)=/g)].map((m) => m[1]),
          ...[...legendFormat.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]),
        ];
        for (const label of used) expect(carried.has(label), `${panel.title}: label ${label} in ${expr}`).toBe(true);
      }
    }
  });

  it('refuses a scrape without its own token: none, an agent token, a badge key, a revoked one', async () => {
    const { sql } = stack.db;
    const agentToken = await createToken(sql, 'agent', { agent: NAMES.running });
    const revoked = (await sql`select token, token_prefix from public.create_api_token('metrics', 'old scrape')`)[0];
    await sql`select public.revoke_api_token(${revoked.token_prefix})`;
    for (const token of [undefined, agentToken, badgeKey, revoked.token]) {
      const response = await scrape(token);
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { message: string; hint: string } }).error).toMatchObject({
        message: 'metrics key is missing, unknown, revoked or of another kind',
        hint: 'Create one with: agent-status token create metrics',
      });
    }
    // and it speaks for no agent
    const heartbeat = await fetch(`${stack.url}/functions/v1/heartbeat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${metricsToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agent_name: NAMES.running, status: 'error' }),
    });
    expect(heartbeat.status).toBe(401);
    const post = await fetch(`${stack.url}/functions/v1/metrics`, { method: 'POST', headers: { authorization: `Bearer ${metricsToken}` } });
    expect(post.status).toBe(405);
  });
});

describe('badges', () => {
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  afterAll(async () => browser?.close());

  it('one per status and per host: SVG in the status colour with the 24 h availability, drawn by Chromium', async () => {
    const paths = [...Object.values(NAMES).map((name) => `agent/${encodeURIComponent(name)}.svg`), `agent/${encodeURIComponent(ODD)}.svg`];
    for (const [status, name] of Object.entries(NAMES)) {
      const response = await badge(`agent/${encodeURIComponent(name)}.svg`);
      expect(response.status, name).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
      const svg = await response.text();
      expect(svg).toContain(`fill="${BADGE_COLORS[status as keyof typeof BADGE_COLORS]}"`);
      expect(svg).toMatch(new RegExp(`aria-label="${name}: ${status}( · [\\d.]+% 24h)?"`));
    }
    const odd = await (await badge(`agent/${encodeURIComponent(ODD)}.svg`)).text();
    expect(odd).toContain('m-odd &quot;quoted&quot; \\ back&lt;slash&gt; &amp; co');
    expect(odd).not.toContain('<slash>');

    const host = await (await badge(`host/${HOST}.svg`)).text();
    // error is the worst status among its agents; running and warning count as up
    expect(host).toMatch(/aria-label="metrics-host: error · 2\/6 up · [\d.]+% 24h"/);
    expect(await (await badge('host/quiet-host.svg')).text()).toContain('aria-label="quiet-host: silent · 0/0 up"');

    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 760, height: 460 } });
    const images = [...paths, `host/${HOST}.svg`, 'host/quiet-host.svg']
      .map((path) => `<p><img alt="${path}" src="${stack.url}/functions/v1/badge/${path}?key=${encodeURIComponent(badgeKey)}"></p>`)
      .join('\n');
    // and a refusal, drawn with its 401: what a README shows once its key is revoked
    const refused = `<p><img alt="revoked" src="${stack.url}/functions/v1/badge/agent/${NAMES.running}.svg?key=asb_revoked"></p>`;
    await page.setContent(
      `<!doctype html><body style="font-family: sans-serif; padding: 16px"><h3>Agent badges</h3>${images}${refused}</body>`,
    );
    await page.waitForFunction(() => [...document.images].every((img) => img.complete));
    const widths = await page.$$eval('img', (imgs) => imgs.map((img) => (img as HTMLImageElement).naturalWidth));
    expect(widths.every((width) => width > 60)).toBe(true);
    const shot = await screenshot(page, 'badges');
    if (process.env.UPDATE_SCREENSHOTS) copyFileSync(shot, join(REPO, 'docs/screenshots/badges.png'));
  }, 60_000);

  it('needs its key, which reads nothing else and stops working when revoked', async () => {
    const { sql } = stack.db;
    expect((await badge(`agent/${NAMES.running}.svg`, metricsToken)).status).toBe(401);
    expect((await fetch(`${stack.url}/functions/v1/badge/agent/${NAMES.running}.svg`)).status).toBe(401);
    expect((await scrape(badgeKey)).status).toBe(401);
    // refusals are drawn too (an <img> shows no JSON), with their status code
    const unknown = await badge('agent/nobody-by-that-name.svg');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
    expect(await unknown.text()).toContain('aria-label="nobody-by-that-name: no such agent"');

    const [key] = await sql`select token, token_prefix from public.create_api_token('badge', 'wiki')`;
    expect((await badge(`agent/${NAMES.running}.svg`, key.token)).status).toBe(200);
    await sql`select public.revoke_api_token(${key.token_prefix})`;
    const revoked = await badge(`agent/${NAMES.running}.svg`, key.token);
    expect(revoked.status).toBe(401);
    expect(await revoked.text()).toContain(`aria-label="${NAMES.running}: badge key unknown or revoked"`);
    // the other key is untouched
    expect((await badge(`agent/${NAMES.running}.svg`)).status).toBe(200);
  });
});
