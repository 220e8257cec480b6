import nodemailer from 'nodemailer';
import type { StudentReport, Summary, Total } from './report.js';

/** The notification emails, and the SMTP connection that sends them. */

export interface SmtpSettings {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly user?: string;
  readonly pass?: string;
}

export interface Message {
  readonly to: { name: string; address: string } | string;
  readonly subject: string;
  readonly text: string;
  readonly attachments?: { filename: string; content: string; contentType: string }[];
}

export interface Mailer {
  /** Resolves once the SMTP server accepted the message; its Message-ID. */
  send(message: Message): Promise<string>;
  close(): void;
}

export function createMailer(smtp: SmtpSettings, from: string): Mailer {
  // One pooled connection for the whole run rather than one per student.
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    pool: true,
    maxConnections: 1,
    connectionTimeout: 30_000,
    ...(smtp.user && { auth: { user: smtp.user, pass: smtp.pass ?? '' } }),
  });
  return {
    async send(message) {
      // Quoted-printable keeps the text readable in the raw message whatever names it holds.
      const info = await transport.sendMail({ from, textEncoding: 'quoted-printable', ...message });
      return info.messageId;
    },
    close: () => transport.close(),
  };
}

const totalText = (t: Total) => `${t.points}/${t.maxPoints} points, ${t.percent}%, grade ${t.grade}`;

/** For a student with at least one scored test (`report.total` set). */
export function studentMessage(
  report: StudentReport & { email: string; name: string; total: Total },
  range: { from: string; to: string },
): Message {
  const lines = [
    `Hello ${report.name},`,
    '',
    `here are your test results for week ${report.week} (${range.from} to ${range.to}):`,
    '',
    ...report.tests.map((t) => `- ${t.title} (${t.testId}): ${totalText(t)}`),
    '',
    `Total: ${totalText(report.total)}`,
  ];
  if (report.invalid.length > 0) {
    lines.push(
      '',
      'These submissions could not be scored; your trainer has been told:',
      ...report.invalid.map((i) => `- ${i.testId}: ${i.reason}`),
    );
  }
  return {
    to: { name: report.name, address: report.email },
    subject: `Your test results for week ${report.week}: ${report.total.percent}% (${report.total.grade})`,
    text: `${lines.join('\n')}\n`,
  };
}

export function trainerMessage(summary: Summary, csv: string, to: string, keys: { summaryJson: string; summaryCsv: string }): Message {
  const lines = [
    `Week ${summary.week} (${summary.from} to ${summary.to}): ${summary.students} students, ${summary.submissions} submissions, ${summary.scored} scored, ${summary.invalid} invalid.`,
    '',
    'Students:',
    ...(summary.perStudent.length === 0 ? ['- (no submissions this week)'] : []),
    ...summary.perStudent.map(
      (s) =>
        `- ${s.name ?? s.studentId} (${s.studentId}): ${s.total ? `${totalText(s.total)} over ${s.tests} test(s)` : 'nothing scored'}${s.invalid ? `, ${s.invalid} invalid` : ''}`,
    ),
  ];
  if (summary.perTest.length > 0) {
    lines.push(
      '',
      'Tests:',
      ...summary.perTest.map((t) => `- ${t.title} (${t.testId}): ${t.submissions} submission(s), average ${t.averagePercent}%`),
    );
  }
  if (summary.invalidSubmissions.length > 0) {
    lines.push('', 'Not scored (fix and run the task again for this week; students already emailed are not emailed again):');
    lines.push(...summary.invalidSubmissions.map((i) => `- ${i.key}: ${i.reason}`));
  }
  if (summary.ignoredKeys.length > 0)
    lines.push('', 'Ignored (not <studentId>/<testId>.json):', ...summary.ignoredKeys.map((k) => `- ${k}`));
  lines.push('', `Full reports: ${keys.summaryJson} and ${keys.summaryCsv} (attached).`);
  return {
    to,
    subject: `Weekly test summary ${summary.week}: ${summary.students} students, ${summary.scored} scored, ${summary.invalid} invalid`,
    text: `${lines.join('\n')}\n`,
    attachments: [{ filename: `summary-${summary.week}.csv`, content: csv, contentType: 'text/csv; charset=utf-8' }],
  };
}
