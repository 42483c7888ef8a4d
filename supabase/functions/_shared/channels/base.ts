// What every channel shares: a channel only turns a notice into one HTTP request; sending it with a
// timeout, reading a bounded piece of the answer and turning any failure into one message happen here,
// once. Secrets (webhook URLs, bot tokens) are cut out of every message before it is stored or logged.
import type { Notice } from '../../../../shared/alerts.ts';

/** A channel row as alert_claim returns it, secrets included: never log it. */
export interface ChannelConfig {
  name: string;
  kind: string;
  endpoint: string;
  secret: string | null;
  settings: Record<string, unknown>;
}

export interface ChannelRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** One channel: how a notice becomes its request. */
export type Channel = (notice: Notice, config: ChannelConfig) => ChannelRequest | Promise<ChannelRequest>;

export interface SendResult {
  ok: boolean;
  httpStatus: number | null;
  response: string | null;
  error: string | null;
  durationMs: number;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const MAX_TIMEOUT_MS = 30_000;
const SNIPPET = 500;

/** A short symbol for the notice's severity, for channels that show plain text. */
export function mark(notice: Notice): string {
  return { critical: '🔴', warning: '🟠', info: 'ℹ️', resolved: '✅' }[notice.severity];
}

/** Title and text as plain lines, for chat and e-mail channels. */
export function plainText(notice: Notice): string {
  const where = [notice.agent && `agent ${notice.agent}`, notice.host && `host ${notice.host}`].filter(Boolean).join(', ');
  return [`${mark(notice)} ${notice.title}`, notice.text, where && `(${where}, ${notice.at})`].filter(Boolean).join('\n');
}

/** A JSON request with the usual headers. */
export function jsonRequest(url: string, payload: unknown, headers: Record<string, string> = {}): ChannelRequest {
  return {
    url,
    headers: { 'content-type': 'application/json', 'user-agent': 'agent-status-alerts', ...headers },
    body: JSON.stringify(payload),
  };
}

/** A setting as a string, or an error naming the missing one (the SQL check refuses most of these earlier). */
export function setting(config: ChannelConfig, name: string): string {
  const value = config.settings[name];
  if (value == null || value === '') throw new Error(`channel ${config.name} has no settings.${name}`);
  return String(value);
}

function redact(text: string, config: ChannelConfig, url: string): string {
  let out = text;
  for (const secret of [url, config.endpoint, config.secret]) if (secret && secret.length >= 6) out = out.split(secret).join('[secret]');
  return out;
}

/** Builds and sends one notice; never throws. */
export async function send(channel: Channel, notice: Notice, config: ChannelConfig): Promise<SendResult> {
  const started = performance.now();
  // Never longer than the claim's lease (60 s), or another dispatcher would send it a second time.
  const timeoutMs = Math.min(Number(config.settings.timeout_ms ?? DEFAULT_TIMEOUT_MS), MAX_TIMEOUT_MS);
  let url = config.endpoint;
  const done = (result: Omit<SendResult, 'durationMs'>): SendResult => ({
    ...result,
    error: result.error && redact(result.error, config, url).slice(0, 1000),
    response: result.response && redact(result.response, config, url).slice(0, SNIPPET),
    durationMs: Math.round(performance.now() - started),
  });
  try {
    const request = await channel(notice, config);
    url = request.url;
    const response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = (await response.text()).slice(0, SNIPPET);
    if (response.ok) return done({ ok: true, httpStatus: response.status, response: text, error: null });
    return done({
      ok: false,
      httpStatus: response.status,
      response: text,
      error: `HTTP ${response.status} ${response.statusText}: ${text}`.trim(),
    });
  } catch (error) {
    const e = error as Error;
    const message = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : describeNetworkError(e, url);
    return done({ ok: false, httpStatus: null, response: null, error: message });
  }
}

// What failed when no HTTP answer came, in words an operator acts on. Node's fetch says only "fetch
// failed" and keeps the reason in error.cause (a code such as ECONNREFUSED); Deno puts it in the
// message ("dns error", "Connection refused", "invalid peer certificate").
const NETWORK_FAILURES: [RegExp, string][] = [
  [/ENOTFOUND|EAI_AGAIN|dns error|failed to lookup|Name or service not known/i, 'DNS: the host name does not resolve'],
  [/ECONNREFUSED|Connection refused/i, 'connection refused: nothing listens at that address and port'],
  [/ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|timed out/i, 'connect timeout: the host did not answer'],
  [/CERT|TLS|SSL|certificate|handshake/i, 'TLS: the certificate or handshake was refused'],
  [/ECONNRESET|UND_ERR_SOCKET|connection reset|EPIPE/i, 'the connection was closed before an answer'],
  [/EHOSTUNREACH|ENETUNREACH|unreachable/i, 'the network cannot reach the host'],
];

export function describeNetworkError(error: Error, url: string): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const detail = [error.message, cause?.code, cause?.message].filter(Boolean).join(' ');
  const host = URL.canParse(url) ? new URL(url).host : url;
  const what = NETWORK_FAILURES.find(([pattern]) => pattern.test(detail))?.[1];
  return `${what ?? `${error.name}: ${error.message}`} (${host}; ${cause?.code ?? cause?.message ?? error.message})`;
}
