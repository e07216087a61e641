import { describe, expect, it } from 'vitest';
import { hourlySeries, renderHourlyChart } from '../../../src/admin/console/charts.js';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 11, 3, 16, 30);

describe('console charts', () => {
  it('counts events per UTC hour over the last 24 hours, the current hour last', () => {
    const series = hourlySeries(
      [NOW, NOW - 10 * 60_000, NOW - HOUR, NOW - 23 * HOUR, NOW - 24 * HOUR, NOW + HOUR],
      NOW,
    );
    expect(series.counts).toHaveLength(24);
    expect(series.starts[23]).toBe(Date.UTC(2026, 11, 3, 16));
    expect(series.starts[0]).toBe(Date.UTC(2026, 11, 2, 17));
    expect(series.counts[23]).toBe(2);
    expect(series.counts[22]).toBe(1);
    expect(series.counts[0]).toBe(1);
    // 24 h back falls before the first bucket; an hour ahead after the last.
    expect(series.counts.reduce((sum, count) => sum + count, 0)).toBe(4);
  });

  it('renders one bar per hour with its count, escaping the title', () => {
    const svg = renderHourlyChart({
      title: 'Tool <calls>',
      series: hourlySeries([NOW, NOW, NOW - 2 * HOUR], NOW),
      testId: 'chart',
    }).value;
    expect(svg.match(/<rect /g)).toHaveLength(24);
    expect(svg).toContain('data-total="3"');
    expect(svg).toContain('data-count="2"');
    expect(svg).toContain('16:00–17:00 UTC: 2');
    expect(svg).toContain('Tool &lt;calls&gt;');
    expect(svg).not.toContain('<calls>');
    expect(svg).not.toContain('<script');
    expect(svg).not.toContain('style=');
  });
});
