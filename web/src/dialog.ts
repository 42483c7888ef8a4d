// A confirmation asked in a native modal <dialog>: focus moves into it, Escape cancels, and focus
// returns to the button that opened it.
import { h } from './dom.ts';

export function confirmAction(options: { title: string; body: string[]; confirm: string; danger?: boolean }): Promise<boolean> {
  const opener = document.activeElement as HTMLElement | null;
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'btn', value: 'cancel' }, 'Cancel');
    const ok = h('button', { type: 'button', class: `btn ${options.danger ? 'btn-danger' : 'btn-primary'}`, value: 'ok' }, options.confirm);
    const dialog = h(
      'dialog',
      { class: 'confirm', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, options.title),
      ...options.body.map((text) => h('p', null, text)),
      h('div', { class: 'dialog-buttons' }, cancel, ok),
    );
    const finish = (answer: boolean) => {
      dialog.close();
      dialog.remove();
      opener?.focus();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    ok.addEventListener('click', () => finish(true));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
