// `agent-status token create|list|revoke`: bearer tokens for agents, runners and operator scripts.
// A new token is shown once (only its SHA-256 is stored). When standard output is not a terminal,
// `token create` prints the token alone on one line so scripts can capture it:
//   AGENT_STATUS_TOKEN=$(agent-status token create agent --name "Tweet Scraping Agent")
import type { Command } from 'commander';
import { TOKEN_KINDS, type TokenKind } from '../../../shared/status.ts';
import { action, subcommand } from './action.ts';
import { connect, connectionOptions, type ConnectionFlags } from './connection.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { painter, printJson, table } from './output.ts';

interface CreatedToken {
  id: string;
  kind: TokenKind;
  label: string;
  token: string;
  token_prefix: string;
  agent_name: string | null;
  host: string | null;
  operator_email: string | null;
  expires_at: string | null;
  agents: string[] | null;
  new_agents: boolean;
}

interface ListedToken {
  id: string;
  kind: TokenKind;
  label: string;
  token_prefix: string;
  agent_name: string | null;
  host: string | null;
  operator_email: string | null;
  created_at: string;
  created_by: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  expires_at: string | null;
  agents: string[] | null;
  new_agents: boolean;
}

interface CreateOptions extends ConnectionFlags {
  name?: string;
  host?: string;
  email?: string;
  label?: string;
  expires?: string;
  agents?: string;
  newAgents?: boolean;
  json?: boolean;
}

// Each unit by its short and long spellings: 30m is minutes, months are mo.
const EXPIRY_UNITS: Record<string, string> = Object.fromEntries(
  (
    [
      ['seconds', 's', 'sec', 'secs', 'second', 'seconds'],
      ['minutes', 'm', 'min', 'mins', 'minute', 'minutes'],
      ['hours', 'h', 'hr', 'hrs', 'hour', 'hours'],
      ['days', 'd', 'day', 'days'],
      ['weeks', 'w', 'wk', 'wks', 'week', 'weeks'],
      ['months', 'mo', 'mon', 'month', 'months'],
      ['years', 'y', 'yr', 'yrs', 'year', 'years'],
    ] as const
  ).flatMap(([unit, ...spellings]) => spellings.map((spelling) => [spelling, unit])),
);

/** `90d`, `12h`, `30m`, `2w`, `6mo`, `1y` (or `90 days`, `1 year`) as a Postgres interval. */
export function expiresIn(text: string): string {
  const match = /^(\d{1,6})\s*([a-z]+)$/i.exec(text.trim());
  const unit = match && EXPIRY_UNITS[match[2].toLowerCase()];
  if (!match || !unit || Number(match[1]) === 0) {
    throw new CliError(
      `--expires must be a lifetime like 90d, 12h, 30m, 2w, 6mo or 1y, got ${JSON.stringify(text)}`,
      EXIT.usage,
      'Units: s, m (minutes), h, d, w, mo (months), y; or spelled out, like "90 days".',
    );
  }
  return `${match[1]} ${unit}`;
}

const SCOPE_FLAG: Record<TokenKind, { flag: string; example: string }> = {
  agent: { flag: '--name <agent>', example: 'agent-status token create agent --name "Tweet Scraping Agent"' },
  runner: { flag: '--host <host>', example: "agent-status token create runner --host $(hostname) --agents 'scraper-*,Tweet Agent'" },
  operator: { flag: '--email <email>', example: 'agent-status token create operator' },
  metrics: { flag: '', example: 'agent-status token create metrics' },
  badge: { flag: '', example: 'agent-status token create badge' },
};

/** Where each kind of token goes, for the message after it is made. */
const USE: Record<TokenKind, string> = {
  agent: 'Give it to the agent as AGENT_STATUS_TOKEN.',
  runner: 'Give it to the runner as AGENT_STATUS_RUNNER_TOKEN.',
  operator: 'Give it to the operator as AGENT_STATUS_OPERATOR_TOKEN.',
  metrics: 'Give it to Prometheus as the bearer token of the scrape of /functions/v1/metrics (README: Prometheus).',
  badge: 'Put it in badge URLs: /functions/v1/badge/agent/<name>.svg?key=<key> (README: Badges).',
};

/** What a runner token may register, in the words of `token create`'s options. */
const runnerScope = (t: { agents: string[] | null; new_agents: boolean }) =>
  t.agents ? t.agents.join(', ') : t.new_agents ? "its host's agents and new names" : "its host's agents";

const date = (value: string | null) => (value ? value.replace('T', ' ').slice(0, 19) : '-');

export function registerToken(program: Command): void {
  const token = program.command('token').description('create, list and revoke agent, runner and operator tokens');

  connectionOptions(subcommand(token, 'create <kind>', `create a token (${TOKEN_KINDS.join('|')}); it is printed once`))
    .option('--name <agent>', 'agent token: the agent it speaks for (created, stopped, if new)')
    .option('--host <host>', 'runner token: the host whose runner uses it')
    .option(
      '--agents <list>',
      "runner token: the agents it may register, comma-separated names or patterns ('scraper-*'); default: its host's agents",
    )
    .option('--new-agents', 'runner token without --agents: it may also add agent names the database does not know yet')
    .option('--email <email>', 'operator token: the operator it acts as; only yourself (the default), unless signed in as the service')
    .option('--expires <lifetime>', 'the token stops working after this long: 90d, 12h, 30m, 2w, 6mo, 1y (default: never)')
    .option('--label <label>', 'a label to recognise it by in `token list`')
    .option('--json', 'print the created token and its details as JSON')
    .action(
      action(async (kind: string, options: CreateOptions) => {
        if (!(TOKEN_KINDS as readonly string[]).includes(kind)) {
          throw new CliError(`token kind must be ${TOKEN_KINDS.join(', ')}, got ${JSON.stringify(kind)}`, EXIT.usage);
        }
        // the read-only keys have no scope: they read every agent's figures and nothing else
        const scope = { agent: options.name, runner: options.host, operator: options.email ?? 'yourself', metrics: 'all', badge: 'all' }[
          kind as TokenKind
        ];
        const expires = options.expires === undefined ? null : expiresIn(options.expires);
        const agents =
          options.agents
            ?.split(',')
            .map((name) => name.trim())
            .filter(Boolean) ?? null;
        if (agents && kind !== 'runner') throw new CliError('--agents is for runner tokens: the agents a runner may register', EXIT.usage);
        if (options.newAgents && (kind !== 'runner' || agents)) {
          throw new CliError(
            '--new-agents is for runner tokens without --agents',
            EXIT.usage,
            'A token made with --agents may add the names it lists already.',
          );
        }
        if (!scope) {
          const { flag, example } = SCOPE_FLAG[kind as TokenKind];
          throw new CliError(`a ${kind} token needs ${flag}`, EXIT.usage, `For example: ${example}`);
        }
        const api = await connect(options);
        const [created] = await api.rpc<CreatedToken[]>('create_api_token', {
          p_kind: kind,
          p_label: options.label ?? null,
          p_agent_name: options.name ?? null,
          p_host: options.host ?? null,
          p_operator_email: options.email ?? null,
          p_expires_in: expires,
          p_agents: agents,
          p_new_agents: options.newAgents ?? false,
        });
        if (options.json) return printJson(created);
        if (!process.stdout.isTTY) {
          process.stdout.write(`${created.token}\n`);
          return;
        }
        const paint = painter();
        process.stdout.write(
          `Created ${kind} token ${JSON.stringify(created.label)} (id ${created.id}, prefix ${created.token_prefix}` +
            `${created.expires_at ? `, expires ${date(created.expires_at)}` : ''}` +
            `${kind === 'runner' ? `, may register ${runnerScope(created)}` : ''}).\n` +
            `Copy it now: it is not shown again.\n\n  ${paint.bold(created.token)}\n\n` +
            `${USE[kind as TokenKind]} Revoke it with: agent-status token revoke ${created.token_prefix}\n`,
        );
      }),
    );

  connectionOptions(subcommand(token, 'list', 'list tokens (never the tokens themselves, only their prefixes)'))
    .option('--all', 'include revoked tokens')
    .option('--json', 'print the rows as JSON')
    .action(
      action(async (options: ConnectionFlags & { all?: boolean; json?: boolean }) => {
        const rows = (await (await connect(options)).rpc<ListedToken[]>('list_api_tokens')).filter((t) => options.all || !t.revoked_at);
        if (options.json) return printJson(rows);
        if (!rows.length) {
          process.stdout.write('No tokens. Create one with: agent-status token create agent|runner|operator ...\n');
          return;
        }
        process.stdout.write(
          `${table(
            ['PREFIX', 'KIND', 'FOR', 'LABEL', 'CREATED', 'LAST USED', 'EXPIRES', 'REVOKED'],
            rows.map((t) => [
              t.token_prefix,
              t.kind,
              t.agent_name ?? (t.host && `${t.host} (${runnerScope(t)})`) ?? t.operator_email ?? '-',
              t.label,
              date(t.created_at),
              date(t.last_used_at),
              t.expires_at && new Date(t.expires_at).getTime() <= Date.now() ? `expired ${date(t.expires_at)}` : date(t.expires_at),
              date(t.revoked_at),
            ]),
          )}\n`,
        );
      }),
    );

  connectionOptions(subcommand(token, 'revoke <id-or-prefix>', 'revoke a token by its id or the prefix `token list` shows'))
    .option('--json', 'print the revoked token as JSON')
    .action(
      action(async (idOrPrefix: string, options: ConnectionFlags & { json?: boolean }) => {
        const [revoked] = await (await connect(options)).rpc<{ id: string; label: string; revoked_at: string }[]>('revoke_api_token', {
          p_token_id_or_prefix: idOrPrefix,
        });
        if (options.json) return printJson(revoked);
        process.stdout.write(
          `Revoked ${JSON.stringify(revoked.label)} (id ${revoked.id}) at ${date(revoked.revoked_at)}; it stops working at once.\n`,
        );
      }),
    );
}
