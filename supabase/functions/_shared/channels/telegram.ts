// Telegram bot: POST {chat_id, text} to <endpoint>/bot<token>/sendMessage. The endpoint is
// https://api.telegram.org or a self-hosted Bot API server; plain text, so nothing needs escaping.
import { type Channel, jsonRequest, plainText, setting } from './base.ts';

export const telegram: Channel = (notice, config) =>
  jsonRequest(`${config.endpoint.replace(/\/+$/, '')}/bot${config.secret}/sendMessage`, {
    chat_id: setting(config, 'chat_id'),
    text: plainText(notice).slice(0, 4096),
    disable_web_page_preview: true,
  });
