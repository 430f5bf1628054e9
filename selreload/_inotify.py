"""Linux inotify through ctypes: the file watch's fast path, one thread from the kernel to the reload."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from typing import Final, NamedTuple

# <sys/inotify.h>
IN_MODIFY: Final = 0x00000002
IN_CLOSE_WRITE: Final = 0x00000008
IN_MOVED_FROM: Final = 0x00000040
IN_MOVED_TO: Final = 0x00000080
IN_CREATE: Final = 0x00000100
IN_DELETE: Final = 0x00000200
IN_DELETE_SELF: Final = 0x00000400
IN_MOVE_SELF: Final = 0x00000800
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_ONLYDIR: Final = 0x01000000
IN_ISDIR: Final = 0x40000000
IN_CLOEXEC: Final = 0o2000000
IN_NONBLOCK: Final = 0o4000

# What a watch asks the kernel for: no IN_OPEN, IN_ACCESS, IN_CLOSE_NOWRITE or IN_ATTRIB (the
# reload's own read, or no new content): an event not asked for is never read, and a
# reaction to the reload's own read would feed back into new events forever.
DIR_MASK: Final = (
    IN_MODIFY
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)

_HEADER: Final = struct.Struct("iIII")  # wd, mask, cookie, len
_BUFFER: Final = 64 * 1024


class Event(NamedTuple):
    """One inotify event: `name` is the child's name (empty for the watched directory itself)."""

    wd: int
    mask: int
    name: str


def _libc() -> tuple[ctypes.CDLL, ctypes.PyDLL] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # The same functions without releasing the GIL, for the calls that never wait (a read
        # of a non-blocking descriptor, inotify_rm_watch): every GIL release costs up to a
        # switch interval (5 ms) to get it back when other threads are busy. inotify_add_watch
        # resolves a path (a hung NFS mount could block it), so it lets the GIL go.
        held = ctypes.PyDLL(None, use_errno=True)
        for lib in (libc, held):
            lib.inotify_init1.argtypes = [ctypes.c_int]
            lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
            lib.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
            lib.read.restype = ctypes.c_ssize_t
        return libc, held
    except (OSError, AttributeError):  # no libc, or one without inotify
        return None


_LIBS = _libc()

available: Final = _LIBS is not None
"""Whether this platform has inotify (Linux with a libc that has it)."""


class Inotify:
    """One inotify instance: non-blocking and close-on-exec. Not thread-safe: one thread reads it.

    Raises:
        OSError: the instance cannot be made (`fs.inotify.max_user_instances`), or inotify
            is not available here.
    """

    __slots__ = ("_buf", "_held", "_lib", "fd")

    def __init__(self) -> None:
        if _LIBS is None:
            raise OSError(errno.ENOSYS, "inotify is not available on this platform")
        self._lib, self._held = _LIBS
        fd = self._held.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self.fd: int = fd
        self._buf = ctypes.create_string_buffer(_BUFFER)

    def __repr__(self) -> str:
        return f"<Inotify fd={self.fd}>"

    def add(self, path: str, mask: int = DIR_MASK) -> int:
        """Watch `path` (symlinks followed); the watch descriptor (the same one for a path
        already watched).

        Raises:
            OSError: with the errno of `inotify_add_watch` (ENOENT, ENOTDIR, ENOSPC, EACCES).
        """
        wd = int(self._lib.inotify_add_watch(self.fd, os.fsencode(path), mask))
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
        return wd

    def remove(self, wd: int) -> None:
        """Stop a watch; one already gone (its directory deleted) is no error."""
        self._held.inotify_rm_watch(self.fd, wd)

    def read(self) -> list[Event]:
        """Every event queued now (an empty list: none), without waiting or releasing the GIL.

        Raises:
            OSError: the descriptor failed (EBADF after `close()`).
        """
        n = int(self._held.read(self.fd, self._buf, _BUFFER))
        if n < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EINTR):
                return []
            raise OSError(code, f"read inotify: {os.strerror(code)}")
        data = ctypes.string_at(self._buf, n)
        events = []
        offset = 0
        while offset + _HEADER.size <= n:
            wd, mask, _cookie, size = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            name = data[offset : offset + size].split(b"\0", 1)[0]
            offset += size
            events.append(Event(wd, mask, os.fsdecode(name)))
        return events

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
