// User Timing names the page sets and the bench reads (tests/bench/dashboard.ts). A module of its
// own, importing nothing, so Node can load it without the page's stylesheets.
export const MARKS = {
  /** set once, after the first data is in the DOM and the next frame is painted */
  firstRender: 'agent-status:first-render',
  /** per poll: from the data arriving to the frame after the DOM was updated */
  apply: 'agent-status:apply',
  /** per poll: the synchronous part of that (diffing and DOM writes) */
  applyScript: 'agent-status:apply-script',
  /** logs on demand: from the request to the lines in the DOM */
  logs: 'agent-status:logs',
} as const;
