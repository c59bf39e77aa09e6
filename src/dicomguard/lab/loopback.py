"""Confine servers that always listen on every interface to one loopback address.

Orthanc 1.10 and the dcmtk 3.6.7 servers (dcmqrscp, storescp) have no option to choose the
address they listen on: they bind 0.0.0.0. The lab must never listen beyond 127.0.0.0/8, and
gives each service its own loopback address, so it runs them with a tiny LD_PRELOAD library
(compiled here with the system C compiler) that rewrites a bind() to INADDR_ANY into a bind to
$DICOMGUARD_BIND_ADDRESS and refuses IPv6 wildcard binds. Without a C compiler the products
cannot be confined and the lab does not start them (`ShimUnavailable`).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

ENV_VAR = "DICOMGUARD_BIND_ADDRESS"

_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn next_bind = NULL;
    if (next_bind == NULL) next_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    const char *want = getenv("DICOMGUARD_BIND_ADDRESS");
    if (want != NULL && addr != NULL) {
        if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
            struct sockaddr_in sin;
            memcpy(&sin, addr, sizeof sin);
            if (sin.sin_addr.s_addr == htonl(INADDR_ANY)) {
                if (inet_pton(AF_INET, want, &sin.sin_addr) != 1) {
                    errno = EADDRNOTAVAIL;
                    return -1;
                }
                return next_bind(fd, (const struct sockaddr *)&sin, sizeof sin);
            }
        } else if (addr->sa_family == AF_INET6) {
            errno = EADDRNOTAVAIL;  /* never listen on IPv6 wildcards */
            return -1;
        }
    }
    return next_bind(fd, addr, len);
}
"""


class ShimUnavailable(RuntimeError):
    """The bind shim could not be built (no C compiler, or it failed)."""


def build_shim(out_dir: Path) -> Path:
    """Compile the shim into out_dir (reused when already built from the same source)."""
    digest = hashlib.sha256(_SOURCE.encode()).hexdigest()[:12]
    target = out_dir / f"dicomguard-bind-{digest}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise ShimUnavailable("no C compiler (cc) to build the loopback bind shim")
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / f"dicomguard-bind-{digest}.c"
    source.write_text(_SOURCE, encoding="utf-8")
    tmp = target.with_suffix(".tmp.so")
    try:
        proc = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(source), "-ldl"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShimUnavailable(f"building the loopback bind shim failed: {exc}") from exc
    if proc.returncode != 0:
        raise ShimUnavailable(f"building the loopback bind shim failed: {proc.stderr.strip()}")
    tmp.replace(target)
    return target


def confined_env(base: dict[str, str], shim: Path, address: str) -> dict[str, str]:
    """The environment that confines a child process to `address`."""
    if not address.startswith("127."):
        raise ValueError(f"lab services bind loopback addresses only, not {address!r}")
    env = dict(base)
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = f"{shim}:{preload}" if preload else str(shim)
    env[ENV_VAR] = address
    return env
