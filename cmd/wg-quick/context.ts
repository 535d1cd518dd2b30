// What one wg-quick invocation shares between its steps: the parsed file, the reference's
// global flags (HAVE_SET_DNS, HAVE_SET_FIREWALL), and bash's `cmd` and `set -e` semantics.
import { dnsManager, type DnsManager } from "../../platform/linux/resolvconf.ts";
import { Exit, err } from "./exit.ts";
import type { Options } from "./options.ts";

export class Quick {
  haveSetDns = false;
  haveSetFirewall = false;
  /** 128 + signal number once SIGINT/SIGTERM arrived during `up`. */
  interrupted = 0;
  tearingDown = false;
  private dns: DnsManager | null = null;

  /** `shellName`: bash's `$0` for the reference, the path its messages about missing commands start with. */
  constructor(
    readonly o: Options,
    readonly shellName: string = o.prog,
  ) {}

  get iface(): string {
    return this.o.iface;
  }

  /** The reference's `cmd`: print the command about to run. */
  cmd(line: string): void {
    // A signal during `up` is acted on between steps, as bash runs its trap once the
    // foreground command has finished.
    if (this.interrupted !== 0 && !this.tearingDown) throw new Exit(this.interrupted);
    err(`[#] ${line}\n`);
  }

  /** A failed step under `set -e`. */
  fail(code: number): never {
    throw new Exit(code);
  }

  /** Status 0 goes on; any other ends wg-quick with it (`set -e`). */
  check(code: number): void {
    if (code !== 0) this.fail(code);
  }

  /** bash's message when a command `cmd` runs is not in PATH (the `"$@"` of `cmd` is line 32). */
  notFound(name: string): void {
    err(`${this.shellName}: line 32: ${name}: command not found\n`);
  }

  /** Decided on first use: by up and down only with DNS =, by save and reload always (they read what the resolver holds). */
  get dnsManager(): DnsManager {
    return (this.dns ??= dnsManager());
  }
}
