// Reads the runtime configuration that config.js (next to index.html) puts on window. Nothing else
// configures the dashboard, so one build serves every project.
import { secretKeyProblem } from '../../shared/keys.ts';

export interface DashboardConfig {
  supabaseUrl: string;
  supabaseAnonKey: string;
  /** false where the API has no Realtime (the local stack): the dashboard polls without trying it,
   * instead of logging a failed WebSocket on every page load */
  realtime: boolean;
}

declare global {
  interface Window {
    AGENT_STATUS_CONFIG?: Partial<DashboardConfig>;
  }
}

/** The configuration, or a sentence saying what to fix in config.js. */
export function readConfig(): DashboardConfig | string {
  const config = window.AGENT_STATUS_CONFIG;
  if (!config) {
    return (
      'config.js did not load. Put a config.js next to index.html that sets window.AGENT_STATUS_CONFIG = { ' +
      'supabaseUrl, supabaseAnonKey }.'
    );
  }
  const supabaseUrl = String(config.supabaseUrl ?? '').trim();
  const supabaseAnonKey = String(config.supabaseAnonKey ?? '').trim();
  if (!supabaseUrl || !supabaseAnonKey) {
    return (
      'config.js has no supabaseUrl or supabaseAnonKey. Set them to your project URL and its publishable key ' +
      '(sb_publishable_..., or the legacy anon key) from Project Settings > API Keys.'
    );
  }
  try {
    new URL(supabaseUrl);
  } catch {
    return `supabaseUrl in config.js is not a URL: ${JSON.stringify(supabaseUrl)}. Use https://<project-ref>.supabase.co.`;
  }
  // Supabase refuses a secret key from a browser with a bare 401; say what it is and what to do instead.
  const secret = secretKeyProblem(supabaseAnonKey);
  if (secret) {
    return (
      `config.js holds a key that must never reach a browser: ${secret}. Use the publishable key (sb_publishable_..., ` +
      'or the legacy anon key) from Project Settings > API Keys, and rotate the key that was exposed.'
    );
  }
  return { supabaseUrl: supabaseUrl.replace(/\/+$/, ''), supabaseAnonKey, realtime: config.realtime !== false };
}
