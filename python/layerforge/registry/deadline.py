"""Total deadlines for network exchanges, and aborting them all at once.

A socket timeout bounds one read; a server that sends one byte every few seconds never
trips it. Each exchange therefore arms an alarm with its deadline; one watchdog thread
shuts the socket down when the deadline passes, which ends whatever read or write is
blocked on it (plain or TLS). :meth:`Watchdog.abort` does the same for every armed socket
at once: a push that is interrupted (Ctrl-C, SIGTERM) stops its upload workers instead of
waiting for them.

Alarms hold a duplicate of the socket's descriptor, so the number they shut down can never
be one the kernel has since given to another socket.
"""

from __future__ import annotations

import os
import socket
import threading
import time


class _Alarm:
    __slots__ = ("deadline", "expired", "fd")

    def __init__(self, fd: int, deadline: float) -> None:
        self.fd = fd
        self.deadline = deadline
        self.expired = False


def _shut(fd: int) -> None:
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()


class Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: set[_Alarm] = set()
        self._thread: threading.Thread | None = None
        self.aborted = threading.Event()

    def arm(self, sock: socket.socket, deadline: float) -> _Alarm | None:
        """Watch ``sock`` until :meth:`disarm`; None once aborted (the caller stops)."""
        with self._cond:
            if self.aborted.is_set():
                return None
            alarm = _Alarm(os.dup(sock.fileno()), deadline)
            self._armed.add(alarm)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="layerforge-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()
            return alarm

    def disarm(self, alarm: _Alarm | None) -> bool:
        """Stop watching; True if the deadline had passed (the socket was shut down)."""
        if alarm is None:
            return False
        with self._cond:
            self._armed.discard(alarm)
            os.close(alarm.fd)
            return alarm.expired

    def abort(self) -> None:
        """Shut down every watched socket now and refuse new ones."""
        with self._cond:
            self.aborted.set()
            for alarm in self._armed:
                alarm.expired = True
                _shut(alarm.fd)
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                pending = [a for a in self._armed if not a.expired]
                for alarm in pending:
                    if alarm.deadline <= now:
                        alarm.expired = True
                        _shut(alarm.fd)
                waits = [a.deadline - now for a in pending if not a.expired]
                self._cond.wait(min(waits) if waits else None)
