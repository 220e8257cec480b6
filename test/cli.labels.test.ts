import { describe, expect, it } from 'vitest';
import { parseLabels } from '../src/cli/start.js';

describe('RUNLET_LABELS', () => {
  it('reads key=value pairs separated by commas', () => {
    expect(parseLabels('team=data, env=prod,runlet.x-suite=abc')).toEqual({ team: 'data', env: 'prod', 'runlet.x-suite': 'abc' });
    expect(parseLabels(undefined)).toEqual({});
    expect(parseLabels('')).toEqual({});
  });

  it("refuses a pair without a key and runlet's own label names", () => {
    expect(() => parseLabels('team')).toThrow(/key=value pairs/);
    expect(() => parseLabels('=x')).toThrow(/key=value pairs/);
    expect(() => parseLabels('runlet.task=evil')).toThrow(/runlet's own label namespace/);
  });
});
