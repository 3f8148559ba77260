"""Leases on sweep children, in a real store: one owner at a time, a dead owner's taken over."""

import json
import socket
import subprocess
import sys
import threading
import time

from grubench.store.leases import Leases
from grubench.store.tracking import get_client

TIER = "integration"


def leases(client, experiment_id, **kwargs) -> Leases:
    return Leases(client, experiment_id, "tiny:quick", **{"settle": 0.2, **kwargs})


def test_a_live_lease_keeps_others_out_until_released(tracking_uri):
    client = get_client(tracking_uri)
    experiment_id = client.create_experiment("tiny")
    a, b = leases(client, experiment_id), leases(client, experiment_id)
    assert a.claim("gru | seed=0") is None  # a owns it
    holder = b.claim("gru | seed=0")
    assert holder is not None and holder.owner == a.owner and holder.child == "gru | seed=0"
    assert b.claim("gru | seed=1") is None  # another child is free
    a.release("gru | seed=0")
    assert a.tag("gru | seed=0") not in client.get_experiment(experiment_id).tags
    assert b.claim("gru | seed=0") is None


def test_a_dead_or_silent_owner_is_taken_over(tracking_uri):
    client = get_client(tracking_uri)
    experiment_id = client.create_experiment("tiny")
    b = leases(client, experiment_id, ttl=5.0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale = {"owner": "x", "host": socket.gethostname(), "pid": int(dead), "child": "k",
             "heartbeat": time.time()}  # fmt: skip
    client.set_experiment_tag(experiment_id, b.tag("k"), json.dumps(stale))
    assert b.claim("k") is None  # its process is gone: taken over at once
    silent = {**stale, "owner": "y", "host": "elsewhere", "heartbeat": time.time() - 6}
    client.set_experiment_tag(experiment_id, b.tag("k2"), json.dumps(silent))
    assert b.claim("k2") is None  # no heartbeat for longer than ttl
    live = {**silent, "heartbeat": time.time()}
    client.set_experiment_tag(experiment_id, b.tag("k3"), json.dumps(live))
    assert b.claim("k3") is not None


def test_the_heartbeat_keeps_a_lease_live_past_its_ttl(tracking_uri):
    client = get_client(tracking_uri)
    experiment_id = client.create_experiment("tiny")
    a = leases(client, experiment_id, ttl=1.5, beat=0.3)
    with a:
        assert a.claim("k") is None
        time.sleep(2.5)  # longer than ttl: only the heartbeat keeps it
        assert leases(client, experiment_id, ttl=1.5).claim("k") is not None
    assert a.tag("k") not in client.get_experiment(experiment_id).tags  # released on exit


def test_two_owners_claiming_at_once_get_one_lease(tracking_uri):
    client = get_client(tracking_uri)
    experiment_id = client.create_experiment("tiny")
    for trial in range(5):
        owners = [leases(get_client(tracking_uri), experiment_id) for _ in range(3)]
        won, start = [], threading.Barrier(3)

        def take(owner, start=start, key=f"child {trial}", won=won):
            start.wait()
            if owner.claim(key) is None:
                won.append(owner.owner)

        threads = [threading.Thread(target=take, args=(o,)) for o in owners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, (trial, won)
