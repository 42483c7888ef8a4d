// The two styles of Supabase API keys: publishable (`sb_publishable_...`) and secret (`sb_secret_...`)
// keys, which are not JWTs, and the legacy anon and service_role keys, which are. Hosts and browsers
// get a publishable key only; this tells a secret one apart in either style, with what to say.

/** Why the key must not be used where a publishable key belongs, or undefined when it is not secret. */
export function secretKeyProblem(key: string): string | undefined {
  if (key.startsWith('sb_secret_')) return 'it is a secret key (sb_secret_...)';
  if (/service_role/.test(jwtRole(key))) return 'it is the service-role key';
  return undefined;
}

function jwtRole(key: string): string {
  try {
    const payload = key.split('.')[1];
    return String(JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))).role ?? '');
  } catch {
    return '';
  }
}
