// The keys of the local stack, in the two styles a Supabase project has:
// - new (the default, what projects use now): a publishable key `sb_publishable_...` and a secret key
//   `sb_secret_...`, which are not JWTs, and user sessions signed with an asymmetric key (ES256) whose
//   public half is served as a JWKS. The gateway swaps each API key for a role JWT before PostgREST,
//   as Supabase's gateway does.
// - legacy: the anon and service_role keys are HS256 JWTs, and so are sessions, all with one secret.
// Everything is derived from one stored secret: a restart with the same secret prints the same keys,
// so nothing configured with them has to change. PostgREST trusts both the ES256 public key and the
// HS256 secret (a JWKS with both), as a project that moved to the new keys still accepts legacy tokens.
import { createECDH, createHmac, randomBytes } from 'node:crypto';
import { SignJWT, importJWK, jwtVerify, decodeProtectedHeader, type JWK, type JWTPayload, type CryptoKey } from 'jose';

export type KeyStyle = 'new' | 'legacy';
export type ApiRole = 'anon' | 'service_role';

const ISSUER = 'agent-status-local';
// Fixed times make the role tokens a function of the secret alone.
const API_KEY_ISSUED_AT = Date.UTC(2026, 0, 1) / 1000;
const API_KEY_EXPIRES_AT = Date.UTC(2046, 0, 1) / 1000;

export function createJwtSecret(): string {
  // PostgREST wants at least 32 characters.
  return randomBytes(32).toString('base64url');
}

function derive(secret: string, purpose: string): Buffer {
  return createHmac('sha256', secret).update(purpose).digest();
}

function hmacKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/** The ES256 key pair derived from the secret, as JWKs (the private one has `d`). */
function signingJwks(secret: string): { privateJwk: JWK; publicJwk: JWK } {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(derive(secret, 'es256 signing key'));
  const point = ecdh.getPublicKey(); // 0x04 || x || y
  const kid = derive(secret, 'es256 key id').toString('hex').slice(0, 16);
  const publicJwk: JWK = {
    kty: 'EC',
    crv: 'P-256',
    x: point.subarray(1, 33).toString('base64url'),
    y: point.subarray(33).toString('base64url'),
    kid,
    alg: 'ES256',
    use: 'sig',
  };
  return { publicJwk, privateJwk: { ...publicJwk, d: ecdh.getPrivateKey().toString('base64url') } };
}

export interface SessionClaims {
  sub: string;
  email: string;
  sessionId: string;
}

export interface StackKeys {
  style: KeyStyle;
  /** what browsers and hosts are given: `sb_publishable_...`, or the legacy anon JWT */
  publishableKey: string;
  /** what only trusted servers hold: `sb_secret_...`, or the legacy service_role JWT */
  secretKey: string;
  /** the public keys that verify session tokens (served at /auth/v1/.well-known/jwks.json) */
  jwks: { keys: JWK[] };
  /** PostgREST's jwt-secret: the ES256 public key and the legacy HS256 secret */
  postgrestSecret: string;
  /** the role an API key of this stack stands for, or undefined for anything else */
  apiKeyRole(key: string): ApiRole | undefined;
  /** the JWT the gateway sends PostgREST in place of an API key of that role */
  roleToken(role: ApiRole): string;
  /** a signed-in user's access token, with the claims Supabase Auth puts in it */
  signSession(claims: SessionClaims, expiresAt: number): Promise<string>;
  /** the verified claims of a token this stack signed (either style), or undefined */
  verify(token: string): Promise<JWTPayload | undefined>;
  /** the environment a deployed function gets for this key style */
  functionEnv(): Record<string, string>;
}

function signRole(role: ApiRole, alg: 'HS256' | 'ES256', key: Uint8Array | CryptoKey, kid?: string): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg, typ: 'JWT', ...(kid ? { kid } : {}) })
    .setIssuer(ISSUER)
    .setIssuedAt(API_KEY_ISSUED_AT)
    .setExpirationTime(API_KEY_EXPIRES_AT)
    .sign(key);
}

/** The legacy anon or service_role key: an HS256 JWT valid for years, like Supabase's local keys. */
export function signApiKey(secret: string, role: ApiRole): Promise<string> {
  return signRole(role, 'HS256', hmacKey(secret));
}

export async function createStackKeys(secret: string, style: KeyStyle = 'new'): Promise<StackKeys> {
  const { privateJwk, publicJwk } = signingJwks(secret);
  const privateKey = (await importJWK(privateJwk, 'ES256')) as CryptoKey;
  const publicKey = (await importJWK(publicJwk, 'ES256')) as CryptoKey;
  const legacy = { anon: await signApiKey(secret, 'anon'), service_role: await signApiKey(secret, 'service_role') };
  const modern = {
    anon: await signRole('anon', 'ES256', privateKey, publicJwk.kid),
    service_role: await signRole('service_role', 'ES256', privateKey, publicJwk.kid),
  };
  // Supabase's keys carry a random part and a short checksum; these are random-looking and stable.
  const opaque = (prefix: string, purpose: string) => `${prefix}${derive(secret, purpose).toString('base64url').slice(0, 31)}`;
  const apiKeys: Record<ApiRole, string> =
    style === 'new' ? { anon: opaque('sb_publishable_', 'publishable key'), service_role: opaque('sb_secret_', 'secret key') } : legacy;
  const roleTokens = style === 'new' ? modern : legacy;
  const jwks = { keys: style === 'new' ? [publicJwk] : [] };

  return {
    style,
    publishableKey: apiKeys.anon,
    secretKey: apiKeys.service_role,
    jwks,
    postgrestSecret: JSON.stringify({ keys: [publicJwk, { kty: 'oct', k: Buffer.from(secret).toString('base64url'), alg: 'HS256' }] }),
    apiKeyRole: (key) => (key === apiKeys.anon ? 'anon' : key === apiKeys.service_role ? 'service_role' : undefined),
    roleToken: (role) => roleTokens[role],
    signSession(claims, expiresAt) {
      const alg = style === 'new' ? 'ES256' : 'HS256';
      return new SignJWT({
        email: claims.email,
        role: 'authenticated',
        aal: 'aal1',
        session_id: claims.sessionId,
        app_metadata: { provider: 'email', providers: ['email'] },
        user_metadata: {},
        is_anonymous: false,
      })
        .setProtectedHeader({ alg, typ: 'JWT', ...(alg === 'ES256' ? { kid: publicJwk.kid } : {}) })
        .setIssuer(ISSUER)
        .setSubject(claims.sub)
        .setAudience('authenticated')
        .setIssuedAt()
        .setExpirationTime(expiresAt)
        .sign(alg === 'ES256' ? privateKey : hmacKey(secret));
    },
    async verify(token) {
      try {
        const { alg } = decodeProtectedHeader(token);
        const key = alg === 'ES256' ? publicKey : hmacKey(secret);
        const { payload } = await jwtVerify(token, key, { algorithms: [alg === 'ES256' ? 'ES256' : 'HS256'] });
        return payload;
      } catch {
        return undefined;
      }
    },
    functionEnv: (): Record<string, string> =>
      style === 'new'
        ? {
            SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: apiKeys.anon }),
            SUPABASE_SECRET_KEYS: JSON.stringify({ default: apiKeys.service_role }),
            SUPABASE_JWKS: JSON.stringify(jwks),
          }
        : { SUPABASE_ANON_KEY: apiKeys.anon, SUPABASE_SERVICE_ROLE_KEY: apiKeys.service_role },
  };
}
