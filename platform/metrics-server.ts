// The HTTP side of `wg exporter`: GET /metrics answers with a fresh reading of the devices
// (through the client library) rendered by core/tools/metrics.ts in the format the Accept header
// prefers. Requests that arrive while a reading is under way share it, so any number of
// concurrent scrapes costs one reading at a time and every answer is one consistent page.
import { getDevices, type Device } from "./wg-client.ts";
import { METRICS_CONTENT_TYPE, negotiateFormat, renderMetrics, type FriendlyNames } from "../core/tools/metrics.ts";

export interface MetricsServerOptions {
  hostname: string;
  /** 0 picks a free port (see `url`). */
  port: number;
  /** Interfaces to report; every one present at each scrape when empty. */
  interfaces: readonly string[];
  friendlyNames: FriendlyNames;
}

export interface MetricsServer {
  /** `http://ADDR:PORT/metrics` as bound. */
  readonly url: string;
  stop(): Promise<void>;
}

const INDEX = "<html><head><title>WireGuard exporter</title></head><body><h1>WireGuard exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

export function serveMetrics(o: MetricsServerOptions): MetricsServer {
  let reading: Promise<Device[]> | null = null;
  const scrape = () => (reading ??= getDevices(o.interfaces.length ? o.interfaces : undefined).finally(() => (reading = null)));
  const server = Bun.serve({
    hostname: o.hostname,
    port: o.port,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
      if (path === "/") return new Response(INDEX, { headers: { "content-type": "text/html; charset=utf-8" } });
      if (path !== "/metrics") return new Response("not found\n", { status: 404 });
      const format = negotiateFormat(req.headers.get("accept"));
      try {
        const page = renderMetrics(await scrape(), o.friendlyNames, format);
        return new Response(page, { headers: { "content-type": METRICS_CONTENT_TYPE[format], vary: "accept" } });
      } catch (e) {
        return new Response(`reading the WireGuard interfaces failed: ${e instanceof Error ? e.message : String(e)}\n`, { status: 500 });
      }
    },
  });
  const host = o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname;
  return {
    url: `http://${host}:${server.port}/metrics`,
    stop: () => server.stop(true),
  };
}
