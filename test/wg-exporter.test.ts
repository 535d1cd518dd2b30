// `wg exporter`: a live tunnel (two of our daemons in namespaces, a ping through) scraped over
// HTTP and parsed with parse-prometheus-text-format from npm; counters and handshakes checked
// against the real `wg show dump`, many scrapes at once, no key material but public keys, the
// loopback-only default. The OpenMetrics page (by Accept) is parsed with prometheus_client's
// strict OpenMetrics parser (Debian's python3-prometheus-client) and must carry the text page's
// data. One scrape is printed for the record.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { join } from "node:path";
import parsePrometheusTextFormat, { type MetricFamily } from "parse-prometheus-text-format";
import { keyFromBase64, keyToHex } from "../core/encoding.ts";
import { escapeLabelValue, METRICS_CONTENT_TYPE, negotiateFormat, parseFriendlyNames, renderMetrics } from "../core/tools/metrics.ts";
import type { Device } from "../core/tools/client.ts";
import { DEFAULT_LISTEN, parseListen } from "../cmd/wg-exporter.ts";
import { Lab, waitFor, type Netns, type Proc } from "./netns.ts";
import { BUN, keyFile, pingUntil, ROOT, wgPair, type Side } from "./lib-wgpair.ts";

const lab = new Lab("exporter");
afterAll(() => lab.cleanup());

const FRIENDLY = `bob's "laptop" \\ 2`;

/** Starts `wg exporter ARGS` (in `ns`, or here) and returns it with the URL it serves. */
async function exporter(args: string[], ns?: Netns): Promise<{ proc: Proc; url: string }> {
  const cmd = [BUN, join(ROOT, "cmd/main.ts"), "wg", "exporter", ...args];
  const proc = ns ? ns.spawn(cmd) : lab.spawn(cmd);
  let url = "";
  const up = await waitFor(() => {
    url = /serving (\S+)/.exec(proc.output())?.[1] ?? "";
    return url !== "";
  }, 15_000);
  if (!up) throw new Error(`wg exporter did not start:\n${proc.output()}`);
  return { proc, url };
}

function dumpPeer(s: Side): string[] {
  return s.ns.sh(`/usr/bin/wg show ${s.iface} dump`).trimEnd().split("\n")[1]!.split("\t");
}

/** What Prometheus 2 sends when it scrapes. */
const PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/** A family as both parsers below give it: OpenMetrics' family name, samples with their own names. */
interface Parsed {
  name: string;
  type: string;
  help: string;
  samples: { name: string; labels: Record<string, string>; value: string }[];
}

const OPENMETRICS_PARSER = `
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams = text_string_to_metric_families(sys.stdin.read())
print(json.dumps([{"name": f.name, "type": f.type, "help": f.documentation,
  "samples": [{"name": s.name, "labels": s.labels, "value": str(s.value)} for s in f.samples]} for f in fams]))
`;

/** An OpenMetrics page through prometheus_client's parser (under Debian's python3, where the package is): its families, or the parser's complaint. */
function parseOpenMetrics(text: string): Parsed[] | string {
  const r = Bun.spawnSync(["/usr/bin/python3", "-c", OPENMETRICS_PARSER], { stdin: Buffer.from(text) });
  return r.exitCode === 0 ? JSON.parse(r.stdout.toString()) : r.stderr.toString().trimEnd().split("\n").at(-1)!;
}

/** A text-format page's families as OpenMetrics names them (a counter's family without `_total`). */
const asOpenMetrics = (fams: MetricFamily[]): Parsed[] =>
  fams.map((f) => ({
    name: f.type === "COUNTER" ? f.name.replace(/_total$/, "") : f.name,
    type: f.type.toLowerCase(),
    help: f.help,
    samples: f.metrics.map((m) => ({ name: f.name, labels: m.labels ?? {}, value: m.value })),
  }));

/** GET `url` with no Accept header at all (fetch always sends one): content type and body. */
function getWithoutAccept(url: string): Promise<{ type: string | undefined; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => sock.write(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`));
    let raw = "";
    sock.on("data", (d) => (raw += d.toString()));
    sock.on("error", reject);
    sock.on("close", () => {
      const [head = "", body = ""] = raw.split(/\r\n\r\n(.*)/s);
      resolve({ type: /^content-type: *(.*)$/im.exec(head)?.[1]?.trimEnd(), body });
    });
  });
}

const family = (fams: MetricFamily[], name: string) => fams.find((f) => f.name === name);
const sampleOf = (fams: MetricFamily[], name: string, iface: string) => family(fams, name)?.metrics.find((m) => m.labels?.interface === iface);

describe("a live tunnel", () => {
  let a: Side, b: Side, psk: string;
  let url: string;
  beforeAll(async () => {
    psk = Bun.spawnSync(["/usr/bin/wg", "genpsk"]).stdout.toString().trim();
    ({ a, b } = await wgPair(lab, { tag: "e", psk }));
    expect(await pingUntil(a, b.inner4)).toBe(true);
    const names = keyFile(`[Interface]\n# friendly_name=not a peer\nListenPort = 1\n\n[Peer]\n#   friendly_name = ${FRIENDLY}\nPublicKey = ${b.key.pub}\nAllowedIPs = 10.0.0.2/32\n`);
    ({ url } = await exporter(["--listen", "127.0.0.1:0", "--friendly-names", names, a.iface, b.iface]));
  }, 60_000);

  /**
   * `scrape()` on a quiet tunnel, so its counters can be compared with `wg show dump`: retried
   * until the dumps taken before and after it agree; gives its value and that dump.
   */
  async function onQuietTunnel<T>(scrape: () => Promise<T>): Promise<{ value: T; dump: string[][] }> {
    let value: T, before: string[][], after: string[][];
    let i = 0;
    do {
      before = [dumpPeer(a), dumpPeer(b)];
      value = await scrape();
      after = [dumpPeer(a), dumpPeer(b)];
    } while (JSON.stringify(before) !== JSON.stringify(after) && ++i < 5);
    expect(after).toEqual(before);
    return { value, dump: after };
  }

  test("a scrape parses, has the exporter's names and labels, and its numbers are wg show dump's", async () => {
    const { value: text, dump: after } = await onQuietTunnel(async () => {
      const r = await fetch(url);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      return await r.text();
    });
    console.log(`a scrape of the live tunnel:\n${text}`);

    const fams = parsePrometheusTextFormat(text);
    expect(fams.map((f) => [f.name, f.type])).toEqual([
      ["wireguard_sent_bytes_total", "COUNTER"],
      ["wireguard_received_bytes_total", "COUNTER"],
      ["wireguard_latest_handshake_seconds", "GAUGE"],
      ["wireguard_peer_online", "GAUGE"],
      ["wireguard_peers", "GAUGE"],
    ]);
    for (const [me, other, d] of [[a, b, after[0]!], [b, a, after[1]!]] as const) {
      const labels = { interface: me.iface, public_key: other.key.pub, allowed_ips: `${other.inner4}/32`, ...(me === a ? { friendly_name: FRIENDLY } : {}) };
      const value = (name: string) => {
        const m = sampleOf(fams, name, me.iface)!;
        expect(m.labels).toEqual(labels);
        return m.value;
      };
      expect([value("wireguard_sent_bytes_total"), value("wireguard_received_bytes_total"), value("wireguard_latest_handshake_seconds")]).toEqual([d[6]!, d[5]!, d[4]!]);
      expect(Number(d[5]) > 0 && Number(d[4]) > 0).toBe(true);
      expect(value("wireguard_peer_online")).toBe("1");
      expect(sampleOf(fams, "wireguard_peers", me.iface)).toEqual({ value: "1", labels: { interface: me.iface } });
    }
  });

  test("OpenMetrics for Prometheus's Accept: a strict parser reads the text page's families, labels and values", async () => {
    const { value: [text, om] } = await onQuietTunnel(async () => {
      const text = await (await fetch(url)).text();
      const r = await fetch(url, { headers: { accept: PROMETHEUS_ACCEPT } });
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toBe("application/openmetrics-text; version=1.0.0; charset=utf-8");
      return [text, await r.text()] as const;
    });
    console.log(`OpenMetrics scrape:\n${om}`);
    expect(om).toContain("# TYPE wireguard_sent_bytes counter\n");
    expect(om.endsWith("\n# EOF\n")).toBe(true);
    const parsed = parseOpenMetrics(om);
    expect(parsed).toEqual(asOpenMetrics(parsePrometheusTextFormat(text)));
    expect((parsed as Parsed[]).map((f) => f.name)).toEqual(["wireguard_sent_bytes", "wireguard_received_bytes", "wireguard_latest_handshake_seconds", "wireguard_peer_online", "wireguard_peers"]);
    // The parser is the check: it refuses the page without its end marker.
    expect(parseOpenMetrics(om.replace(/# EOF\n$/, ""))).toBe("ValueError: Missing # EOF at end");
  });

  test("the text format unless Accept prefers OpenMetrics", async () => {
    const typeFor = async (accept: string) => (await fetch(url, { headers: { accept } })).headers.get("content-type");
    expect(await typeFor("application/openmetrics-text")).toBe(METRICS_CONTENT_TYPE.openmetrics);
    expect(await typeFor("text/plain;q=0.5, application/openmetrics-text;version=1.0.0;q=0.6")).toBe(METRICS_CONTENT_TYPE.openmetrics);
    expect(await typeFor("application/openmetrics-text;version=1.0.0;q=0.5, text/plain;version=0.0.4;q=0.9")).toBe(METRICS_CONTENT_TYPE.text);
    expect(await typeFor("text/plain")).toBe(METRICS_CONTENT_TYPE.text);
    expect(await typeFor("*/*")).toBe(METRICS_CONTENT_TYPE.text);
    const text = await (await fetch(url)).text();
    const bare = await getWithoutAccept(url);
    expect(bare.type).toBe(METRICS_CONTENT_TYPE.text);
    expect(bare.body.endsWith("# EOF\n")).toBe(false);
    // The same page but for the numbers, which traffic may have moved between the two scrapes.
    const shape = (page: string) => page.replace(/ \d+$/gm, " N");
    expect(shape(bare.body)).toBe(shape(text));
  });

  test("no key material but the peers' public keys", async () => {
    const text = await (await fetch(url)).text();
    const secrets = [a.key.priv, b.key.priv, psk];
    for (const s of secrets) {
      expect(text).not.toContain(s);
      expect(text).not.toContain(keyToHex(keyFromBase64(s)!));
    }
    const keyLike = new Set(text.match(/[A-Za-z0-9+/]{43}=/g));
    expect([...keyLike].sort()).toEqual([a.key.pub, b.key.pub].sort());
  });

  test("100 concurrent scrapes all succeed with the same counters", async () => {
    const t0 = performance.now();
    const pages = await Promise.all(Array.from({ length: 100 }, () => fetch(url).then(async (r) => ({ status: r.status, text: await r.text() }))));
    const ms = performance.now() - t0;
    expect(pages.every((p) => p.status === 200)).toBe(true);
    const sent = new Set(pages.map((p) => sampleOf(parsePrometheusTextFormat(p.text), "wireguard_sent_bytes_total", a.iface)?.value));
    expect(sent.size).toBe(1);
    expect([...sent][0]).toBe(dumpPeer(a)[6]);
    console.log(`100 concurrent scrapes: ${ms.toFixed(0)} ms`);
  });

  test("only the named interfaces; every one without names", async () => {
    const one = await exporter(["--listen", "127.0.0.1:0", a.iface]);
    const fams = parsePrometheusTextFormat(await (await fetch(one.url)).text());
    expect(new Set(fams.flatMap((f) => f.metrics.map((m) => m.labels?.interface)))).toEqual(new Set([a.iface]));
    await one.proc.kill();
    const all = await exporter(["--listen", "127.0.0.1:0"]);
    const ifaces = new Set(family(parsePrometheusTextFormat(await (await fetch(all.url)).text()), "wireguard_peers")!.metrics.map((m) => m.labels?.interface));
    expect(ifaces.has(a.iface) && ifaces.has(b.iface)).toBe(true);
    await all.proc.kill();
  }, 30_000);

  test("HTTP: an index page, 404 elsewhere, 405 for other methods", async () => {
    const base = url.replace(/\/metrics$/, "");
    expect((await fetch(base + "/")).status).toBe(200);
    expect((await fetch(base + "/metricsx")).status).toBe(404);
    expect((await fetch(url, { method: "POST" })).status).toBe(405);
  });
});

test("by default it listens on 127.0.0.1:9586 only", async () => {
  const ns = lab.ns("dflt");
  ns.sh("ip addr add 10.77.0.1/32 dev lo");
  const { url } = await exporter([], ns);
  expect(url).toBe(`http://${DEFAULT_LISTEN}/metrics`);
  expect(ns.sh("ss -Hltn").trim().split(/\s+/)[3]).toBe("127.0.0.1:9586");
  const get = (u: string) => ns.run([BUN, "-e", `const r = await fetch(${JSON.stringify(u)}).catch((e) => ({ status: e.code })); console.log(r.status)`]).stdout.trim();
  expect(get(url)).toBe("200");
  expect(get("http://10.77.0.1:9586/metrics")).toBe("ECONNREFUSED");
}, 30_000);

describe("pieces", () => {
  test("--listen forms", () => {
    expect(parseListen("127.0.0.1:9586")).toEqual({ hostname: "127.0.0.1", port: 9586 });
    expect(parseListen("[::1]:0")).toEqual({ hostname: "::1", port: 0 });
    for (const bad of ["9586", ":9586", "localhost:9586", "::1:9586", "127.0.0.1:65536", "[127.0.0.1]:1", "1.2.3.4:"]) expect(parseListen(bad)).toBeNull();
  });

  test("label values are escaped as the text format wants, and parse back", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const dev: Device = {
      name: 'we"ird\\0', privateKey: "secret", publicKey: "pub", listenPort: 1, fwmark: null,
      peers: [{ publicKey: "k", presharedKey: "psk", endpoint: null, allowedIPs: [], latestHandshake: null, latestHandshakeSec: 0n, latestHandshakeNsec: 0, rxBytes: 18446744073709551615n, txBytes: 0n, persistentKeepalive: null, online: false }],
    };
    const text = renderMetrics([dev], new Map([["k", "line\nbreak"]]));
    expect(text).not.toContain("secret");
    expect(text).not.toContain("psk");
    const m = family(parsePrometheusTextFormat(text), "wireguard_received_bytes_total")!.metrics[0]!;
    expect(m).toEqual({ value: "18446744073709551615", labels: { interface: 'we"ird\\0', public_key: "k", allowed_ips: "(none)", friendly_name: "line\nbreak" } });
  });

  test("OpenMetrics escapes as its grammar says, and the same data parses back", () => {
    const dev: Device = {
      name: 'we"ird\\0', privateKey: "secret", publicKey: "pub", listenPort: 1, fwmark: null,
      peers: [{ publicKey: "k", presharedKey: "psk", endpoint: null, allowedIPs: [], latestHandshake: null, latestHandshakeSec: 0n, latestHandshakeNsec: 0, rxBytes: 18446744073709551615n, txBytes: 0n, persistentKeepalive: null, online: false }],
    };
    const names = new Map([["k", "line\nbreak"]]);
    expect(parseOpenMetrics(renderMetrics([dev], names, "openmetrics"))).toEqual(asOpenMetrics(parsePrometheusTextFormat(renderMetrics([dev], names))));
    expect(parseOpenMetrics(renderMetrics([], names, "openmetrics"))).toEqual(asOpenMetrics(parsePrometheusTextFormat(renderMetrics([], names))));
    // A counter family under its sample's name is refused too.
    expect(parseOpenMetrics(renderMetrics([dev], names, "openmetrics").replaceAll(" wireguard_sent_bytes ", " wireguard_sent_bytes_total "))).toStartWith("ValueError: Clashing name");
  });

  test("Accept negotiation", () => {
    const cases: [string | null, "text" | "openmetrics"][] = [
      [null, "text"],
      ["", "text"],
      ["*/*", "text"],
      ["text/plain", "text"],
      ["text/plain;version=0.0.4", "text"],
      ["application/json", "text"],
      [PROMETHEUS_ACCEPT, "openmetrics"],
      ["application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", "openmetrics"],
      ["Application/OpenMetrics-Text; Version=\"1.0.0\"", "openmetrics"],
      ["application/openmetrics-text;version=0.0.1", "text"],
      ["application/openmetrics-text;version=0.0.1, application/openmetrics-text;q=0.2, text/plain;q=0.1", "openmetrics"],
      ["application/openmetrics-text;q=0", "text"],
      ["application/openmetrics-text;q=0.5, text/plain;q=0.9", "text"],
      ["text/plain;q=0.5, application/openmetrics-text", "openmetrics"],
      ["*/*, application/openmetrics-text", "openmetrics"],
      ["text/*;q=0.8, application/openmetrics-text;q=0.8", "openmetrics"],
      ["text/plain, application/openmetrics-text", "text"],
      ["application/openmetrics-text, text/plain", "openmetrics"],
      ["application/openmetrics-text;q=nonsense, text/plain;q=0.1", "text"],
    ];
    for (const [accept, format] of cases) expect([accept, negotiateFormat(accept)]).toEqual([accept, format]);
  });

  test("friendly names: only [Peer] sections, the comment anywhere in the section", () => {
    const text = "[Interface]\n# friendly_name=iface\nPrivateKey = x\n[Peer]\nPublicKey = AAA=\n# friendly_name = first one \n\n[WireGuardPeer]\n# Friendly_Name=second\nPublicKey=BBB=\n[Peer]\nPublicKey = CCC=\n";
    expect([...parseFriendlyNames(text)]).toEqual([["AAA=", "first one"], ["BBB=", "second"]]);
  });
});
