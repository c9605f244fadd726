import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Prometheus metrics of one daemon: process defaults plus Tally's own, all prefixed `tally_`. */
export class Metrics {
  readonly registry = new Registry()
  readonly contentType: string

  constructor(role: string, peerId: string) {
    this.registry.setDefaultLabels({ role, peer: peerId })
    collectDefaultMetrics({ register: this.registry, prefix: 'tally_process_' })
    this.contentType = this.registry.contentType
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter {
    return new Counter({ name: `tally_${name}`, help, labelNames, registers: [this.registry] })
  }

  gauge(name: string, help: string, labelNames: string[] = [], collect?: (g: Gauge) => void | Promise<void>): Gauge {
    return new Gauge({
      name: `tally_${name}`,
      help,
      labelNames,
      registers: [this.registry],
      ...(collect !== undefined
        ? {
            collect(this: Gauge) {
              return collect(this)
            },
          }
        : {}),
    })
  }

  histogram(name: string, help: string, buckets: number[], labelNames: string[] = []): Histogram {
    return new Histogram({ name: `tally_${name}`, help, buckets, labelNames, registers: [this.registry] })
  }

  render(): Promise<string> {
    return this.registry.metrics()
  }
}
