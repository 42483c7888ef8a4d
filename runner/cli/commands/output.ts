// Human output for a terminal and JSON for scripts. Colour only when the stream is a terminal and
// NO_COLOR is unset (https://no-color.org), so piped output and logs stay plain text.
import { styleText, stripVTControlCharacters } from 'node:util';
import type { AgentStatus } from '../../../shared/status.ts';

type Style = Parameters<typeof styleText>[0];

function colourOn(stream: NodeJS.WriteStream): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY);
}

/** Colour functions that do nothing unless `stream` is a terminal. */
export function painter(stream: NodeJS.WriteStream = process.stdout) {
  const on = colourOn(stream);
  const paint = (style: Style) => (text: string) => (on ? styleText(style, text) : text);
  return {
    red: paint('red'),
    green: paint('green'),
    yellow: paint('yellow'),
    cyan: paint('cyan'),
    dim: paint('dim'),
    bold: paint('bold'),
  };
}

const STATUS_STYLE: Record<AgentStatus, keyof ReturnType<typeof painter>> = {
  running: 'green',
  warning: 'yellow',
  error: 'red',
  stale: 'red',
  stopped: 'dim',
};

/** A status word in its colour. */
export function paintStatus(status: string, stream: NodeJS.WriteStream = process.stdout): string {
  const style = STATUS_STYLE[status as AgentStatus];
  return style ? painter(stream)[style](status) : status;
}

/** Columns padded to their widest cell (colour codes do not count towards the width). */
export function table(header: string[], rows: string[][]): string {
  const width = (cell: string) => stripVTControlCharacters(cell).length;
  const widths = header.map((title, i) => Math.max(width(title), ...rows.map((row) => width(row[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i] - width(cell))))
      .join('  ')
      .trimEnd();
  return [line(header.map((title) => painter().bold(title))), ...rows.map(line)].join('\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** "12 s", "3 min", "2 h", "4 d". */
export function span(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago"; "never" for no time. */
export function ago(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return 'never';
  return `${span(seconds)} ago`;
}

/** Cuts text to one line of at most `max` characters. */
export function oneLine(text: string | null | undefined, max = 60): string {
  const flat = (text ?? '').replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
