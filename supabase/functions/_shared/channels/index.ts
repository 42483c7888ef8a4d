// The channels, listed once: adding a channel is adding one module and one line here.
import type { ChannelKind } from '../../../../shared/alerts.ts';
import type { Channel } from './base.ts';
import { discord } from './discord.ts';
import { email } from './email.ts';
import { ntfy } from './ntfy.ts';
import { pagerduty } from './pagerduty.ts';
import { slack } from './slack.ts';
import { telegram } from './telegram.ts';
import { webhook } from './webhook.ts';

export const CHANNELS: Record<ChannelKind, Channel> = { webhook, slack, discord, telegram, ntfy, email, pagerduty };
