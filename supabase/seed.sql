-- Data for a Docker-based `supabase start` / `supabase db reset` (npm start does not read this file:
-- it creates its own operator and prints the sign-in). The operator allowlist needs somebody: create
-- this user in the local Studio (Authentication > Add user) with a password of your choice, then sign
-- in to the dashboard with it.
select public.add_operator('operator@localhost.test');
