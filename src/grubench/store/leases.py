"""One child, one run, whoever runs the sweep: leases on sweep children, kept in the store.

Before a driver (a ``grubench run`` process) starts a child it takes the child's lease: an
experiment tag ``grubench.lease.<digest>`` holding the owner (a random id, the host, the pid),
the child's key and the time of the owner's last heartbeat. A lease is *live* while its
heartbeat is younger than ``ttl`` seconds, unless its owner is a process on this host that no
longer exists (a driver killed on this machine frees its children at once; one on another
machine after ``ttl``). A live lease of another owner means: not this driver's to start.

Taking a lease is write-then-read: the driver writes its claim, waits ``settle`` seconds, and
owns the child only if the tag still names it. Two drivers that claim the same child at once
both read the last write, so exactly one goes on. (The window this leaves: a driver that read
the tag free, then took longer than ``settle`` to write its claim. It writes right after the
read.) A thread refreshes the heartbeat of every lease held every ``beat`` seconds (and gives
up one that another driver took over); a lease is deleted when its child ends. Liveness
compares the writer's clock with the reader's: drivers on several machines need clocks that
agree to well within ``ttl`` (NTP does). The tags live on the MLflow experiment, so any
store that every driver reaches (an embedded SQLite file on one machine, an ``mlflow server``
for several) coordinates them, with no other service to run.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

PREFIX = "grubench.lease."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@dataclass
class Lease:
    owner: str
    host: str
    pid: int
    child: str
    heartbeat: float  # time.time() of the owner's last heartbeat

    @classmethod
    def parse(cls, text: str) -> Lease | None:
        try:
            data = json.loads(text)
            return cls(str(data["owner"]), str(data["host"]), int(data["pid"]),
                       str(data["child"]), float(data["heartbeat"]))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None  # not one of ours: treated as free

    def live(self, ttl: float, now: float | None = None) -> bool:
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return False
        return (now if now is not None else time.time()) - self.heartbeat < ttl

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"


@dataclass
class Leases:
    """The leases one driver takes on one sweep's children (``with leases: ...`` runs the
    heartbeat thread)."""

    client: Any
    experiment_id: str
    sweep: str
    ttl: float = 90.0
    beat: float = 15.0
    settle: float = 0.3
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    held: dict[str, str] = field(default_factory=dict)  # tag -> child key
    lost: list[str] = field(default_factory=list)  # keys another driver took over

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tag(self, key: str) -> str:
        digest = hashlib.sha1(f"{self.sweep}\n{key}".encode()).hexdigest()[:24]
        return PREFIX + digest

    def _value(self, key: str) -> str:
        return json.dumps({"owner": self.owner, "host": socket.gethostname(),
                           "pid": os.getpid(), "child": key, "heartbeat": time.time()})  # fmt: skip

    def _read(self, key: str) -> Lease | None:
        text = self.client.get_experiment(self.experiment_id).tags.get(self.tag(key))
        return Lease.parse(text) if text else None

    def holder(self, key: str) -> Lease | None:
        """The live lease of another owner on ``key``, if any."""
        lease = self._read(key)
        if lease is None or lease.owner == self.owner or not lease.live(self.ttl):
            return None
        return lease

    def claim(self, key: str, attempts: int = 3) -> Lease | None:
        """Take ``key``'s lease: None when this driver now owns it, else the live lease of
        the owner that has it."""
        other = self.holder(key)
        if other is not None:
            return other
        from mlflow.exceptions import MlflowException

        tag = self.tag(key)
        with self._lock:  # held from the write on: a stop during the wait still releases it
            self.held[tag] = key
        try:
            self.client.set_experiment_tag(self.experiment_id, tag, self._value(key))
        except MlflowException:  # a SQL store refuses the second of two first writes at once
            if attempts <= 1:
                raise
        time.sleep(self.settle)
        lease = self._read(key)
        if lease is not None and lease.owner == self.owner:
            return None
        with self._lock:
            self.held.pop(tag, None)
        if lease is None:  # the write that won was released already: try again
            return self.claim(key, attempts - 1) if attempts > 1 else None
        return lease

    def release(self, key: str) -> None:
        tag = self.tag(key)
        with self._lock:  # not while the heartbeat writes it
            if self.held.pop(tag, None) is None:
                return
            try:
                lease = self._read(key)
                if lease is not None and lease.owner == self.owner:
                    self.client.delete_experiment_tag(self.experiment_id, tag)
            except Exception:  # the store is gone: the lease expires by itself
                pass

    def refresh(self) -> None:
        """A heartbeat on every lease still held; one that another driver has taken (this
        one's heartbeats stopped for longer than ``ttl``) is given up, not taken back."""
        with self._lock:
            for tag, key in list(self.held.items()):
                lease = self._read(key)
                if lease is not None and lease.owner != self.owner:
                    del self.held[tag]
                    self.lost.append(key)
                    continue
                self.client.set_experiment_tag(self.experiment_id, tag, self._value(key))

    def _beat(self) -> None:
        while not self._stop.wait(self.beat):
            try:
                self.refresh()
            except Exception:  # a store that does not answer now may answer at the next beat
                pass

    def __enter__(self) -> Leases:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="grubench-leases", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for key in list(self.held.values()):
            try:
                self.release(key)
            except Exception:
                pass
