// Generic webhook: the notice itself as the JSON body, signed with HMAC-SHA256 over
// `${timestamp}.${body}` keyed with the channel's secret (shared/alerts.ts says how to verify it).
// X-Agent-Status-Delivery carries the delivery id, so a receiver can drop the rare repeat (a
// dispatcher that sent but died before recording it).
import { signedText, WEBHOOK_HEADERS } from '../../../../shared/alerts.ts';
import { type Channel, jsonRequest } from './base.ts';

async function hmacHex(key: string, text: string): Promise<string> {
  const encoder = new TextEncoder();
  const cryptoKey = await crypto.subtle.importKey('raw', encoder.encode(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signature = new Uint8Array(await crypto.subtle.sign('HMAC', cryptoKey, encoder.encode(text)));
  return Array.from(signature, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export const webhook: Channel = async (notice, config) => {
  const request = jsonRequest(config.endpoint, notice, { [WEBHOOK_HEADERS.delivery]: String(notice.delivery_id) });
  if (config.secret) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    request.headers[WEBHOOK_HEADERS.timestamp] = timestamp;
    request.headers[WEBHOOK_HEADERS.signature] = `v1=${await hmacHex(config.secret, signedText(timestamp, request.body))}`;
  }
  return request;
};
