// `wg events [<interface>]`: follow handshakes, endpoint changes and peer changes as JSON lines
// (one object per line, see README "wg events"), from one interface or from every interface
// present at start. Our daemons push events over their UAPI socket; kernel links are read
// periodically (platform/linux/kernel-events.ts). Ends when every followed interface has gone.
import { strerror } from "../core/errno.ts";
import { followEvents, listInterfaces } from "../platform/ipc.ts";
import type { EventSubscription } from "../platform/events-client.ts";

export async function wgEventsMain(argv0: string, args: string[]): Promise<number> {
  const prog = `${argv0} events`;
  if (args.length > 1 || (args.length === 1 && (args[0]!.startsWith("-") || args[0]!.includes("/")))) {
    process.stderr.write(`Usage: ${prog} [<interface>]\n`);
    return 1;
  }
  let names: string[];
  if (args.length === 1) names = [args[0]!];
  else {
    const list = await listInterfaces();
    if (!list.ok) {
      process.stderr.write(`Unable to list interfaces: ${strerror(list.errno)}\n`);
      return 1;
    }
    names = list.names;
    if (names.length === 0) {
      process.stderr.write(`${prog}: no WireGuard interfaces to follow\n`);
      return 1;
    }
  }
  const subs: EventSubscription[] = [];
  let failed = 0;
  for (const name of names) {
    const r = await followEvents(name, (line) => process.stdout.write(line + "\n"));
    if (r.ok) subs.push(r.sub);
    else {
      failed++;
      process.stderr.write(`Unable to follow interface ${name}: ${r.error}\n`);
    }
  }
  if (subs.length === 0) return 1;
  const stop = () => subs.forEach((s) => s.close());
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await Promise.all(subs.map((s) => s.ended));
  process.off("SIGINT", stop);
  process.off("SIGTERM", stop);
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) {
  wgEventsMain("wg", process.argv.slice(2)).then((code) => process.exit(code));
}
