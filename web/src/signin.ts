// The screens before the dashboard: sign in, "signed in but not an operator", and configuration or
// connection problems. Each says what happened and what to do next.
import type { SupabaseClient } from '@supabase/supabase-js';
import { h, replace } from './dom.ts';

export function showSignIn(root: HTMLElement, client: SupabaseClient, message = ''): void {
  const email = h('input', { id: 'email', type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'password', type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const error = h('p', { class: 'form-error', role: 'alert' }, message);
  const form = h(
    'form',
    { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Agent status'),
    h('p', { class: 'muted' }, 'Sign in with your operator account.'),
    h('label', { for: 'email' }, 'Email'),
    email,
    h('label', { for: 'password' }, 'Password'),
    password,
    error,
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    const { error: failure } = await client.auth.signInWithPassword({ email: email.value.trim(), password: password.value });
    submit.disabled = false;
    // On success the auth state listener in main.ts takes over.
    if (failure) {
      error.textContent = /fetch|network/i.test(failure.message)
        ? `Cannot reach the sign-in service: ${failure.message}. Check your connection and try again.`
        : `${failure.message}. Check the email and password.`;
      password.select();
    }
  });
  replace(root, h('main', { class: 'center' }, form));
  email.focus();
}

export function showNotOperator(root: HTMLElement, email: string, signOut: () => void): void {
  const button = h('button', { type: 'button', class: 'btn', on: { click: signOut } }, 'Sign out');
  replace(
    root,
    h(
      'main',
      { class: 'center' },
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'not-operator-title' },
        h('h1', { id: 'not-operator-title' }, 'You are signed in, but not an operator'),
        h(
          'p',
          null,
          `${email} can sign in, but is not on this project's operator list, so no agents are shown and no commands can be sent.`,
        ),
        h('p', null, 'Ask an operator to add you:'),
        h('pre', null, `agent-status operator add ${email}`),
        h('p', null, 'then reload this page.'),
        button,
      ),
    ),
  );
  button.focus();
}

export function showProblem(root: HTMLElement, title: string, message: string, action?: { label: string; run: () => void }): void {
  replace(
    root,
    h(
      'main',
      { class: 'center' },
      h(
        'section',
        { class: 'card', role: 'alert' },
        h('h1', null, title),
        h('p', null, message),
        action && h('button', { type: 'button', class: 'btn', on: { click: action.run } }, action.label),
      ),
    ),
  );
}
