import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** How much history the chart keeps. */
const WINDOW_SECONDS = 10 * 60;
/** Steps of the time axis, in seconds: never finer than a second. */
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600];

/** `HH:MM:SS` of a time in seconds since epoch. */
const clock = (seconds: number): string => new Date(seconds * 1000).toLocaleTimeString('en-GB', { hour12: false });

/**
 * Events/s (this node, from the deltas of `local.eventsSent`) and connections (cluster-wide)
 * over the last minutes, one point per poll.
 */
export class Chart {
  readonly #times: number[] = [];
  readonly #rates: (number | null)[] = [];
  readonly #connections: number[] = [];
  readonly #plot: uPlot;

  constructor(root: HTMLElement) {
    this.#plot = new uPlot(
      {
        width: Math.max(300, root.clientWidth),
        height: 220,
        cursor: { drag: { x: false, y: false } },
        legend: { live: false },
        scales: {
          x: { time: true },
          rate: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] },
          conn: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.2))] },
        },
        series: [
          {},
          {
            label: 'events/s (this node)',
            scale: 'rate',
            stroke: '#2563eb',
            fill: 'rgba(37, 99, 235, 0.12)',
            width: 2,
            value: (_u, v) => (v === null ? '–' : v.toFixed(1)),
          },
          { label: 'connections', scale: 'conn', stroke: '#16a34a', width: 2, value: (_u, v) => (v === null ? '–' : String(v)) },
        ],
        axes: [
          { stroke: '#64748b', grid: { stroke: '#eef2f7' }, incrs: TIME_STEPS, values: (_u, splits) => splits.map(clock) },
          { scale: 'rate', stroke: '#2563eb', grid: { stroke: '#eef2f7' }, size: 50 },
          {
            scale: 'conn',
            side: 1,
            stroke: '#16a34a',
            grid: { show: false },
            size: 50,
            incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000],
          },
        ],
      },
      [[], [], []],
      root,
    );
    new ResizeObserver(() => this.#plot.setSize({ width: Math.max(300, root.clientWidth), height: 220 })).observe(root);
  }

  /** Adds one sample: `time` in ms since epoch, `rate` null when unknown (first poll, a restart). */
  add(time: number, rate: number | null, connections: number): void {
    const seconds = time / 1000;
    this.#times.push(seconds);
    this.#rates.push(rate);
    this.#connections.push(connections);
    while (this.#times.length > 0 && this.#times[0]! < seconds - WINDOW_SECONDS) {
      this.#times.shift();
      this.#rates.shift();
      this.#connections.shift();
    }
    this.#plot.setData([this.#times, this.#rates, this.#connections]);
  }
}
