// The package ships no types: what tests/functions/metrics-and-badges.test.ts uses of it.
declare module 'parse-prometheus-text-format' {
  interface Family {
    name: string;
    help: string;
    /** COUNTER, GAUGE, HISTOGRAM, SUMMARY or UNTYPED */
    type: string;
    metrics: { labels?: Record<string, string>; value: string }[];
  }
  /** Throws on a line the text format does not allow. */
  export default function parsePrometheusTextFormat(text: string): Family[];
}
