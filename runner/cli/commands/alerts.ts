// `agent-status alerts ...`: notification channels, their rules, test sends, snoozes and the delivery
// log, through the operator functions of the alerts migration. Secrets go in and never come back out:
// `channel list` shows them masked, as the database returns them.
import type { Command } from 'commander';
import {
  ALERT_FLIPS,
  type AlertChannelRow as ChannelRow,
  type AlertDeliveryRow as DeliveryRow,
  type AlertPauseRow as PauseRow,
  CHANNEL_KINDS,
} from '../../../shared/alerts.ts';
import { action, integerIn, subcommand } from './action.ts';
import { type Api, connect, connectionOptions, type ConnectionFlags } from './connection.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { oneLine, painter, printJson, table } from './output.ts';

interface AddOptions extends ConnectionFlags {
  kind: string;
  endpoint?: string;
  secret?: string;
  secretEnv?: string;
  chatId?: string;
  topic?: string;
  provider?: string;
  from?: string;
  to?: string;
  setting?: string[];
  json?: boolean;
}

const date = (value: string | null) => (value ? value.replace('T', ' ').slice(0, 19) : '-');
const list = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
const collect = (value: string, previous: string[] = []) => [...previous, value];

/** A duration like 90s, 15m, 2h or 1d, in seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new CliError(`not a duration: ${JSON.stringify(text)}`, EXIT.usage, 'Write it as 90s, 15m, 2h or 1d.');
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

function settingsFrom(options: AddOptions): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  if (options.chatId) settings.chat_id = options.chatId;
  if (options.topic) settings.topic = options.topic;
  if (options.provider) settings.provider = options.provider;
  if (options.from) settings.from = options.from;
  if (options.to) settings.to = list(options.to);
  for (const pair of options.setting ?? []) {
    const at = pair.indexOf('=');
    if (at < 1) throw new CliError(`--setting wants key=value, got ${JSON.stringify(pair)}`, EXIT.usage);
    const value = pair.slice(at + 1);
    settings[pair.slice(0, at)] = /^\d+$/.test(value) ? Number(value) : value;
  }
  return settings;
}

function secretFrom(options: AddOptions): string | null {
  if (options.secretEnv) {
    const value = process.env[options.secretEnv];
    if (!value) throw new CliError(`${options.secretEnv} is empty or not set`, EXIT.usage, 'Export the secret in that variable first.');
    return value;
  }
  return options.secret ?? null;
}

function target(options: { agent?: string; host?: string }): { p_agent_name: string | null; p_host: string | null } {
  if (!options.agent === !options.host) throw new CliError('name exactly one of --agent <name> or --host <host>', EXIT.usage);
  return { p_agent_name: options.agent ?? null, p_host: options.host ?? null };
}

/** " (alerts paused ...)" by agent name, for `list`: pauses of the agent itself or of its host. */
export async function pausedAlerts(api: Api, agents: { agent_name: string; host: string | null }[]): Promise<Map<string, string>> {
  const pauses = await api.rpc<PauseRow[]>('operator_alert_pauses');
  const notes = new Map<string, string>();
  for (const pause of pauses) {
    const note = painter().dim(` (alerts paused ${pause.until ? `until ${date(pause.until)}` : 'until resumed'})`);
    for (const agent of agents)
      if (agent.agent_name === pause.agent_name || (pause.host && agent.host === pause.host)) notes.set(agent.agent_name, note);
  }
  return notes;
}

async function channels(api: Api): Promise<ChannelRow[]> {
  return api.rpc<ChannelRow[]>('operator_alert_channels');
}

/** Waits for a delivery to be sent or to fail once, for `channel test`. */
async function watchDelivery(api: Api, channel: string, id: number, timeoutS: number): Promise<DeliveryRow | undefined> {
  const until = Date.now() + timeoutS * 1000;
  for (;;) {
    const row = (await api.rpc<DeliveryRow[]>('operator_alert_deliveries', { p_channel: channel, p_limit: 1000 })).find((d) => d.id === id);
    if (row && (row.status === 'delivered' || row.status === 'dead' || row.last_error)) return row;
    if (Date.now() >= until) return row;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export function registerAlerts(program: Command): void {
  const alerts = program.command('alerts').description('notification channels, rules, snoozes and the delivery log');
  const channel = alerts.command('channel').description('add, list, remove and test notification channels');

  connectionOptions(subcommand(channel, 'add <name>', 'add a channel, or replace the one of that name (rules are kept)'))
    .requiredOption('--kind <kind>', `one of ${CHANNEL_KINDS.join(', ')}`)
    .option('--endpoint <url>', 'where to send: the webhook URL, or the API base of a self-hosted ntfy, Bot API server, PagerDuty EU...')
    .option('--secret <secret>', 'HMAC key (webhook), bot token (telegram), access token (ntfy), API key (email), routing key (pagerduty)')
    .option('--secret-env <variable>', 'read the secret from this environment variable instead (keeps it out of shell history)')
    .option('--chat-id <id>', 'telegram: the chat to post in')
    .option('--topic <topic>', 'ntfy: the topic')
    .option('--provider <provider>', 'email: resend (default) or postmark')
    .option('--from <address>', 'email: the sender')
    .option('--to <addresses>', 'email: recipients, comma-separated')
    .option('--setting <key=value>', 'any other setting (timeout_ms, priority, username...); repeatable', collect)
    .option('--json', 'print the channel as JSON (secrets masked)')
    .action(
      action(async (name: string, options: AddOptions) => {
        if (!(CHANNEL_KINDS as readonly string[]).includes(options.kind)) {
          throw new CliError(`--kind must be one of ${CHANNEL_KINDS.join(', ')}, got ${JSON.stringify(options.kind)}`, EXIT.usage);
        }
        const api = await connect(options);
        await api.rpc('alert_channel_save', {
          p_name: name,
          p_kind: options.kind,
          p_endpoint: options.endpoint ?? null,
          p_secret: secretFrom(options),
          p_settings: settingsFrom(options),
        });
        const saved = (await channels(api)).find((c) => c.name === name)!;
        if (options.json) return printJson(saved);
        process.stdout.write(
          `Channel ${name} (${saved.kind}) sends to ${saved.endpoint}${saved.secret ? ` with secret ${saved.secret}` : ''}.\n` +
            `Try it: agent-status alerts channel test ${name}\n`,
        );
      }),
    );

  connectionOptions(subcommand(channel, 'list', 'list channels with their rules and last delivery (secrets masked)'))
    .option('--json', 'print the rows as JSON')
    .action(
      action(async (options: ConnectionFlags & { json?: boolean }) => {
        const rows = await channels(await connect(options));
        if (options.json) return printJson(rows);
        if (!rows.length) {
          process.stdout.write('No channels. Add one with: agent-status alerts channel add NAME --kind webhook --endpoint URL\n');
          return;
        }
        process.stdout.write(
          `${table(
            ['CHANNEL', 'KIND', 'ENDPOINT', 'FLIPS', 'AGENTS', 'GRACE', 'LAST DELIVERY'],
            rows.map((c) => [
              c.enabled ? c.name : `${c.name} (off)`,
              c.kind,
              c.endpoint,
              c.flips.join(','),
              [...(c.hosts ?? []).map((h) => `host ${h}`), ...(c.agents ?? [])].join(',') || 'all',
              `${c.grace_s} s`,
              c.last_status
                ? `${c.last_status} ${c.last_kind} ${date(c.last_at)}${c.last_error ? `: ${oneLine(c.last_error, 40)}` : ''}`
                : '-',
            ]),
          )}\n`,
        );
      }),
    );

  connectionOptions(subcommand(channel, 'remove <name>', 'remove a channel and its delivery log')).action(
    action(async (name: string, options: ConnectionFlags) => {
      await (await connect(options)).rpc('alert_channel_remove', { p_name: name });
      process.stdout.write(`Removed channel ${name}.\n`);
    }),
  );

  connectionOptions(subcommand(channel, 'test <name>', 'send a test notice and wait for the result'))
    .option('--wait <seconds>', 'how long to wait for the dispatcher', integerIn(0, 600), 30)
    .action(
      action(async (name: string, options: ConnectionFlags & { wait: number }) => {
        const api = await connect(options);
        const id = await api.rpc<number>('alert_channel_test', { p_name: name });
        if (options.wait === 0) {
          process.stdout.write(`Queued test notice ${id} on ${name}.\n`);
          return;
        }
        const row = await watchDelivery(api, name, id, options.wait);
        if (row?.status === 'delivered') {
          process.stdout.write(`Delivered test notice ${id} to ${name} (HTTP ${row.last_http_status}).\n`);
          return;
        }
        if (row?.last_error) {
          throw new CliError(
            `the test notice to ${name} failed: ${row.last_error}`,
            EXIT.failed,
            'Fix the endpoint or secret and test again.',
          );
        }
        throw new CliError(
          `the test notice to ${name} was not sent within ${options.wait} s`,
          EXIT.timeout,
          'Is the dispatcher running? npm start runs it; on Supabase, pg_cron + pg_net call it (README, "Alerts").',
        );
      }),
    );

  connectionOptions(subcommand(alerts, 'rule <channel>', "set a channel's rules (options not given keep their value)"))
    .option('--flips <list>', `down flips to tell, comma-separated: ${ALERT_FLIPS.join(', ')} (recovery is always told)`)
    .option('--hosts <list>', 'only agents on these hosts (comma-separated), or "all"')
    .option('--agents <patterns>', 'only agents whose names match these globs (scraper-*), or "all"')
    .option('--grace <duration>', 'tell a down flip only if still down after this long (0, 90s, 5m)')
    .option('--reminder <duration>', 'remind while still down, every this long, or "off"')
    .option('--flap-threshold <n>', 'this many down flips within the window make one "flapping" notice (0: off)', integerIn(0, 100))
    .option('--flap-window <duration>', 'the flap window (default 10m)')
    .option('--enable', 'send on this channel')
    .option('--disable', 'send nothing on this channel (deliveries already queued still go out)')
    .action(
      action(async (name: string, options: ConnectionFlags & Record<string, string | number | boolean | undefined>) => {
        const rules: Record<string, unknown> = {};
        const all = (value: string) => (value === 'all' ? null : list(value));
        if (options.flips !== undefined) rules.flips = list(String(options.flips));
        if (options.hosts !== undefined) rules.hosts = all(String(options.hosts));
        if (options.agents !== undefined) rules.agents = all(String(options.agents));
        if (options.grace !== undefined) rules.grace_s = parseDuration(String(options.grace));
        if (options.reminder !== undefined) rules.reminder_s = options.reminder === 'off' ? null : parseDuration(String(options.reminder));
        if (options.flapThreshold !== undefined) rules.flap_threshold = options.flapThreshold;
        if (options.flapWindow !== undefined) rules.flap_window_s = parseDuration(String(options.flapWindow));
        if (options.enable && options.disable) throw new CliError('--enable and --disable contradict each other', EXIT.usage);
        if (options.enable || options.disable) rules.enabled = !!options.enable;
        if (!Object.keys(rules).length) throw new CliError('no rule given', EXIT.usage, 'See: agent-status alerts rule --help');
        await (await connect(options)).rpc('alert_channel_rules', { p_name: name, p_rules: rules });
        process.stdout.write(`Rules of ${name} updated: ${JSON.stringify(rules)}\n`);
      }),
    );

  connectionOptions(subcommand(alerts, 'snooze', 'pause alerts for an agent or a host (maintenance), recorded as an event'))
    .option('--agent <name>', 'the agent')
    .option('--host <host>', 'every agent on the host, and the host itself')
    .option('--for <duration>', 'how long (2h, 30m); without it or --until, until `alerts resume`')
    .option('--until <time>', 'until this time (ISO 8601)')
    .option('--reason <text>', 'why, for the history and the dashboard')
    .action(
      action(async (options: ConnectionFlags & { agent?: string; host?: string; for?: string; until?: string; reason?: string }) => {
        const who = target(options);
        if (options.for && options.until) throw new CliError('give --for or --until, not both', EXIT.usage);
        let until: string | null = null;
        if (options.for) until = new Date(Date.now() + parseDuration(options.for) * 1000).toISOString();
        if (options.until) {
          const at = new Date(options.until);
          if (Number.isNaN(at.getTime())) throw new CliError(`--until is not a time: ${JSON.stringify(options.until)}`, EXIT.usage);
          until = at.toISOString();
        }
        await (await connect(options)).rpc('alert_pause', { ...who, p_until: until, p_reason: options.reason ?? null });
        process.stdout.write(
          `Alerts paused for ${options.agent ?? `host ${options.host}`} ${until ? `until ${date(until)} UTC` : 'until resumed'}.\n`,
        );
      }),
    );

  connectionOptions(subcommand(alerts, 'resume', 'end the pauses of an agent or a host now (a still-down agent alerts at once)'))
    .option('--agent <name>', 'the agent')
    .option('--host <host>', 'the host')
    .action(
      action(async (options: ConnectionFlags & { agent?: string; host?: string }) => {
        const n = await (await connect(options)).rpc<number>('alert_resume', target(options));
        process.stdout.write(n ? `Alerts resumed for ${options.agent ?? `host ${options.host}`}.\n` : 'Nothing was paused.\n');
      }),
    );

  connectionOptions(subcommand(alerts, 'log', 'the delivery log, failures first'))
    .option('--channel <name>', 'one channel only')
    .option('--limit <n>', 'at most this many rows', integerIn(1, 1000), 50)
    .option('--json', 'print the rows as JSON')
    .action(
      action(async (options: ConnectionFlags & { channel?: string; limit: number; json?: boolean }) => {
        const rows = await (await connect(options)).rpc<DeliveryRow[]>('operator_alert_deliveries', {
          p_channel: options.channel ?? null,
          p_limit: options.limit,
        });
        if (options.json) return printJson(rows);
        if (!rows.length) {
          process.stdout.write('No deliveries yet.\n');
          return;
        }
        process.stdout.write(
          `${table(
            ['ID', 'CHANNEL', 'STATUS', 'NOTICE', 'TRIES', 'QUEUED', 'RESULT'],
            rows.map((d) => [
              String(d.id),
              d.channel,
              d.status,
              oneLine(d.title, 50),
              String(d.attempts),
              date(d.created_at),
              d.last_error ? oneLine(d.last_error, 50) : d.last_http_status ? `HTTP ${d.last_http_status}` : '-',
            ]),
          )}\n`,
        );
      }),
    );
}
