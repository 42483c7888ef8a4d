// E-mail through an HTTP API (edge functions cannot open SMTP ports): Resend (POST /emails, bearer
// API key, {from, to[], subject, text}) or Postmark (POST /email, X-Postmark-Server-Token,
// {From, To, Subject, TextBody, MessageStream}); settings.provider picks one.
import { type Channel, jsonRequest, plainText, setting } from './base.ts';

function recipients(value: unknown): string[] {
  return (Array.isArray(value) ? value : String(value).split(',')).map((address) => String(address).trim()).filter(Boolean);
}

export const email: Channel = (notice, config) => {
  const from = setting(config, 'from');
  const to = recipients(setting(config, 'to'));
  const subject = `[agent-status] ${notice.title}`;
  const text = plainText(notice);
  if ((config.settings.provider ?? 'resend') === 'postmark') {
    return jsonRequest(
      config.endpoint,
      {
        From: from,
        To: to.join(','),
        Subject: subject,
        TextBody: text,
        MessageStream: String(config.settings.message_stream ?? 'outbound'),
      },
      { accept: 'application/json', 'x-postmark-server-token': config.secret ?? '' },
    );
  }
  return jsonRequest(config.endpoint, { from, to, subject, text }, { authorization: `Bearer ${config.secret}` });
};
