// Says where the data comes from and how fresh it is: "Live (Realtime)" or "Polling every 2.5 s",
// the age of the last data, and a banner while the API is unreachable (the table then stays on
// screen, marked old, until the next successful poll).
import { h, setText } from './dom.ts';
import type { FeedState } from './live.ts';
import { formatAgo } from './time.ts';

export class ConnectionView {
  readonly indicator: HTMLDivElement;
  readonly banner: HTMLDivElement;
  private readonly mode: HTMLSpanElement;
  private readonly age: HTMLSpanElement;
  private readonly bannerText: HTMLSpanElement;
  private state: FeedState = { mode: 'connecting', lastDataAt: null, error: null };

  constructor(
    private readonly pollMs: number,
    private readonly apiUrl: string,
    private readonly onOld: (old: boolean) => void,
  ) {
    this.mode = h('span', { class: 'mode' });
    this.age = h('span', { class: 'age' });
    this.indicator = h('div', { class: 'live', role: 'status', 'aria-live': 'off' }, this.mode, ' · ', this.age);
    this.bannerText = h('span');
    this.banner = h('div', { class: 'banner', role: 'alert', hidden: true }, this.bannerText);
  }

  setState(state: FeedState): void {
    const wasOld = this.state.error !== null;
    this.state = state;
    this.indicator.dataset.mode = state.error ? 'down' : state.mode;
    const seconds = (this.pollMs / 1000).toLocaleString();
    setText(this.mode, state.error ? 'API unreachable' : state.mode === 'realtime' ? 'Live (Realtime)' : `Polling every ${seconds} s`);
    this.banner.hidden = state.error === null;
    if (state.error !== null) {
      setText(
        this.bannerText,
        `Cannot reach the API at ${this.apiUrl}: ${state.error}. Showing the last data received, marked old; retrying automatically.`,
      );
    }
    if (wasOld !== (state.error !== null)) this.onOld(state.error !== null);
    this.tick();
  }

  tick(): void {
    const { lastDataAt } = this.state;
    setText(this.age, lastDataAt === null ? 'no data yet' : `data ${formatAgo((performance.now() - lastDataAt) / 1000)}`);
  }
}
