#!/usr/bin/env python3
"""A stand-in for journald's native socket in the tests: binds a unix datagram socket, takes each
entry (a datagram, or a sealed memfd passed with SCM_RIGHTS, as the native protocol sends large
ones) and appends it to OUT in the Journal Export Format (the entry, then a blank line), for
systemd-journal-remote to read. Like journald, it stamps each entry with the time it arrived
(__REALTIME_TIMESTAMP): the sender's own fields are left as they came.
  journal_sink.py SOCKET OUT"""
import array, os, socket, sys, time

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(path)
with open(out, "ab", buffering=0) as f:
    f.write(b"")
    print("listening", flush=True)
    while True:
        data, ancdata, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(4 * array.array("i").itemsize))
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                for fd in fds:
                    size = os.fstat(fd).st_size
                    data += os.pread(fd, size, 0)
                    os.close(fd)
        stamp = b"__REALTIME_TIMESTAMP=%d\n" % (time.time_ns() // 1000)
        f.write(stamp + data + b"\n")
