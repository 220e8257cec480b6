/**
 * ISO 8601 weeks (Monday to Sunday; week 1 holds the year's first Thursday) read in a
 * time zone. The zone matters: Monday 00:30 in Vienna is still Sunday in UTC, so a week
 * computed from the UTC date would be the previous one for the first hour or two.
 */

export interface IsoWeek {
  readonly year: number;
  readonly week: number;
}

const WEEK_TEXT = /^(\d{4})-W(\d{2})$/;
const DAY_MS = 86_400_000;

/** `2026-W47`. */
export function formatWeek({ year, week }: IsoWeek): string {
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/** Parses `2026-W47`; undefined for anything else, also for week 53 of a 52-week year. */
export function parseWeek(text: string): IsoWeek | undefined {
  const m = WEEK_TEXT.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const week = Number(m[2]);
  if (week < 1 || week > weeksInYear(year)) return undefined;
  return { year, week };
}

/** The calendar date (as a UTC-midnight Date) that `instant` falls on in `timeZone`. */
export function localDate(instant: Date, timeZone: string): Date {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric' }).formatToParts(instant);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return new Date(Date.UTC(get('year'), get('month') - 1, get('day')));
}

/** The ISO week of a calendar date (given as UTC midnight). */
export function isoWeekOfDate(date: Date): IsoWeek {
  // The Thursday of the date's week decides the year the week belongs to.
  const isoDay = date.getUTCDay() || 7;
  const thursday = new Date(date.getTime() + (4 - isoDay) * DAY_MS);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / DAY_MS / 7) + 1;
  return { year, week };
}

export function weeksInYear(year: number): number {
  // December 28th is always in the year's last week.
  return isoWeekOfDate(new Date(Date.UTC(year, 11, 28))).week;
}

/** The Monday and Sunday of a week, as `YYYY-MM-DD`. */
export function weekDates({ year, week }: IsoWeek): { monday: string; sunday: string } {
  const jan4 = new Date(Date.UTC(year, 0, 4));
  const week1Monday = jan4.getTime() - ((jan4.getUTCDay() || 7) - 1) * DAY_MS;
  const monday = new Date(week1Monday + (week - 1) * 7 * DAY_MS);
  const sunday = new Date(monday.getTime() + 6 * DAY_MS);
  return { monday: monday.toISOString().slice(0, 10), sunday: sunday.toISOString().slice(0, 10) };
}

/**
 * The week a run scores: the last complete ISO week before `instant`, in `timeZone`, i.e.
 * the week before the one `instant` falls in. The cron tick (Monday 23:00 Vienna) thus
 * scores the Monday-to-Sunday that ended 23 hours earlier, which leaves a late upload on
 * Sunday night a day to land, and a manual run without a week on any day scores the same
 * week as that Monday's tick did.
 */
export function weekToScore(instant: Date, timeZone: string): IsoWeek {
  const date = localDate(instant, timeZone);
  return isoWeekOfDate(new Date(date.getTime() - 7 * DAY_MS));
}
