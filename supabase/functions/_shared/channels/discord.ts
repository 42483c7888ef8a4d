// Discord webhook: POST {username, embeds, allowed_mentions} to the webhook URL (the URL is the
// secret). Discord answers 204. Mentions are off, so an agent's message can never ping @everyone.
import { type Channel, jsonRequest } from './base.ts';

const COLOR = { critical: 0xd92d20, warning: 0xf79009, info: 0x2e90fa, resolved: 0x12b76a } as const;

export const discord: Channel = (notice, config) =>
  jsonRequest(config.endpoint, {
    username: String(config.settings.username ?? 'agent-status'),
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title: notice.title.slice(0, 256),
        description: (notice.text ?? '').slice(0, 4000),
        color: COLOR[notice.severity],
        timestamp: notice.at,
        fields: [
          ...(notice.agent ? [{ name: 'agent', value: notice.agent, inline: true }] : []),
          ...(notice.host ? [{ name: 'host', value: notice.host, inline: true }] : []),
        ],
      },
    ],
  });
