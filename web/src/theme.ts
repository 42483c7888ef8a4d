// Light or dark: the system's setting by default (and live, when the system switches at dusk), or
// the operator's choice, kept in this browser. The page's colours are CSS variables that
// :root[data-theme="dark"] redefines (styles.css); this only decides the attribute.
import { h } from './dom.ts';

export type ThemeChoice = 'system' | 'light' | 'dark';
const KEY = 'agent-status-theme';
const CHOICES: ThemeChoice[] = ['system', 'light', 'dark'];
const systemDark = () => window.matchMedia('(prefers-color-scheme: dark)');

function stored(): ThemeChoice {
  const value = localStorage.getItem(KEY);
  return CHOICES.includes(value as ThemeChoice) ? (value as ThemeChoice) : 'system';
}

function resolve(choice: ThemeChoice): 'light' | 'dark' {
  return choice === 'system' ? (systemDark().matches ? 'dark' : 'light') : choice;
}

function apply(choice: ThemeChoice): void {
  document.documentElement.dataset.theme = resolve(choice);
}

/** Applies the stored choice now and follows the system's setting while the choice is "system". */
export function initTheme(): void {
  apply(stored());
  systemDark().addEventListener('change', () => apply(stored()));
}

export function setTheme(choice: ThemeChoice): void {
  if (choice === 'system') localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, choice);
  apply(choice);
  for (const select of document.querySelectorAll<HTMLSelectElement>('select.theme-choice')) select.value = choice;
}

/** Flips between light and dark as they look now (the `t` shortcut). */
export function toggleTheme(): void {
  setTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark');
}

/** The header's control: System, Light, Dark. */
export function themeControl(): HTMLLabelElement {
  const select = h(
    'select',
    { class: 'theme-choice', 'aria-label': 'Colour theme', on: { change: () => setTheme(select.value as ThemeChoice) } },
    h('option', { value: 'system' }, 'Theme: system'),
    h('option', { value: 'light' }, 'Theme: light'),
    h('option', { value: 'dark' }, 'Theme: dark'),
  );
  select.value = stored();
  return h('label', { class: 'theme' }, select);
}
