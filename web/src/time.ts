// Time as the database tells it. The live view returns its own now() (observed_at) and ages computed
// against it; the browser only adds the time elapsed since that answer arrived, measured with its
// monotonic clock. The browser's wall clock is never compared with a database timestamp, so a
// skewed laptop clock cannot make an agent look fresh or silent.

export class DbClock {
  constructor(
    /** the database's now() at the read, in ms since the epoch */
    readonly observedAt: number,
    /** performance.now() when that read arrived */
    readonly receivedAt: number,
  ) {}

  /** Seconds elapsed locally since the read arrived. */
  elapsed(): number {
    return Math.max(0, (performance.now() - this.receivedAt) / 1000);
  }

  /** The database's current time, estimated. */
  now(): number {
    return this.observedAt + this.elapsed() * 1000;
  }

  /** Seconds since a database timestamp, by the database's clock. */
  since(timestamp: string | null): number | null {
    return timestamp === null ? null : Math.max(0, (this.now() - Date.parse(timestamp)) / 1000);
  }
}

/** "now", "12 s ago", "4 min ago", "3 h ago", "2 d ago". */
export function formatAgo(seconds: number | null): string {
  if (seconds === null) return 'never';
  if (seconds < 1) return 'now';
  return `${formatDuration(seconds)} ago`;
}

/** "12 s", "4 min", "3 h 5 min", "2 d 4 h". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '–';
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) {
    const m = Math.floor((s % 3600) / 60);
    return `${Math.floor(s / 3600)} h${m ? ` ${m} min` : ''}`;
  }
  const hours = Math.floor((s % 86400) / 3600);
  return `${Math.floor(s / 86400)} d${hours ? ` ${hours} h` : ''}`;
}

/** A database timestamp as local date and time, for history rows. */
export function formatTimestamp(timestamp: string): string {
  return new Date(timestamp).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}
