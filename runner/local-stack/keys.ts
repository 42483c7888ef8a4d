// The keys of the local stack, signed the way `supabase start` signs its own: HS256 JWTs with one
// secret that PostgREST, the auth stand-in and the edge functions all trust.
import { randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, type JWTPayload } from 'jose';

const ISSUER = 'agent-status-local';
// Fixed times make the keys a function of the secret alone: a restart with the same secret prints
// the same keys, so nothing configured with them has to change.
const API_KEY_ISSUED_AT = Date.UTC(2026, 0, 1) / 1000;
const API_KEY_EXPIRES_AT = Date.UTC(2046, 0, 1) / 1000;

export type ApiRole = 'anon' | 'service_role';

export function createJwtSecret(): string {
  // PostgREST wants at least 32 characters.
  return randomBytes(32).toString('base64url');
}

function key(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/** The anon (publishable) or service-role key; like Supabase's local keys, valid for years. */
export function signApiKey(secret: string, role: ApiRole): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setIssuedAt(API_KEY_ISSUED_AT)
    .setExpirationTime(API_KEY_EXPIRES_AT)
    .sign(key(secret));
}

export interface SessionClaims {
  sub: string;
  email: string;
  sessionId: string;
}

/** A signed-in user's access token, with the claims Supabase Auth puts in it. */
export function signAccessToken(secret: string, claims: SessionClaims, expiresAt: number): Promise<string> {
  return new SignJWT({
    email: claims.email,
    role: 'authenticated',
    aal: 'aal1',
    session_id: claims.sessionId,
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: {},
    is_anonymous: false,
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setSubject(claims.sub)
    .setAudience('authenticated')
    .setIssuedAt()
    .setExpirationTime(expiresAt)
    .sign(key(secret));
}

/** The verified claims of a token signed with this secret, or undefined when it is not one. */
export async function verifyJwt(secret: string, token: string): Promise<JWTPayload | undefined> {
  try {
    const { payload } = await jwtVerify(token, key(secret), { algorithms: ['HS256'] });
    return payload;
  } catch {
    return undefined;
  }
}
