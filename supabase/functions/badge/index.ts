// GET /functions/v1/badge/agent/<name>.svg?key=asb_... and /badge/host/<host>.svg?key=...: an SVG
// badge with the status and 24 h availability, for a README or a wiki. An <img> sends no header, so
// the badge key (`agent-status token create badge`) rides in the URL: it can read badges and nothing
// else, and `agent-status token revoke` ends every URL that holds it.
import { renderBadge, renderProblemBadge } from '../../../shared/badge.ts';
import { createApp, refuseOtherMethods } from '../_shared/app.ts';
import { readBadge } from '../_shared/database.ts';
import { ApiError } from '../_shared/errors.ts';

const app = createApp('badge', { maxBytes: 1024, method: 'GET' });

const SVG = 'image/svg+xml; charset=utf-8';

app.get('/:of{agent|host}/:name', async (c) => {
  const name = c.req.param('name').replace(/\.svg$/, '');
  try {
    const facts = await readBadge(c.req.query('key') ?? null, c.req.param('of') === 'agent' ? { agent: name } : { host: name });
    // a minute: fresh enough for a README, and GitHub's image proxy honours it
    return c.body(renderBadge(facts), 200, { 'content-type': SVG, 'cache-control': 'max-age=60' });
  } catch (error) {
    // an <img> shows no JSON: the refusal is drawn, with its status code, so the README shows what is wrong
    if (!(error instanceof ApiError) || error.status >= 500) throw error;
    const problem =
      error.code === 'unauthorized'
        ? 'badge key unknown or revoked'
        : error.status === 404
          ? `no such ${c.req.param('of')}`
          : 'bad request';
    return c.body(renderProblemBadge(name, problem), error.status as 401, { 'content-type': SVG, 'cache-control': 'no-store' });
  }
});
refuseOtherMethods(app, 'badge', 'GET', '/:of{agent|host}/:name');

Deno.serve(app.fetch);
