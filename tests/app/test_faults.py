"""Faults in a real simulated federation: a client that crashes, one that returns
garbage, one that tampers with its recipe and one that never answers do not stop the
round; each is counted in the round table.

No outcome here depends on how fast the machine is: the silent client answers only
after the round has closed (it waits for the server's round event), and the round
closes as soon as the five others replied (quorum 5/6, no grace), so a healthy client
that is slow is waited for, however slow; the timeout is only a hang guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from support import HANG_GUARD

SCRIPT = textwrap.dedent('''
    import json, os, pathlib, sys, time
    from flwr.app import ConfigRecord, Message, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.simulation import run_simulation
    from fedseed.app import client_app as real
    from fedseed.app.server_app import make_server_app
    from fedseed.app.simulation import join_ray_cluster
    from fedseed.federation.config import FederationConfig

    def build(closed):
        # Closures travel to the simulation workers by value; sys.argv does not.
        faulty = ClientApp()

        @faulty.train()
        def train(msg, context):
            pid = int(context.node_config["partition-id"])
            if pid == 0:
                raise RuntimeError("the device crashed")
            if pid == 1:
                content = RecordDict({"fedseed": ConfigRecord({"recipe": b"garbage",
                                                              "pubkey": b"none"})})
                return Message(content, reply_to=msg)
            if pid == 2:
                reply = real.train(msg, context)
                values = reply.content.config_records["fedseed"]
                from fedseed.provenance.packed import read_envelope

                # Replies travel packed; the tamperer sends DSSE JSON, which the
                # server also reads.
                envelope = json.loads(read_envelope(bytes(values["recipe"])).to_json())
                envelope["payload"] = envelope["payload"][:-8] + "AAAAAAA="
                values["recipe"] = json.dumps(envelope).encode()
                return reply
            if pid == 3:  # silent: answers only once the round is over, with nothing
                while not os.path.exists(closed):
                    time.sleep(0.2)
                return Message(RecordDict(), reply_to=msg)
            return real.train(msg, context)

        @faulty.evaluate()
        def evaluate(msg, context):
            return real.evaluate(msg, context)

        return faulty

    results = []
    closed = sys.argv[2]
    cfg = FederationConfig(num_rounds=1, fraction=1.0, min_nodes=6, recipe=sys.argv[1],
                           client_trust="tofu", auto_keys=True, timeout=3600.0,
                           quorum=5 / 6, grace=0.0, final_personalization=False)

    def on_event(kind, value):
        if kind == "round":
            pathlib.Path(closed).touch()

    join_ray_cluster()  # the suite's shared Ray, if it has one
    run_simulation(server_app=make_server_app(cfg, on_event, results=results),
                   client_app=build(closed), num_supernodes=6,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": 2, "log_to_driver": False}})
    print("RESULT " + json.dumps(results[0].as_dict()))
''')


@pytest.mark.slow
def test_faulty_clients_do_not_stop_the_round(tmp_path, quick_recipe):
    script = tmp_path / "faulty.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "FEDSEED_HOME": str(tmp_path / "home"),
           "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}

    done = subprocess.run([sys.executable, str(script), str(quick_recipe),
                           str(tmp_path / "round-closed")], env=env,
                          capture_output=True, text=True, timeout=HANG_GUARD, cwd=tmp_path)

    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    round_ = json.loads(line.removeprefix("RESULT "))["rounds"][0]
    assert round_["sampled"] == 6
    assert round_["accepted"] == 2  # the two healthy clients
    assert round_["rejected"] == {"client error": 1, "malformed": 1, "bad signature": 1,
                                  "no reply": 1}
    assert round_["next_digest"] != round_["meta_digest"]  # aggregation still happened
