// Agents as their own users: the account an agent runs as (`user:` and `group:` in the config), looked
// up the way the system does (getent, so NSS users from LDAP or sssd count too), and the check that a
// root runner's secrets are out of its agents' reach. A runner and its agents under one user share
// everything: an agent can read /proc/<runner>/environ (where an EnvironmentFile put the runner token)
// and the token file. Under a root runner each agent runs as its own user and cannot.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';

/** Who an agent runs as: uid and gid for the spawn, and the user's name and home for its environment. */
export interface Account {
  user: string;
  uid: number;
  gid: number;
  home: string;
}

// getent answers "name:x:uid:gid:..." lines; a number is looked up as an id. Exit 2 means no such entry.
function getent(database: 'passwd' | 'group', key: string): string[] | undefined {
  try {
    return execFileSync('getent', [database, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')[0]
      .split(':');
  } catch {
    return undefined;
  }
}

/** The account of `user` (a name or a uid), in `group` (a name or a gid) or else the user's own group. */
export function lookupAccount(user: string | number, group?: string | number): Account | { problem: string; field: 'user' | 'group' } {
  const entry = getent('passwd', String(user));
  if (!entry) {
    return {
      field: 'user',
      problem: `there is no user ${JSON.stringify(user)} on this host; create it (useradd --system ${user}) or fix the name`,
    };
  }
  let gid = Number(entry[3]);
  if (group !== undefined) {
    const groupEntry = getent('group', String(group));
    if (!groupEntry) {
      return {
        field: 'group',
        problem: `there is no group ${JSON.stringify(group)} on this host; create it (groupadd --system ${group}) or fix the name`,
      };
    }
    gid = Number(groupEntry[2]);
  }
  return { user: entry[0], uid: Number(entry[2]), gid, home: entry[5] };
}

/**
 * What `account` may do to `path` by its mode bits: owner bits if it owns it, group bits if the file's
 * group is its group, else the bits for others. Only the primary group counts: Node (libuv) clears
 * the supplementary groups of a child it starts with another uid. ACLs are not read.
 */
function access(path: string, account: Account): { read: boolean; write: boolean; owner: number; mode: number } | undefined {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch {
    return undefined;
  }
  const shift = stat.uid === account.uid ? 6 : stat.gid === account.gid ? 3 : 0;
  const bits = (Number(stat.mode) >> shift) & 7;
  return { read: (bits & 4) !== 0, write: (bits & 2) !== 0, owner: Number(stat.uid), mode: Number(stat.mode) & 0o7777 };
}

// Whether the account can replace `file` through its folder: a writable folder lets it rename the file
// away and put its own in its place, unless the folder is sticky (/tmp) and the file is not its own.
function replaceable(file: string, account: Account): boolean {
  const folder = access(dirname(file), account);
  if (!folder?.write) return false;
  const sticky = (folder.mode & 0o1000) !== 0;
  return !sticky || access(file, account)?.owner === account.uid;
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

export interface GuardedFiles {
  /** the config file: whoever can change it chooses what runs as root */
  config: string;
  /** the runner token's file, when the token comes from one */
  tokenFile?: string;
  /** lock, state and logs */
  stateDir: string;
}

/**
 * Every way one of `accounts` could take the runner's place under a root runner: read the token file,
 * change or replace the config file or the token file, write in the state folder. One line each.
 */
export function exposures(files: GuardedFiles, accounts: Account[]): string[] {
  const problems: string[] = [];
  for (const account of accounts) {
    if (account.uid === 0) continue;
    const who = `user ${account.user} (uid ${account.uid}, gid ${account.gid})`;
    for (const [what, file] of [
      ['the config file', files.config],
      ['the token file', files.tokenFile],
    ] as const) {
      if (!file) continue;
      const mode = access(file, account);
      if (what === 'the token file' && mode?.read) {
        problems.push(`${what} ${file} is readable by ${who} (mode ${octal(mode.mode)}): chown root and chmod 600 it`);
      }
      if (mode?.write) problems.push(`${what} ${file} is writable by ${who} (mode ${octal(mode.mode)}): chown root and chmod 600 it`);
      else if (replaceable(file, account)) {
        problems.push(`${what} ${file} can be replaced by ${who}: its folder ${dirname(file)} is writable by that user; make it root's`);
      }
    }
    const state = access(files.stateDir, account);
    if (state?.write) {
      problems.push(`the state folder ${files.stateDir} is writable by ${who} (mode ${octal(state.mode)}): chown root and chmod 700 it`);
    }
  }
  return problems;
}
