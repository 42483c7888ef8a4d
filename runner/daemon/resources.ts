// CPU and memory of each supervised agent, what PM2's `monit` shows: the sum over the agent's process
// group (the agent and whatever it started, which stays in its group unless it calls setsid; an
// adopted agent that leads no group counts alone), read
// from /proc/<pid>/stat in one pass over /proc. CPU is the average since the previous reading (or,
// for a group first seen, since its leader started), in percent of one core; memory is resident
// set size now. One pass over ~500 processes takes about 2 ms here; the runner makes one per send.
import { readdirSync, readFileSync } from 'node:fs';

export interface ResourceSample {
  name: string;
  /** percent of one core: 200 is two cores busy */
  cpu_percent: number;
  memory_bytes: number;
  processes: number;
}

// USER_HZ: the unit of /proc's CPU times. Linux fixes it at 100 for user space on every architecture.
const TICKS_PER_SECOND = 100;

let pageSize: number | undefined;
// The kernel's page size (4 kB on x86, 4 or 64 kB on ARM), from this process's own resident size
// read two ways: /proc/self/statm in pages and /proc/self/status in kB.
function kernelPageSize(): number {
  if (pageSize === undefined) {
    try {
      const pages = Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]);
      const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
      pageSize = 2 ** Math.round(Math.log2((kb * 1024) / pages));
    } catch {
      pageSize = 4096;
    }
    if (!Number.isFinite(pageSize) || pageSize < 4096) pageSize = 4096;
  }
  return pageSize;
}

function uptimeSeconds(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

interface GroupTotals {
  ticks: number;
  rssPages: number;
  processes: number;
  /** the leader's start, in ticks since boot */
  leaderStart: number;
}

/** Readings of process groups over time, so CPU can be told as a rate. */
export class ResourceSampler {
  private readonly previous = new Map<number, { ticks: number; at: number; leaderStart: number }>();

  /** One reading of each agent's group (agent name -> the pid of its main process, the group's leader). */
  sample(groups: Map<string, number>): ResourceSample[] {
    const wanted = new Map<number, GroupTotals>();
    for (const pgid of groups.values()) wanted.set(pgid, { ticks: 0, rssPages: 0, processes: 0, leaderStart: 0 });
    if (!wanted.size) return [];
    const at = uptimeSeconds();
    for (const entry of readdirSync('/proc')) {
      if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // ended while we were reading
      }
      // fields after the command name: state ppid pgrp ... utime(11) stime cutime cstime ... starttime(19) vsize rss(21)
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const totals = wanted.get(Number(fields[2])) ?? wanted.get(Number(entry));
      if (!totals || fields[0] === 'Z') continue;
      // cutime and cstime: the CPU of children already reaped, so a short-lived helper's work counts
      totals.ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      totals.rssPages += Number(fields[21]);
      totals.processes++;
      if (wanted.has(Number(entry))) totals.leaderStart = Number(fields[19]);
    }
    const samples: ResourceSample[] = [];
    const seen = new Set<number>();
    for (const [name, pgid] of groups) {
      const totals = wanted.get(pgid)!;
      if (!totals.processes) continue;
      seen.add(pgid);
      const before = this.previous.get(pgid);
      // a different leader start means the pid (and group id) was reused: not the same agent run
      const since = before && before.leaderStart === totals.leaderStart ? before : { ticks: 0, at: totals.leaderStart / TICKS_PER_SECOND };
      const seconds = at - since.at;
      const cpu = seconds > 0 ? Math.max(0, (totals.ticks - since.ticks) / TICKS_PER_SECOND / seconds) * 100 : 0;
      this.previous.set(pgid, { ticks: totals.ticks, at, leaderStart: totals.leaderStart });
      samples.push({
        name,
        cpu_percent: Math.round(cpu * 10) / 10,
        memory_bytes: totals.rssPages * kernelPageSize(),
        processes: totals.processes,
      });
    }
    for (const pgid of this.previous.keys()) if (!seen.has(pgid)) this.previous.delete(pgid);
    return samples;
  }
}
