// A prom-client registry that only creates metrics from the catalog, so a name that is
// not in the catalog does not compile.
import { Counter, Gauge, Histogram, Registry, type LabelValues } from 'prom-client';
import { METRICS, type MetricName } from './catalog.js';
import { createServer, type Server } from 'node:http';

type LabelsOf<N extends MetricName> = (typeof METRICS)[N]['labels'][number];
type TypeOf<N extends MetricName> = (typeof METRICS)[N]['type'];
type MetricOf<N extends MetricName> =
  TypeOf<N> extends 'counter'
    ? Counter<LabelsOf<N>>
    : TypeOf<N> extends 'gauge'
      ? Gauge<LabelsOf<N>>
      : Histogram<LabelsOf<N>>;

export type Labels<N extends MetricName> = LabelValues<LabelsOf<N>>;

export class MetricsRegistry {
  readonly registry = new Registry();
  private readonly made = new Map<MetricName, Counter | Gauge | Histogram>();
  private readonly collectors: Array<() => void> = [];

  /** Runs `collect` before every exposition (gauges read at scrape time: memory, event-loop lag). */
  onCollect(collect: () => void): void {
    this.collectors.push(collect);
  }

  /** The catalog metric `name`, created on first use. */
  get<N extends MetricName>(name: N): MetricOf<N> {
    let m = this.made.get(name);
    if (!m) {
      const spec = METRICS[name];
      const base = { name, help: spec.help, labelNames: [...spec.labels], registers: [this.registry] };
      m =
        spec.type === 'counter'
          ? new Counter(base)
          : spec.type === 'gauge'
            ? new Gauge(base)
            : new Histogram({ ...base, buckets: [...(spec as { buckets: readonly number[] }).buckets] });
      this.made.set(name, m);
    }
    return m as MetricOf<N>;
  }

  /**
   * Makes the series `labels` of `name` exist at zero, so a dashboard reads 0 rather than no
   * data before the first use (a family without labels exists once created). A counter's or
   * gauge's series that exists keeps its value; a histogram's is reset, so zero histograms
   * before their first observation (at start, or when the label value is first known).
   */
  zero<N extends MetricName>(name: N, labels?: Labels<N>): void {
    const m: Counter | Gauge | Histogram = this.get(name);
    if (!labels || Object.keys(labels).length === 0) return;
    if (m instanceof Histogram) m.zero(labels);
    else m.inc(labels, 0);
  }

  /** Prometheus text exposition. */
  expose(): Promise<string> {
    for (const collect of this.collectors) collect();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Serves GET /metrics on host:port (0 picks one); resolves with the bound port. */
export function serveMetrics(
  metrics: MetricsRegistry,
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      metrics
        .expose()
        .then((body) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(500).end();
        });
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({ server, port: typeof addr === 'object' && addr ? addr.port : port });
    });
  });
}
