import { html, type SafeHtml } from '../../oauth/pages/html.js';

const HOUR_MS = 3_600_000;

/** Counts per hour, oldest first: `hours` buckets ending with the hour that holds `now`. */
export interface HourlySeries {
  /** Start of each bucket (epoch ms, on the hour, UTC). */
  readonly starts: readonly number[];
  readonly counts: readonly number[];
}

/**
 * Buckets event times into the last `hours` whole hours (UTC), the current one included; times outside
 * that window are ignored.
 */
export function hourlySeries(times: Iterable<number>, now: number, hours = 24): HourlySeries {
  const last = Math.floor(now / HOUR_MS) * HOUR_MS;
  const first = last - (hours - 1) * HOUR_MS;
  const counts = new Array<number>(hours).fill(0);
  for (const at of times) {
    if (at < first || at >= last + HOUR_MS) continue;
    const index = Math.floor((at - first) / HOUR_MS);
    counts[index] = (counts[index] ?? 0) + 1;
  }
  return { starts: counts.map((_, index) => first + index * HOUR_MS), counts };
}

const WIDTH = 480;
const HEIGHT = 150;
const LEFT = 30;
const BOTTOM = 20;
const TOP = 12;

const hourLabel = (start: number) => `${new Date(start).toISOString().slice(11, 13)}:00`;

/**
 * A bar chart of an hourly series as inline SVG: no script, no external resource, colours from the
 * stylesheet. Each bar has a `<title>` (shown on hover) with its hour and count.
 */
export function renderHourlyChart(options: {
  readonly title: string;
  readonly series: HourlySeries;
  readonly testId: string;
}): SafeHtml {
  const { counts, starts } = options.series;
  const max = Math.max(1, ...counts);
  const total = counts.reduce((sum, count) => sum + count, 0);
  const plotWidth = WIDTH - LEFT - 4;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const step = plotWidth / Math.max(1, counts.length);
  const bars = counts.map((count, index) => {
    const height = count === 0 ? 1 : Math.max(2, (count / max) * plotHeight);
    const x = LEFT + index * step + 1;
    const y = TOP + plotHeight - height;
    const start = starts[index] as number;
    return html`<rect class="${count === 0 ? 'bar-zero' : 'bar'}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(step - 2).toFixed(1)}" height="${height.toFixed(1)}" data-count="${count}"><title>${hourLabel(start)}–${hourLabel(start + HOUR_MS)} UTC: ${count}</title></rect>`;
  });
  const labels = starts.flatMap((start, index) =>
    index % 6 === 0
      ? [
          html`<text class="label" x="${(LEFT + index * step).toFixed(1)}" y="${HEIGHT - 4}">${hourLabel(start)}</text>`,
        ]
      : [],
  );
  return html`<figure class="chart" data-testid="${options.testId}" data-total="${total}">
<h3>${options.title}</h3>
<p class="total">${total} in the last ${counts.length} hours · per hour, UTC</p>
<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${options.title}: ${total} in the last ${counts.length} hours">
<line class="axis" x1="${LEFT}" y1="${TOP + plotHeight}" x2="${WIDTH - 4}" y2="${TOP + plotHeight}"/>
<text class="label" x="0" y="${TOP + 8}">${max}</text>
<text class="label" x="0" y="${TOP + plotHeight}">0</text>
${bars}
${labels}
</svg>
</figure>`;
}
