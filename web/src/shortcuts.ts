// Keyboard shortcuts, listed on `?`. Single keys, ignored while typing in a field or with a modifier
// held, so they never take a letter from a search or a browser shortcut.
import { h } from './dom.ts';

export interface Shortcut {
  keys: string;
  what: string;
  run(): void;
}

function typing(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  return !!element && (element.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(element.tagName));
}

function showHelp(shortcuts: Shortcut[]): void {
  if (document.querySelector('dialog.shortcuts')) return;
  const opener = document.activeElement as HTMLElement | null;
  const close = h('button', { type: 'button', class: 'btn' }, 'Close');
  const dialog = h(
    'dialog',
    { class: 'confirm shortcuts', 'aria-labelledby': 'shortcuts-title' },
    h('h2', { id: 'shortcuts-title' }, 'Keyboard shortcuts'),
    h(
      'dl',
      null,
      ...shortcuts.flatMap((shortcut) => [h('dt', null, h('kbd', null, shortcut.keys)), h('dd', null, shortcut.what)]),
      h('dt', null, h('kbd', null, '?')),
      h('dd', null, 'this list'),
    ),
    h('div', { class: 'dialog-buttons' }, close),
  );
  const finish = () => {
    dialog.close();
    dialog.remove();
    opener?.focus();
  };
  close.addEventListener('click', finish);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}

/** Listens for the shortcuts; returns the function that stops listening. */
export function listenForShortcuts(shortcuts: Shortcut[]): () => void {
  const onKey = (event: KeyboardEvent) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented || typing(event.target)) return;
    if (document.querySelector('dialog[open]')) return;
    if (event.key === '?') {
      event.preventDefault();
      showHelp(shortcuts);
      return;
    }
    const shortcut = shortcuts.find((s) => s.keys === event.key);
    if (!shortcut) return;
    event.preventDefault();
    shortcut.run();
  };
  document.addEventListener('keydown', onKey);
  return () => document.removeEventListener('keydown', onKey);
}
