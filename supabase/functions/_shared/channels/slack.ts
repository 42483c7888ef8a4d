// Slack incoming webhook: POST {text, blocks} to the webhook URL (the URL is the secret).
// https://api.slack.com/messaging/webhooks
import { type Channel, jsonRequest, mark } from './base.ts';

// Slack's mrkdwn treats &, < and > as markup.
const mrkdwn = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export const slack: Channel = (notice, config) => {
  const lines = [`${mark(notice)} *${mrkdwn(notice.title)}*`, notice.text && mrkdwn(notice.text)].filter(Boolean).join('\n');
  const context = [notice.agent && `agent \`${mrkdwn(notice.agent)}\``, notice.host && `host \`${mrkdwn(notice.host)}\``, notice.at]
    .filter(Boolean)
    .join(' · ');
  return jsonRequest(config.endpoint, {
    text: `${mark(notice)} ${notice.title}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: lines } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: context }] },
    ],
  });
};
