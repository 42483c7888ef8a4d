// Reads the runtime configuration that config.js (next to index.html) puts on window. Nothing else
// configures the dashboard, so one build serves every project.

export interface DashboardConfig {
  supabaseUrl: string;
  supabaseAnonKey: string;
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
      'config.js has no supabaseUrl or supabaseAnonKey. Set them to your project URL and its publishable (anon) ' +
      'key from Project Settings > API.'
    );
  }
  try {
    new URL(supabaseUrl);
  } catch {
    return `supabaseUrl in config.js is not a URL: ${JSON.stringify(supabaseUrl)}. Use https://<project-ref>.supabase.co.`;
  }
  if (/service_role/.test(decodeJwtRole(supabaseAnonKey))) {
    return (
      'config.js holds the service-role key, which must never reach a browser. Use the publishable (anon) key and ' +
      'rotate the service key.'
    );
  }
  return { supabaseUrl: supabaseUrl.replace(/\/+$/, ''), supabaseAnonKey };
}

function decodeJwtRole(key: string): string {
  try {
    const payload = key.split('.')[1];
    return String(JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))).role ?? '');
  } catch {
    return '';
  }
}
