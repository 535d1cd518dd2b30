// The one errno table: Linux errno numbers, glibc 2.36's texts for them (C locale) and the map from
// Node/Bun error codes. Every message that names an errno (wg, wg-quick, the UAPI server, the
// netlink clients) takes its number and text from here.

const ERRNO_TEXT: readonly string[] = [
  "Success", "Operation not permitted", "No such file or directory", "No such process",
  "Interrupted system call", "Input/output error", "No such device or address", "Argument list too long",
  "Exec format error", "Bad file descriptor", "No child processes", "Resource temporarily unavailable",
  "Cannot allocate memory", "Permission denied", "Bad address", "Block device required",
  "Device or resource busy", "File exists", "Invalid cross-device link", "No such device", "Not a directory",
  "Is a directory", "Invalid argument", "Too many open files in system", "Too many open files",
  "Inappropriate ioctl for device", "Text file busy", "File too large", "No space left on device",
  "Illegal seek", "Read-only file system", "Too many links", "Broken pipe", "Numerical argument out of domain",
  "Numerical result out of range", "Resource deadlock avoided", "File name too long", "No locks available",
  "Function not implemented", "Directory not empty", "Too many levels of symbolic links", "Unknown error 41",
  "No message of desired type", "Identifier removed", "Channel number out of range", "Level 2 not synchronized",
  "Level 3 halted", "Level 3 reset", "Link number out of range", "Protocol driver not attached",
  "No CSI structure available", "Level 2 halted", "Invalid exchange", "Invalid request descriptor",
  "Exchange full", "No anode", "Invalid request code", "Invalid slot", "Unknown error 58",
  "Bad font file format", "Device not a stream", "No data available", "Timer expired",
  "Out of streams resources", "Machine is not on the network", "Package not installed", "Object is remote",
  "Link has been severed", "Advertise error", "Srmount error", "Communication error on send", "Protocol error",
  "Multihop attempted", "RFS specific error", "Bad message", "Value too large for defined data type",
  "Name not unique on network", "File descriptor in bad state", "Remote address changed",
  "Can not access a needed shared library", "Accessing a corrupted shared library",
  ".lib section in a.out corrupted", "Attempting to link in too many shared libraries",
  "Cannot exec a shared library directly", "Invalid or incomplete multibyte or wide character",
  "Interrupted system call should be restarted", "Streams pipe error", "Too many users",
  "Socket operation on non-socket", "Destination address required", "Message too long",
  "Protocol wrong type for socket", "Protocol not available", "Protocol not supported",
  "Socket type not supported", "Operation not supported", "Protocol family not supported",
  "Address family not supported by protocol", "Address already in use", "Cannot assign requested address",
  "Network is down", "Network is unreachable", "Network dropped connection on reset",
  "Software caused connection abort", "Connection reset by peer", "No buffer space available",
  "Transport endpoint is already connected", "Transport endpoint is not connected",
  "Cannot send after transport endpoint shutdown", "Too many references: cannot splice",
  "Connection timed out", "Connection refused", "Host is down", "No route to host",
  "Operation already in progress", "Operation now in progress", "Stale file handle",
  "Structure needs cleaning", "Not a XENIX named type file", "No XENIX semaphores available",
  "Is a named type file", "Remote I/O error", "Disk quota exceeded", "No medium found", "Wrong medium type",
  "Operation canceled", "Required key not available", "Key has expired", "Key has been revoked",
  "Key was rejected by service", "Owner died", "State not recoverable",
  "Operation not possible due to RF-kill", "Memory page has hardware error",
];

export const EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, EACCES = 13, ENODEV = 19;
export const EINVAL = 22, ENOSPC = 28, ERANGE = 34, ENAMETOOLONG = 36, ENOSYS = 38, EPROTO = 71, EBADMSG = 74;
export const EBADFD = 77, EMSGSIZE = 90, EPROTONOSUPPORT = 93, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99, ENETUNREACH = 101, ENOBUFS = 105, ECONNREFUSED = 111;

export function strerror(n: number): string {
  return n >= 0 && n < ERRNO_TEXT.length ? ERRNO_TEXT[n]! : `Unknown error ${n}`;
}

/** Node/Bun error codes: the constants above by their own names, plus codes only read here. */
const ERRNO_BY_CODE: Record<string, number> = {
  EPERM, ENOENT, EINTR, EIO, ENXIO: 6, EBADF, EAGAIN, ENOMEM: 12, EACCES,
  EFAULT: 14, EBUSY: 16, EEXIST: 17, ENODEV, ENOTDIR: 20, EISDIR: 21, EINVAL, EMFILE: 24,
  ENOSPC, ESPIPE: 29, EROFS: 30, EPIPE: 32, ENAMETOOLONG, ELOOP: 40, EPROTO,
  ENOTSOCK: 88, EPROTONOSUPPORT, EOPNOTSUPP, ENOTSUP: EOPNOTSUPP, EADDRINUSE, ECONNRESET: 104,
  ENOTCONN: 107, ETIMEDOUT: 110, ECONNREFUSED,
};

/** errno number for a Node/Bun error code string ("ENOENT"); EIO when unknown. */
export function errnoFromCode(code: string | undefined): number {
  return (code && ERRNO_BY_CODE[code]) || EIO;
}

const NAME_BY_ERRNO: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>();
  // First spelling wins: EOPNOTSUPP before its alias ENOTSUP.
  for (const [code, n] of Object.entries(ERRNO_BY_CODE)) if (!m.has(n)) m.set(n, code);
  return m;
})();

/** The symbolic name of an errno number ("ENODEV"), or `E<n>` for one this table does not name. */
export function errnoName(n: number): string {
  return NAME_BY_ERRNO.get(n) ?? `E${n}`;
}
