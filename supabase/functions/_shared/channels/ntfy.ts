// ntfy: POST a JSON message {topic, title, message, priority, tags} to the server's root URL (ntfy.sh
// or any self-hosted server); the secret, when set, is an access token sent as a bearer token.
import { type Channel, jsonRequest, setting } from './base.ts';

const PRIORITY = { critical: 5, warning: 4, info: 3, resolved: 3 } as const;
const TAGS = { critical: 'rotating_light', warning: 'warning', info: 'information_source', resolved: 'white_check_mark' } as const;

export const ntfy: Channel = (notice, config) =>
  jsonRequest(
    `${config.endpoint.replace(/\/+$/, '')}/`,
    {
      topic: setting(config, 'topic'),
      title: notice.title,
      message: [notice.text, notice.host && `host ${notice.host}`].filter(Boolean).join('\n') || notice.title,
      priority: Number(config.settings.priority ?? PRIORITY[notice.severity]),
      tags: [TAGS[notice.severity]],
    },
    config.secret ? { authorization: `Bearer ${config.secret}` } : {},
  );
