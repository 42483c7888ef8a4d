// POST /functions/v1/report: started, stopped, status changes, warnings, errors and activity, one at a
// time or several in order ({"reports": [...]}), applied all or nothing.
import { parseReportRequest, REPORT_MAX_BYTES, type ReportResponse } from '../../../shared/api/report.ts';
import { describeIssues } from '../../../shared/api/parse.ts';
import { bearer, createApp, jsonBody, refuseOtherMethods } from '../_shared/app.ts';
import { applyReports } from '../_shared/database.ts';
import { ApiError } from '../_shared/errors.ts';

const app = createApp('report', { maxBytes: REPORT_MAX_BYTES });

app.post('/', async (c) => {
  const parsed = parseReportRequest(await jsonBody(c));
  if (!parsed.success)
    throw new ApiError('invalid_request', describeIssues(parsed.error), { hint: 'See docs/api.md for the report fields.' });
  const agents = await applyReports(bearer(c), parsed.reports);
  return c.json((parsed.batch ? { agents } : { agent: agents[0] }) satisfies ReportResponse);
});
refuseOtherMethods(app, 'report');

Deno.serve(app.fetch);
