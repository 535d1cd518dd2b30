// Lossy, delaying (hence reordering) UDP relay, run inside a namespace:
//   bun test/lib-relay.ts '{"listen":"127.0.0.1","listenPort":P,"out":"10.0.0.1","to":"10.0.0.2","toPort":Q,"loss":0.15,"maxDelayMs":40}'
// Datagrams to listen:listenPort go to to:toPort from a socket bound on `out`; answers to that
// socket go back to whoever last sent to the listening side. Each datagram is dropped with
// probability `loss`, else delayed uniformly in [0, maxDelayMs) (so they overtake each other).
// Prints "ready" once both sockets are bound; runs until killed.
export interface RelayJob {
  listen: string;
  listenPort: number;
  out: string;
  to: string;
  toPort: number;
  loss: number;
  maxDelayMs: number;
}

if (import.meta.main) {
  const job = JSON.parse(process.argv[2]!) as RelayJob;
  let client: { port: number; address: string } | null = null;
  const pass = (f: () => void) => {
    if (Math.random() < job.loss) return;
    setTimeout(f, Math.random() * job.maxDelayMs);
  };
  const outer = await Bun.udpSocket({
    hostname: job.out,
    socket: {
      data: (_s, buf) => {
        const copy = Buffer.from(buf);
        const c = client;
        if (c) pass(() => inner.send(copy, c.port, c.address));
      },
    },
  });
  const inner = await Bun.udpSocket({
    hostname: job.listen,
    port: job.listenPort,
    socket: {
      data: (_s, buf, port, address) => {
        client = { port, address };
        const copy = Buffer.from(buf);
        pass(() => outer.send(copy, job.toPort, job.to));
      },
    },
  });
  console.log("ready");
}
