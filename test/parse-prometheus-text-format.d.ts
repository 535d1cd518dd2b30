// Types for the npm package parse-prometheus-text-format (it ships none), as its README
// documents the result: metric families in the prom2json shape, sample values as text.
declare module "parse-prometheus-text-format" {
  export interface Sample {
    value: string;
    labels?: Record<string, string>;
    timestamp_ms?: string;
  }
  export interface MetricFamily {
    name: string;
    help: string;
    type: "COUNTER" | "GAUGE" | "UNTYPED" | "HISTOGRAM" | "SUMMARY";
    metrics: Sample[];
  }
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
