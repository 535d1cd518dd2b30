// A Linux kernel with the real WireGuard module, booted in qemu, for interop tests. Needs root,
// qemu-system-x86_64, busybox-static, cpio, xz-utils and an installed Debian kernel whose modules
// include wireguard and 9p (test/setup.sh installs them). `kernel: cachedKernel()` boots instead
// the newer one test/setup.sh unpacks, without installing it, into KERNEL_CACHE.
//
//   const lab = new Lab("kvm");
//   const vm = await bootVm({ lab, name: "k" });  // TAP in a fresh namespace, guest addressed
//   await vm.sh("ip link add wg0 type wireguard && wg show wg0");  // { code, stdout, stderr, stdoutBytes }
//   vm.ns.sh("ping -c1 " + vm.guest4);           // vm.ns: the host side of the TAP (tap0)
//   const exe = await guestExecutable(vm);       // our compiled executable, copied into the guest
//   await vm.shutdown();                         // also done by lab.cleanup() (qemu is its child)
//
// The guest: the host's root filesystem, shared read-only over virtio-9p, is the guest's root
// (chroot), with fresh tmpfs on /tmp, /run, /var/tmp, /root and its own /proc, /sys, /dev. So
// the host's binaries (wg, ip, bash, bun, ...) run there unchanged. `vm.shared` is a writable
// host directory mounted at the same path inside the guest: files are exchanged by path.
// `${vm.shared}.cached` in the guest is a read-only view of it through the page cache, several
// times faster to read but blind to changes after the guest's first look: for large files
// written once before the guest reads them.
// Its only network is eth0 (virtio-net), the other end of tap0 inside `vm.ns`.
// The kernel loads further modules on demand (nf_tables and its expressions for nft, ...): its
// /sbin/modprobe, in the initramfs, runs the host's modprobe inside the shared root.
//
// Commands: each sh() writes a script and its stdin into the shared directory and sends its id
// over a virtio-serial port; a shell loop in the guest runs it in the background with /bin/sh
// (stdout/stderr to files there, never to the port) and answers "<id> <exit code>". Commands
// may overlap; a command may leave background processes running (redirect their output).
// stdout/stderr are byte strings (latin1): byte-exact comparisons are possible.
//
// Acceleration: KVM is tried once per process with a short bound; when it cannot boot the guest
// the harness says why and uses TCG from then on (`-cpu max`, which has the AVX2 Bun needs).
// Every wait is bounded; a guest that does not come up fails with the tail of its console.
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "bun";
import { Lab, type Netns, type Proc, waitFor } from "./netns.ts";
import { nobodyExecutable } from "./lib-nobody.ts";

export interface VmRunResult {
  code: number;
  /** Bytes as a latin1 string (one char per byte). */
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
}

export interface Vm {
  accel: "kvm" | "tcg";
  kernelRelease: string;
  /** Milliseconds from starting qemu to the guest being ready (crng initialised). */
  bootMs: number;
  /** Namespace holding tap0, the host side of the guest's eth0. */
  ns: Netns;
  tap: string;
  /** Host directory mounted at the same path inside the guest (writable there). */
  shared: string;
  /** First IPv4/IPv6 address (without prefix) of each side. */
  host4: string;
  host6: string;
  guest4: string;
  guest6: string;
  /** Runs a /bin/sh script in the guest. Rejects only on timeout (default 60 s) or a dead VM. */
  sh(script: string, opts?: { timeoutMs?: number; stdin?: string | Uint8Array }): Promise<VmRunResult>;
  /** Like sh() but throws with the output when the exit code is not 0; returns stdout. */
  ok(script: string, opts?: { timeoutMs?: number; stdin?: string | Uint8Array }): Promise<string>;
  /** The console (kernel log and the guest init's messages) so far. */
  console(): string;
  /** Powers the guest off (kills qemu after a bound) and removes the VM's temp directory. */
  shutdown(): Promise<void>;
}

export interface BootOpts {
  lab: Lab;
  /** Short name for the namespace (lab.ns(name)). */
  name: string;
  memMiB?: number;
  /** CIDR addresses of tap0 and of the guest's eth0; defaults 10.77.0.1/24, fd77::1/64 and .2. */
  hostAddrs?: string[];
  guestAddrs?: string[];
  /** Bound for the boot under TCG (KVM gets a shorter one). */
  bootTimeoutMs?: number;
  /** The guest's kernel; default findKernel(). */
  kernel?: Kernel;
}

export interface Kernel {
  release: string;
  vmlinuz: string;
  /** Its modules (modules.dep, modules.builtin and the files they name). */
  modDir: string;
  /** The root whose lib/modules/<release> is modDir: the guest's modprobe looks there. */
  modRoot: string;
}

/** Modules the guest loads (each with its dependencies), unless built in. */
const MODULES = ["virtio_pci", "virtio_console", "virtio_net", "virtio_rng", "9pnet_virtio", "9p", "wireguard"];

const norm = (n: string) => n.replace(/\.ko(\.(xz|zst|gz))?$/, "").replace(/^.*\//, "").replaceAll("-", "_");

/** True when `modDir` (with its modules.dep) has, as modules or built in, all the guest needs. */
function hasModules(modDir: string): boolean {
  if (!existsSync(`${modDir}/modules.dep`)) return false;
  const have = new Set(
    [...readFileSync(`${modDir}/modules.dep`, "utf8").matchAll(/^([^:\s]+):/gm), ...readFileSync(`${modDir}/modules.builtin`, "utf8").matchAll(/^(\S+)$/gm)].map((x) => norm(x[1]!)),
  );
  return MODULES.every((n) => have.has(n));
}

/**
 * An installed kernel usable as guest: /boot/vmlinuz-V whose /lib/modules/V has wireguard and
 * 9p (the cloud flavour has no 9p, so it only qualifies if that changes); cloud ones first.
 */
export function findKernel(): Kernel | null {
  const found: Kernel[] = [];
  for (const f of existsSync("/boot") ? readdirSync("/boot") : []) {
    const m = /^vmlinuz-(.+)$/.exec(f);
    if (!m) continue;
    const modDir = `/lib/modules/${m[1]}`;
    if (hasModules(modDir)) found.push({ release: m[1]!, vmlinuz: `/boot/${f}`, modDir, modRoot: "/" });
  }
  found.sort((a, b) => Number(b.release.includes("cloud")) - Number(a.release.includes("cloud")) || b.release.localeCompare(a.release));
  return found[0] ?? null;
}

/** Where test/setup.sh unpacks the newest trixie-backports kernel: <release>/ is its packages' root. */
export const KERNEL_CACHE = "/var/cache/wgts-test/kernels";

/**
 * The kernel test/setup.sh unpacked into KERNEL_CACHE (the newest, should there be several).
 * Throws when there is none: with the failure setup recorded, or with how to get one.
 */
export function cachedKernel(): Kernel {
  const found: Kernel[] = [];
  for (const release of existsSync(KERNEL_CACHE) ? readdirSync(KERNEL_CACHE) : []) {
    const modRoot = join(KERNEL_CACHE, release);
    const modDir = join(modRoot, "lib/modules", release);
    const vmlinuz = [join(modDir, "vmlinuz"), join(modRoot, "boot", `vmlinuz-${release}`)].find((f) => existsSync(f));
    if (vmlinuz && hasModules(modDir)) found.push({ release, vmlinuz, modDir, modRoot });
  }
  found.sort((a, b) => b.release.localeCompare(a.release, "en", { numeric: true }));
  if (found[0]) return found[0];
  let why = "run test/setup.sh as root";
  try {
    why = `test/setup.sh: ${readFileSync(join(KERNEL_CACHE, "fetch-failed"), "utf8").trim()}`;
  } catch {}
  throw new Error(`no kernel with wireguard and 9p modules unpacked in ${KERNEL_CACHE} (${why})`);
}

/** Why the VM tests cannot run here, or null when they can; with `kernel`, no installed one is needed. */
export function vmUnavailable(kernel?: Kernel): string | null {
  if (process.getuid?.() !== 0) return "not root";
  for (const c of ["qemu-system-x86_64", "cpio", "xz"]) if (!Bun.which(c)) return `${c} missing`;
  if (!existsSync("/bin/busybox")) return "/bin/busybox (busybox-static) missing";
  if (!kernel && !findKernel()) return "no /boot/vmlinuz-V with wireguard and 9p modules in /lib/modules/V";
  return null;
}

/** Module files to insmod, dependencies first (modules.dep lists each module's full closure). */
function moduleOrder(k: Kernel): string[] {
  const deps = new Map<string, { path: string; deps: string[] }>();
  for (const line of readFileSync(`${k.modDir}/modules.dep`, "utf8").split("\n")) {
    const [path, rest] = line.split(":");
    if (!path || rest === undefined) continue;
    deps.set(norm(path), { path, deps: rest.trim().split(/\s+/).filter(Boolean) });
  }
  const order: string[] = [];
  const visit = (name: string) => {
    const d = deps.get(name);
    if (!d || order.includes(d.path)) return; // built in, or already placed
    for (const p of d.deps) visit(norm(p));
    order.push(d.path);
  };
  for (const n of MODULES) visit(n);
  return order;
}

// The guest's PID 1 (busybox sh): modules, the 9p root, then the agent inside the chroot.
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "wgt-init: $*" > /dev/console; }
say "loading modules"
for m in $(cat /modules.order); do insmod "/modules/$m" || say "insmod $m failed"; done
shared=$(sed -n 's/.*wgt\\.shared=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /newroot || say "mounting the host root failed"
for d in tmp run var/tmp root; do mount -t tmpfs -o mode=1777 tmpfs "/newroot/$d"; done
# The checkout (its node_modules, scripts) at its own path, even where that lies under a tmpfs
# above (a clone in /tmp or /root).
checkout=$(sed -n 's/.*wgt\\.checkout=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
mkdir -p "/newroot$checkout" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro checkout "/newroot$checkout" || say "mounting the checkout failed"
chmod 0700 /newroot/root
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
# What udev would add: bash's process substitution hands out /dev/fd/N paths; /dev/net/tun
# exists before its module is loaded (opening it loads it).
ln -s /proc/self/fd /newroot/dev/fd
mkdir -p /newroot/dev/net
[ -e /newroot/dev/net/tun ] || mknod -m 0666 /newroot/dev/net/tun c 10 200
for n in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/\${n%%:*}" "/newroot/dev/\${n#*:}"; done
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mkdir -p "/newroot$shared"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 shared "/newroot$shared" || say "mounting the shared directory failed"
mkdir -p "/newroot$shared.cached"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro sharedro "/newroot$shared.cached" || say "mounting the cached view failed"
say "starting the agent"
chroot /newroot /bin/sh "$shared/.agent.sh" "$shared" < /dev/null > /dev/console 2>&1
say "agent ended"
sync
poweroff -f
`;

// Runs inside the chroot (the host's /bin/sh). $1 is the shared directory.
const AGENT = `set -u
D=$1/.cmd
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
cd /
ip link set lo up
# Wait for the kernel's CSPRNG (WireGuard needs it): /dev/random blocks until then.
head -c1 /dev/random > /dev/null
port=
for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name")" = ctl ] && port=/dev/\${p##*/}; done
[ -n "$port" ] || { echo "wgt-agent: no control port"; exit 1; }
exec 3<>"$port"
echo "wgt-agent: ready $(uname -r)"
echo ready >&3
while read -r id <&3; do
  [ "$id" = exit ] && break
  (
    umask 077 # for the output files; the command gets a login shell's 022
    { umask 022; /bin/sh "$D/$id.sh"; } < "$D/$id.in" > "$D/$id.out" 2> "$D/$id.err" 3>&-
    echo "$id $?" >&3
  ) &
done
`;

/** Per kernel image, the temp dir holding its initramfs (initrd.cpio). */
const initrdDirs = new Map<string, string>();
/** Temp dirs of VMs not shut down yet (the lab kills their qemu; this removes the files). */
const liveDirs = new Set<string>();
const removeDirs = () => {
  for (const d of [...liveDirs, ...initrdDirs.values()]) rmSync(d, { recursive: true, force: true });
  liveDirs.clear();
  initrdDirs.clear();
};
// Under `bun test` (no "exit" event there) they go with the test file's afterAll.
try {
  (await import("bun:test")).afterAll(removeDirs);
} catch {
  process.on("exit", removeDirs);
}

/** Builds (once per process and kernel) the initramfs for `k` in a temp dir; returns the cpio path. */
function buildInitramfs(k: Kernel): string {
  const built = initrdDirs.get(k.vmlinuz);
  if (built) return join(built, "initrd.cpio");
  const initrdDir = mkdtempSync(join(tmpdir(), "wgt-initrd-"));
  try {
    writeInitramfs(k, initrdDir);
  } catch (e) {
    rmSync(initrdDir, { recursive: true, force: true });
    throw e;
  }
  initrdDirs.set(k.vmlinuz, initrdDir);
  return join(initrdDir, "initrd.cpio");
}

/** The initramfs of `k` as `dir`/initrd.cpio (its tree in `dir`/root). */
function writeInitramfs(k: Kernel, initrdDir: string): void {
  const root = join(initrdDir, "root");
  mkdirSync(join(root, "bin"), { recursive: true });
  mkdirSync(join(root, "modules"));
  copyFileSync("/bin/busybox", join(root, "bin/busybox"));
  writeFileSync(join(root, "init"), INIT, { mode: 0o755 });
  // The kernel's usermode helpers run in the initramfs root, not in the agent's chroot.
  mkdirSync(join(root, "sbin"));
  writeFileSync(join(root, "sbin/modprobe"), `#!/bin/busybox sh\nexec /bin/busybox chroot /newroot /sbin/modprobe -d '${k.modRoot}' "$@"\n`, { mode: 0o755 });
  const names: string[] = [];
  for (const rel of moduleOrder(k)) {
    const src = join(k.modDir, rel);
    const name = norm(rel) + ".ko";
    const out = join(root, "modules", name);
    if (rel.endsWith(".ko")) copyFileSync(src, out);
    else {
      const tool = rel.endsWith(".xz") ? "xz" : rel.endsWith(".zst") ? "zstd" : "gzip";
      const r = Bun.spawnSync([tool, "-dc", src], { stdout: Bun.file(out) });
      if (r.exitCode !== 0) throw new Error(`${tool} -dc ${src} failed`);
    }
    names.push(name);
  }
  writeFileSync(join(root, "modules.order"), names.join("\n") + "\n");
  const out = join(initrdDir, "initrd.cpio");
  const r = Bun.spawnSync(["sh", "-c", `cd '${root}' && find . | cpio -o -H newc --quiet > '${out}'`], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`cpio failed: ${r.stderr}`);
}

/** Per-process decision: null until the first boot tried KVM. */
let kvmUsable: boolean | null = null;
const KVM_BOOT_MS = 20_000;

/** This checkout, mounted read-only at the same path in the guest. */
const CHECKOUT = join(import.meta.dir, "..");

function qemuArgv(k: Kernel, accel: "kvm" | "tcg", dir: string, shared: string, memMiB: number): string[] {
  return [
    "qemu-system-x86_64",
    ...(accel === "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg,thread=multi", "-cpu", "max"]),
    "-smp", "2",
    "-m", String(memMiB),
    "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-no-reboot",
    "-kernel", k.vmlinuz,
    "-initrd", buildInitramfs(k),
    "-append", `console=ttyS0 panic=-1 quiet rdinit=/init wgt.shared=${shared} wgt.checkout=${CHECKOUT}`,
    "-chardev", `file,id=con,path=${join(dir, "console.log")}`,
    "-serial", "chardev:con",
    "-fsdev", "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap",
    "-device", "virtio-9p-pci,fsdev=root,mount_tag=hostroot",
    "-fsdev", `local,id=sh,path=${shared},security_model=none`,
    "-device", "virtio-9p-pci,fsdev=sh,mount_tag=shared",
    "-fsdev", `local,id=shro,path=${shared},security_model=none,readonly=on`,
    "-device", "virtio-9p-pci,fsdev=shro,mount_tag=sharedro",
    "-fsdev", `local,id=co,path=${CHECKOUT},security_model=none,readonly=on,multidevs=remap`,
    "-device", "virtio-9p-pci,fsdev=co,mount_tag=checkout",
    "-device", "virtio-rng-pci",
    "-device", "virtio-serial-pci",
    "-chardev", `socket,id=ctl,path=${join(dir, "ctl.sock")},server=on,wait=off`,
    "-device", "virtserialport,chardev=ctl,name=ctl",
    "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
    "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:77:00:02",
  ];
}

interface Started {
  proc: Proc;
  sock: Socket<undefined>;
  lines: (cb: (line: string) => void) => void;
}

/** Starts qemu and waits for the agent's "ready"; throws with the console tail otherwise. */
async function start(ns: Netns, k: Kernel, accel: "kvm" | "tcg", dir: string, shared: string, memMiB: number, timeoutMs: number): Promise<Started> {
  for (const f of ["console.log", "ctl.sock"]) rmSync(join(dir, f), { force: true });
  const proc = ns.spawn(qemuArgv(k, accel, dir, shared, memMiB));
  const fail = async (why: string): Promise<never> => {
    await proc.kill(1000);
    await Bun.sleep(100); // let the pipes deliver qemu's last words
    throw new Error(`guest (${accel}) ${why}\nqemu: ${proc.output().slice(-2000)}\nconsole tail:\n${readConsole(dir).slice(-4000)}`);
  };
  const end = Date.now() + timeoutMs;
  const exited = () => proc.proc.exitCode !== null || proc.proc.signalCode !== null;
  if (!(await waitFor(() => existsSync(join(dir, "ctl.sock")) || exited(), 10_000, 20)) || exited()) return fail("qemu did not start");
  let buf = "";
  let onLine: (line: string) => void = () => {};
  let ready = false;
  let sock: Socket<undefined>;
  try {
    sock = await Bun.connect({
      unix: join(dir, "ctl.sock"),
      socket: {
        data(_s, chunk) {
          buf += chunk.toString("latin1");
          for (let i; (i = buf.indexOf("\n")) >= 0; ) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (line === "ready") ready = true;
            else onLine(line);
          }
        },
      },
    });
  } catch (e) {
    return fail(`control socket: ${(e as Error).message}`);
  }
  if (!(await waitFor(() => ready || exited(), Math.max(0, end - Date.now()), 50))) {
    sock.end();
    return fail(`not ready within ${timeoutMs} ms`);
  }
  if (!ready) {
    sock.end();
    return fail(`qemu exited (${proc.proc.exitCode ?? proc.proc.signalCode})`);
  }
  return { proc, sock, lines: (cb) => (onLine = cb) };
}

function readConsole(dir: string): string {
  try {
    return readFileSync(join(dir, "console.log"), "latin1");
  } catch {
    return "";
  }
}

const ip = (cidr: string) => cidr.split("/")[0]!;

/**
 * A test file's guest: a Lab of its own (namespace prefix `prefix`) with the VM booted in it,
 * announced in the log. A failed boot cleans the Lab up before it rethrows.
 */
export async function bootTestVm(prefix: string, opts: Omit<BootOpts, "lab" | "name"> = {}): Promise<{ lab: Lab; vm: Vm }> {
  const lab = new Lab(prefix);
  try {
    const vm = await bootVm({ ...opts, lab, name: "vm" });
    console.log(`kernel VM: ${vm.accel}, ${vm.kernelRelease}, ready after ${vm.bootMs} ms`);
    return { lab, vm };
  } catch (e) {
    await lab.cleanup();
    throw e;
  }
}

/** Ends what bootTestVm made (either may be missing when the boot failed). */
export async function stopTestVm(lab: Lab | undefined, vm: Vm | undefined): Promise<void> {
  await vm?.shutdown();
  await lab?.cleanup();
}

export async function bootVm(opts: BootOpts): Promise<Vm> {
  const why = vmUnavailable(opts.kernel);
  if (why) throw new Error(`cannot boot the test VM: ${why} (test/setup.sh installs what is missing)`);
  const k = opts.kernel ?? findKernel()!;
  const hostAddrs = opts.hostAddrs ?? ["10.77.0.1/24", "fd77::1/64"];
  const guestAddrs = opts.guestAddrs ?? ["10.77.0.2/24", "fd77::2/64"];
  const memMiB = opts.memMiB ?? 1024;
  const ns = opts.lab.ns(opts.name);
  ns.sh("ip tuntap add tap0 mode tap && ip link set tap0 up");
  for (const a of hostAddrs) ns.sh(`ip addr add ${a} dev tap0${a.includes(":") ? " nodad" : ""}`);
  const dir = mkdtempSync(join(tmpdir(), "wgt-vm-"));
  liveDirs.add(dir);
  const shared = join(dir, "shared");
  mkdirSync(join(shared, ".cmd"), { recursive: true });
  writeFileSync(join(shared, ".agent.sh"), AGENT);

  const t0 = Date.now();
  let accel: "kvm" | "tcg" = "tcg";
  let s: Started | null = null;
  try {
    if (kvmUsable !== false && existsSync("/dev/kvm")) {
      try {
        s = await start(ns, k, "kvm", dir, shared, memMiB, KVM_BOOT_MS);
        kvmUsable = true;
        accel = "kvm";
      } catch (e) {
        if (kvmUsable === true) throw e;
        kvmUsable = false;
        const lines = String((e as Error).message).split("\n");
        const why = lines.find((l) => l.startsWith("qemu-system")) ?? lines[0];
        console.log(`kernel VM: TCG (KVM unusable: ${why})`);
      }
    }
    s ??= await start(ns, k, "tcg", dir, shared, memMiB, opts.bootTimeoutMs ?? 90_000);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const bootMs = Date.now() - t0;
  if (accel === "kvm") console.log("kernel VM: KVM");
  const { proc, sock } = s;

  let next = 0;
  const pending = new Map<string, { resolve: (code: number) => void; reject: (e: Error) => void }>();
  s.lines((line) => {
    const [id, code] = line.split(" ");
    pending.get(id!)?.resolve(Number(code));
  });
  // A guest that dies fails its pending commands at once, with its console.
  void proc.exited.then(() => {
    for (const p of pending.values()) p.reject(new Error(`VM exited during a command\nconsole tail:\n${readConsole(dir).slice(-3000)}`));
  });
  let down = false;
  let lastConsole = "";
  const sh = async (script: string, o: { timeoutMs?: number; stdin?: string | Uint8Array } = {}): Promise<VmRunResult> => {
    if (down || proc.proc.exitCode !== null) throw new Error(`VM is down\nconsole tail:\n${readConsole(dir).slice(-3000)}`);
    const id = `c${next++}`;
    const base = join(shared, ".cmd", id);
    writeFileSync(`${base}.sh`, script);
    writeFileSync(`${base}.in`, typeof o.stdin === "string" ? Buffer.from(o.stdin, "latin1") : (o.stdin ?? ""));
    const timeoutMs = o.timeoutMs ?? 60_000;
    let timer: Timer | undefined;
    const code = await new Promise<number>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      timer = setTimeout(() => reject(new Error(`guest command timed out after ${timeoutMs} ms: ${script.slice(0, 200)}`)), timeoutMs);
      sock.write(`${id}\n`);
    }).finally(() => {
      clearTimeout(timer);
      pending.delete(id);
    });
    const out = readFileSync(`${base}.out`);
    const err = readFileSync(`${base}.err`);
    for (const ext of ["sh", "in", "out", "err"]) rmSync(`${base}.${ext}`, { force: true });
    return { code, stdout: out.toString("latin1"), stderr: err.toString("latin1"), stdoutBytes: new Uint8Array(out) };
  };
  const vm: Vm = {
    accel,
    kernelRelease: k.release,
    bootMs,
    ns,
    tap: "tap0",
    shared,
    host4: ip(hostAddrs.find((a) => !a.includes(":")) ?? ""),
    host6: ip(hostAddrs.find((a) => a.includes(":")) ?? ""),
    guest4: ip(guestAddrs.find((a) => !a.includes(":")) ?? ""),
    guest6: ip(guestAddrs.find((a) => a.includes(":")) ?? ""),
    sh,
    async ok(script, o) {
      const r = await sh(script, o);
      if (r.code !== 0) throw new Error(`guest: ${script.slice(0, 300)}: exit ${r.code}\n${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    console: () => (down ? lastConsole : readConsole(dir)),
    async shutdown() {
      if (down) return;
      down = true;
      try {
        sock.write("exit\n");
        sock.end();
      } catch {}
      const t = setTimeout(() => void proc.kill(1000), 10_000);
      await proc.exited;
      clearTimeout(t);
      await proc.kill();
      lastConsole = readConsole(dir);
      rmSync(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    },
  };
  const addrs = guestAddrs.map((a) => `ip addr add ${a} dev eth0${a.includes(":") ? " nodad" : ""}`).join(" && ");
  await vm.ok(`ip link set eth0 up${addrs ? ` && ${addrs}` : ""}`);
  return vm;
}

/**
 * Our compiled executable (lib-nobody's private build, once per test file) copied into the
 * guest's /tmp, with wg-quick linked to it; returns its path inside the guest. (Run from the
 * uncached 9p share, every page fault of the ~100 MB file is a round trip: tens of seconds.)
 */
export async function guestExecutable(vm: Vm): Promise<string> {
  const dst = join(vm.shared, "wgts");
  if (!existsSync(dst)) {
    const src = nobodyExecutable();
    try {
      linkSync(src, dst);
    } catch {
      copyFileSync(src, dst);
    }
  }
  await vm.ok(`test -x ${GUEST_EXE} || { mkdir -p ${GUEST_EXE.replace(/\/wg$/, "")} && cp ${vm.shared}.cached/wgts ${GUEST_EXE} && ln -s wg ${GUEST_EXE}-quick; }`, { timeoutMs: 120_000 });
  return GUEST_EXE;
}
const GUEST_EXE = "/tmp/wgts/wg";
