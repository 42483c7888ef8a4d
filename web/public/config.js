// The only configuration of the dashboard: your Supabase project's URL and its publishable (anon) key,
// both found under Project Settings > API. Never put a service-role or secret key here: this file is
// public. The local stack (npm start) serves its own /config.js in place of this one.
window.AGENT_STATUS_CONFIG = {
  supabaseUrl: '',
  supabaseAnonKey: '',
};
