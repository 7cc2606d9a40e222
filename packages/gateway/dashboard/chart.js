// One function's history as a uPlot chart: calls per second on the left axis, p50 and p99
// latency (ms) on the right. uPlot draws on a canvas it owns; preact only gives it a box.
import { Component, createRef, h } from './vendor/preact.mjs';
import uPlot from './vendor/uplot.mjs';

const HEIGHT = 170;

function options(width) {
  return {
    width,
    height: HEIGHT,
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, rate: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] }, ms: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [
      {},
      { scale: 'rate', label: 'calls/s', size: 50 },
      { scale: 'ms', label: 'ms', side: 1, size: 50, grid: { show: false } },
    ],
    series: [
      {},
      { label: 'calls/s', scale: 'rate', stroke: '#2563eb', fill: 'rgba(37,99,235,0.08)', width: 1.5 },
      { label: 'p50 ms', scale: 'ms', stroke: '#16a34a', width: 1.5, spanGaps: false },
      { label: 'p99 ms', scale: 'ms', stroke: '#ea580c', width: 1.5, spanGaps: false },
    ],
  };
}

export class Chart extends Component {
  box = createRef();

  componentDidMount() {
    const box = this.box.current;
    this.plot = new uPlot(options(Math.max(200, box.clientWidth)), this.props.data, box);
    this.resize = new ResizeObserver(() => this.plot.setSize({ width: Math.max(200, box.clientWidth), height: HEIGHT }));
    this.resize.observe(box);
  }

  // uPlot owns the box's content: preact never renders it again, new data goes to uPlot.
  shouldComponentUpdate(next) {
    if (next.data !== this.props.data) this.plot.setData(next.data);
    return false;
  }

  componentWillUnmount() {
    this.resize.disconnect();
    this.plot.destroy();
  }

  render() {
    return h('div', { class: 'chart', ref: this.box });
  }
}
