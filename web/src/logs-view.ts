// Logs on demand on an agent's page: the operator asks for the last N lines, the agent's runner reads
// them from the agent's files on its host and answers through the database within 2 s (half a
// second while someone reads); Refresh asks again, Follow asks every 2 s while the page is open.
// Nothing is shipped unless asked.
import type { SupabaseClient } from '@supabase/supabase-js';
import { fetchLogAnswer, requestLogs, type LogAnswer } from './api.ts';
import { h, replace, setText } from './dom.ts';
import { MARKS } from './marks.ts';

const FOLLOW_EVERY_MS = 2000;
const ANSWER_POLL_MS = 150;
const ANSWER_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class LogsView {
  readonly el: HTMLElement;
  private readonly lines: HTMLSelectElement;
  private readonly fetchButton: HTMLButtonElement;
  private readonly follow: HTMLInputElement;
  private readonly state: HTMLSpanElement;
  private readonly output: HTMLDivElement;
  private name: string | undefined;
  private generation = 0;
  private busy = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private shown: LogAnswer | undefined;

  constructor(private readonly client: SupabaseClient) {
    this.lines = h(
      'select',
      { id: 'log-lines', 'aria-label': 'Lines of each stream' },
      ...[50, 200, 500].map((n) => h('option', { value: String(n), selected: n === 200 }, `last ${n} lines`)),
    );
    this.fetchButton = h('button', { type: 'button', class: 'btn', on: { click: () => void this.ask() } }, 'Show logs');
    this.follow = h('input', { type: 'checkbox', id: 'log-follow', on: { change: () => this.setFollow(this.follow.checked) } });
    this.state = h('span', { class: 'muted small', role: 'status' });
    this.output = h('div', { class: 'log-output' });
    this.el = h(
      'div',
      { class: 'logs' },
      h('div', { class: 'logs-tools' }, this.lines, this.fetchButton, h('label', { class: 'follow' }, this.follow, ' Follow'), this.state),
      this.output,
    );
  }

  /** Another agent's page: nothing asked yet. */
  open(name: string): void {
    this.close();
    this.name = name;
    this.shown = undefined;
    replace(this.output, h('p', { class: 'muted' }, 'Ask the runner on its host for the lines the agent printed last.'));
    setText(this.fetchButton, 'Show logs');
    setText(this.state, '');
  }

  /** Stops following (the page was left). */
  close(): void {
    this.generation++;
    clearTimeout(this.timer);
    this.follow.checked = false;
    this.busy = false;
  }

  setFollow(on: boolean): void {
    this.follow.checked = on;
    clearTimeout(this.timer);
    if (on) void this.ask();
  }

  /** Asks for the lines now; shows them when the runner answers. */
  async ask(): Promise<void> {
    const name = this.name;
    if (!name || this.busy) return;
    const generation = this.generation;
    this.busy = true;
    this.fetchButton.disabled = true;
    const asked = performance.now();
    setText(this.state, this.shown ? 'Refreshing…' : 'Asking the runner…');
    try {
      const id = await requestLogs(this.client, name, Number(this.lines.value));
      let answer = await fetchLogAnswer(this.client, id);
      const deadline = performance.now() + ANSWER_TIMEOUT_MS;
      while (!answer.answered_at && generation === this.generation) {
        if (performance.now() > deadline) {
          throw new Error(`no answer from the runner of ${name} within ${ANSWER_TIMEOUT_MS / 1000} s: is it running?`);
        }
        await sleep(ANSWER_POLL_MS);
        answer = await fetchLogAnswer(this.client, id);
      }
      if (generation !== this.generation) return;
      this.paint(answer);
      performance.measure(MARKS.logs, { start: asked, end: performance.now() });
      setText(this.state, `answered in ${((performance.now() - asked) / 1000).toFixed(1)} s${this.follow.checked ? ', following' : ''}`);
    } catch (error) {
      if (generation === this.generation) setText(this.state, (error as Error).message);
    } finally {
      if (generation === this.generation) {
        this.busy = false;
        this.fetchButton.disabled = false;
        setText(this.fetchButton, 'Refresh');
        if (this.follow.checked) this.timer = setTimeout(() => void this.ask(), FOLLOW_EVERY_MS);
      }
    }
  }

  private paint(answer: LogAnswer): void {
    this.shown = answer;
    if (answer.error) {
      replace(this.output, h('p', { class: 'notice notice-error' }, answer.error));
      return;
    }
    const block = (label: string, lines: string[], className: string) => {
      const pre = h(
        'pre',
        { class: `log ${className}`, tabindex: '0', 'aria-label': label },
        lines.length ? lines.join('\n') : '(nothing)',
      );
      return h('figure', null, h('figcaption', { class: 'muted' }, `${label}: ${lines.length} line${lines.length === 1 ? '' : 's'}`), pre);
    };
    // keep a reader who scrolled up where they are; follow the end otherwise
    const previous = this.output.querySelectorAll<HTMLPreElement>('pre.log');
    const atEnd = [...previous].map((pre) => pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4);
    replace(this.output, block('stdout', answer.stdout ?? [], 'stdout'), block('stderr', answer.stderr ?? [], 'stderr'));
    this.output.querySelectorAll<HTMLPreElement>('pre.log').forEach((pre, i) => {
      if (atEnd[i] ?? true) pre.scrollTop = pre.scrollHeight;
    });
  }
}
