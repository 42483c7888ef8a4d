-- Supabase compatibility: what a hosted Supabase project already has and a vanilla PostgreSQL 15
-- (the test harness, `npm start --db postgres`, any DATABASE_URL) lacks. Every statement is guarded,
-- so on Supabase this migration changes nothing.

-- The API roles PostgREST switches into. Supabase creates them with these attributes.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;

do $$
begin
  -- granting a role twice is harmless but noisy on Supabase, where authenticator is not ours to alter
  if not pg_has_role('authenticator', 'anon', 'member') then
    grant anon, authenticated, service_role to authenticator;
  end if;
exception when insufficient_privilege then
  raise notice 'authenticator role left as it is: %', sqlerrm;
end
$$;

-- auth.uid(), auth.role() and auth.jwt() read the claims PostgREST puts in request.jwt.claims, exactly
-- as Supabase's own definitions do. Created only where Supabase Auth is absent.
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

do $$
begin
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb
      language sql stable
      as $f$
        select coalesce(
          nullif(current_setting('request.jwt.claim', true), ''),
          nullif(current_setting('request.jwt.claims', true), '')
        )::jsonb
      $f$;
  end if;
  if to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid
      language sql stable
      as $f$
        select coalesce(
          nullif(current_setting('request.jwt.claim.sub', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
        )::uuid
      $f$;
  end if;
  if to_regprocedure('auth.role()') is null then
    create function auth.role() returns text
      language sql stable
      as $f$
        select coalesce(
          nullif(current_setting('request.jwt.claim.role', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
        )::text
      $f$;
  end if;
end
$$;

-- Supabase keeps extensions in their own schema; pgcrypto gives us gen_random_bytes for tokens.
create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;
