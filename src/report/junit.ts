/**
 * `reports/junit.xml`: one testcase per check (classname `converter.model.target`, name `suite` or
 * `suite: prompt`), a failing check's verdict lines in its <failure>, a skipped cell as one skipped
 * testcase. CI systems (GitHub, GitLab, Jenkins) read this shape. Escaping is eta's (autoEscape), over
 * text first cleared of the characters XML 1.0 cannot carry at all.
 */
import { Eta } from 'eta';
import type { CellResult, CheckResult, ParityReport } from '../contracts/results.js';
import { verdictLine } from './ticket.js';

const eta = new Eta({ autoEscape: true, autoTrim: [false, 'nl'], useWith: false });

// eta trims the newline after each tag (autoTrim 'nl'): a line that is only a tag leaves nothing behind.
const TEMPLATE = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="tiny-model-ground-truth" tests="<%= it.tests %>" failures="<%= it.failures %>"
    skipped="<%= it.skipped %>" time="<%= it.time %>">
<% for (const s of it.suites) { %>
  <testsuite name="<%= s.name %>" tests="<%= s.cases.length %>" failures="<%= s.failures %>"
      skipped="<%= s.skipped %>" time="<%= s.time %>">
<% for (const c of s.cases) { %>
<% const empty = !c.failure && c.skipped === undefined && !c.output; %>
    <testcase classname="<%= c.classname %>" name="<%= c.name %>" time="<%= c.time %>"<% if (empty) { %>/>
<% } else { %>>
<% if (c.failure) { %>
      <failure message="<%= c.failure.message %>" type="<%= c.failure.type %>"><%= c.failure.body %></failure>
<% } else if (c.skipped !== undefined) { %>
      <skipped message="<%= c.skipped %>"/>
<% } else { %>
      <system-out><%= c.output %></system-out>
<% } %>
    </testcase>
<% } %>
<% } %>
  </testsuite>
<% } %>
</testsuites>
`;

interface Case {
  classname: string;
  name: string;
  time: string;
  failure?: { message: string; type: string; body: string };
  skipped?: string;
  output?: string;
}

/** XML 1.0 allows tab, LF, CR and U+0020 upward except surrogates (lone ones) and U+FFFE/U+FFFF; drop the rest. */
const XML_INVALID = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const xml = (s: string): string => s.replace(XML_INVALID, '\uFFFD');

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

function checkName(check: CheckResult): string {
  return check.prompt === undefined ? check.suite : `${check.suite}: ${check.prompt}`;
}

function casesOf(cell: CellResult): Case[] {
  const classname = xml(`${cell.converter}.${cell.model}.${cell.target}`);
  if (cell.status === 'skipped') return [{ classname, name: 'cell', time: seconds(0), skipped: xml(cell.reason) }];
  // Per-check durations are not recorded; the cell's time is spread evenly so the suite total stays right.
  const time = seconds(cell.checks.length > 0 ? cell.durationMs / cell.checks.length : 0);
  return cell.checks.map((check) => {
    const c: Case = { classname, name: xml(checkName(check)), time };
    const lines = check.verdicts.map((v) => verdictLine(cell, check, v));
    const failing = check.verdicts.filter((v) => v.status === 'fail');
    if (check.status === 'fail') {
      const first = failing[0] ?? check.verdicts[0];
      c.failure = {
        message: xml(first ? `${first.code}: ${first.message}` : 'failed'),
        type: first?.code ?? 'fail',
        body: xml(lines.join('\n')),
      };
    } else if (lines.length > 0) c.output = xml(lines.join('\n'));
    return c;
  });
}

/** JUnit XML of a report: one <testsuite> per converter, one <testcase> per check. */
export function renderJunit(report: ParityReport): string {
  const byConverter = new Map<string, CellResult[]>();
  for (const cell of report.cells) byConverter.set(cell.converter, [...(byConverter.get(cell.converter) ?? []), cell]);
  const suites = [...byConverter].map(([name, cells]) => {
    const cases = cells.flatMap(casesOf);
    return {
      name: xml(name),
      cases,
      failures: cases.filter((c) => c.failure).length,
      skipped: cases.filter((c) => c.skipped !== undefined).length,
      time: seconds(cells.reduce((a, c) => a + c.durationMs, 0)),
    };
  });
  return eta.renderString(TEMPLATE, {
    suites,
    tests: suites.reduce((a, s) => a + s.cases.length, 0),
    failures: suites.reduce((a, s) => a + s.failures, 0),
    skipped: suites.reduce((a, s) => a + s.skipped, 0),
    time: seconds(report.cells.reduce((a, c) => a + c.durationMs, 0)),
  });
}
