// Short messages after an action: what was sent, or what went wrong and what to do. Errors stay
// until dismissed; confirmations fade after a few seconds.
import { h } from './dom.ts';

export class Notices {
  readonly el = h('div', { class: 'notices', 'aria-live': 'polite' });

  show(message: string, kind: 'info' | 'error' = 'info'): void {
    const close = h('button', { type: 'button', class: 'close', 'aria-label': 'Dismiss' }, '×');
    const notice = h(
      'div',
      { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
      h('span', null, message),
      close,
    );
    close.addEventListener('click', () => notice.remove());
    this.el.append(notice);
    if (kind === 'info') setTimeout(() => notice.remove(), 5000);
    // Keep the list short when many actions fail at once.
    while (this.el.children.length > 4) this.el.firstElementChild!.remove();
  }
}
