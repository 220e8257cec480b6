import { describe, expect, it } from 'vitest';
import { ATTEMPT_END_STATUSES, isTerminal, MOVES, TERMINAL_STATUSES, type RunStatus, type StatusMove } from '../src/runs/types.js';

// The status table (MOVES) against the rules written on RunStatus, with no Redis: the store's
// guard only enforces what callers pass, and they pass this table.

const moves = Object.entries(MOVES as Record<string, StatusMove>).map(([name, m]) => ({
  name,
  from: [...m.from],
  to: [m.to].flat() as RunStatus[],
}));
const ALL: readonly RunStatus[] = ['queued', 'starting', 'running', ...TERMINAL_STATUSES];
/** How far along a run is; a move may only go further, but for a retry and for `lost` getting its real outcome. */
const RANK = (s: RunStatus) => (isTerminal(s) ? 3 : ['queued', 'starting', 'running'].indexOf(s));
const into = (status: RunStatus) => moves.filter((m) => m.to.includes(status));

describe('MOVES, the allowed status changes', () => {
  it('no terminal status moves, except lost, and that only when its attempt ends (real outcome or retry)', () => {
    for (const m of moves) {
      for (const from of m.from.filter(isTerminal)) {
        expect(from, `${m.name} leaves ${from}`).toBe('lost');
        expect(['retry', 'endAttempt']).toContain(m.name);
      }
    }
  });

  it('skipped is never moved into from anything but queued (a run is created skipped instead)', () => {
    for (const m of into('skipped')) expect(m.from, m.name).toEqual(['queued']);
  });

  it('only the claim moves a run out of queued into starting, and nothing else starts a run', () => {
    expect(into('starting').map((m) => m.name)).toEqual(['start']);
    expect(MOVES.start.from).toEqual(['queued']);
    expect(into('running').map((m) => [m.name, m.from])).toEqual([['run', ['starting']]]);
  });

  it('a retry goes back to queued from starting, running or lost, and is the only way back', () => {
    expect(into('queued').map((m) => m.name)).toEqual(['retry']);
    expect([...MOVES.retry.from].sort()).toEqual(['lost', 'running', 'starting']);
  });

  it('an attempt is declared lost once: nothing moves lost to lost (its declarers name the same claim, and the status fences them)', () => {
    for (const m of into('lost')) expect(m.from, m.name).not.toContain('lost');
    expect([...MOVES.lose.from].sort()).toEqual(['running', 'starting']);
  });

  it('an attempt never ends from queued: that run waits for its next attempt', () => {
    expect(MOVES.endAttempt.from).not.toContain('queued');
    expect(MOVES.retry.from).not.toContain('queued');
  });

  it('everything else only moves forward: queued, starting, running, then an end', () => {
    for (const m of moves.filter((x) => x.name !== 'retry')) {
      for (const from of m.from) {
        for (const to of m.to) {
          if (from === 'lost') expect(isTerminal(to), `${m.name}: lost → ${to}`).toBe(true);
          else expect(RANK(to), `${m.name}: ${from} → ${to}`).toBeGreaterThan(RANK(from));
        }
      }
    }
  });

  it('an attempt ends in a terminal status, and every status but skipped (made only at creation) is the target of some move', () => {
    expect(ATTEMPT_END_STATUSES.every(isTerminal)).toBe(true);
    const reached = new Set(moves.flatMap((m) => m.to));
    expect(ALL.filter((s) => !reached.has(s))).toEqual(['skipped']);
  });
});
