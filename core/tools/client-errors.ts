// The client library's errors (platform/wg-client.ts): one class per thing a caller handles
// differently, each carrying the errno that `wg` would report and its name and glibc text from
// core/errno.ts. Every error the library throws is a WireGuardError.
import { EACCES, EINVAL, ENODEV, ENOENT, EOPNOTSUPP, EPERM, EPROTONOSUPPORT, errnoName, strerror } from "../errno.ts";

export class WireGuardError extends Error {
  override name = "WireGuardError";
  /** Linux errno number (ENODEV = 19, ...). */
  readonly errno: number;
  /** Its symbolic name ("ENODEV"). */
  readonly code: string;
  /** The interface the operation was for, when there was one. */
  readonly device: string | undefined;
  constructor(errno: number, message: string, device?: string) {
    super(message);
    this.errno = errno;
    this.code = errnoName(errno);
    this.device = device;
  }
}

/**
 * No WireGuard interface of that name: neither a userspace daemon's socket nor a kernel link.
 * errno is what wg reports: ENODEV, EPROTONOSUPPORT where the kernel module is missing, or
 * ENOENT when a daemon's socket vanished between finding it and opening it.
 */
export class NoSuchDeviceError extends WireGuardError {
  override name = "NoSuchDeviceError";
}

/** The socket or netlink refused us (EACCES, EPERM): run as root or with CAP_NET_ADMIN. */
export class PermissionError extends WireGuardError {
  override name = "PermissionError";
}

/** A key that is not 44 characters of canonical base64 for 32 bytes (EINVAL). */
export class BadKeyError extends WireGuardError {
  override name = "BadKeyError";
}

/** Any other malformed value in a request: address, port, endpoint, interval (EINVAL). */
export class InvalidArgumentError extends WireGuardError {
  override name = "InvalidArgumentError";
}

/** The implementation does not offer the operation (EOPNOTSUPP), e.g. events from wireguard-go. */
export class NotSupportedError extends WireGuardError {
  override name = "NotSupportedError";
}

/**
 * The error class for an errno a backend returned; `doing` leads the message ("Unable to access
 * interface wg0"), `device` is the interface it was for, if one.
 */
export function errorOfErrno(errno: number, doing: string, device?: string): WireGuardError {
  const text = `${doing}: ${strerror(errno)}`;
  switch (errno) {
    case ENODEV:
    case ENOENT:
    case EPROTONOSUPPORT:
      return new NoSuchDeviceError(errno, `${text} (no such WireGuard interface)`, device);
    case EPERM:
    case EACCES:
      return new PermissionError(errno, text, device);
    case EOPNOTSUPP:
      return new NotSupportedError(errno, text, device);
    case EINVAL:
      return new InvalidArgumentError(errno, text, device);
    default:
      return new WireGuardError(errno, text, device);
  }
}

/** The value is left out of the message: a mistyped private key must not reach a log. */
export const badKey = (what: string) => new BadKeyError(EINVAL, `${what} is not a base64 WireGuard key (44 characters for 32 bytes)`);
export const badArgument = (text: string) => new InvalidArgumentError(EINVAL, text);
