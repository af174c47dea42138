"""Temporary files live in one folder per request, and what a killed process left is swept away."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from common import scratch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_requests_temporaries_live_in_its_folder_and_go_with_it():
    folder = scratch.RequestFolder()
    with scratch.request_folder(folder):
        with scratch.directory("upload-") as workdir:
            assert os.path.dirname(workdir) == folder.path()
        kept = scratch.mkdtemp("ingest-")
        handle, path = scratch.mkstemp("export-", ".csv")
        os.close(handle)
    assert os.path.dirname(kept) == os.path.dirname(path) == folder.path()
    assert os.path.basename(folder.path()).startswith(f"{os.getpid()}-")
    location = folder.path()
    folder.remove()
    folder.remove()  # twice is harmless
    assert not os.path.exists(location)


def test_a_request_that_makes_no_temporary_makes_no_folder():
    folder = scratch.RequestFolder()
    with scratch.request_folder(folder):
        pass
    folder.remove()
    assert folder._path is None


def test_what_a_killed_process_left_is_swept_and_a_live_ones_is_kept():
    program = ("import os, signal\nfrom common import scratch\n"
               "with scratch.request_folder(scratch.RequestFolder()):\n"
               "    path = scratch.mkdtemp('ingest-')\n"
               "    open(os.path.join(path, 'big.parquet'), 'wb').write(b'x' * 1000)\n"
               "    print(path, flush=True)\n"
               "    os.kill(os.getpid(), signal.SIGKILL)\n")
    killed = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    left = killed.stdout.strip()
    assert killed.returncode == -9 and os.path.exists(left)
    mine = scratch.RequestFolder()
    own = mine.path()
    swept = scratch.sweep()
    assert os.path.basename(os.path.dirname(left)) in swept and not os.path.exists(os.path.dirname(left))
    assert os.path.exists(own)  # this process runs: its folder stays
    mine.remove()


def test_a_folder_older_than_a_day_is_swept_even_if_its_pid_was_reused():
    stale = os.path.join(scratch.root(), "1-stale")  # pid 1 always runs
    os.makedirs(stale, exist_ok=True)
    old = time.time() - scratch.MAX_AGE_SECONDS - 60
    os.utime(stale, (old, old))
    assert "1-stale" in scratch.sweep() and not os.path.exists(stale)


def test_a_process_folder_swept_while_idle_is_made_again():
    folder = scratch.RequestFolder()
    first = folder.path()
    os.rmdir(first)
    assert os.path.isdir(folder.path())
    folder.remove()


def test_the_router_gives_each_request_a_folder_and_removes_it_once_the_answer_is_sent():
    import flask

    from common.http import Router

    router, made = Router("test"), []

    @router.route("/work", methods=["GET"])
    def work(request):
        with scratch.directory("upload-") as workdir:
            made.append(os.path.dirname(workdir))
        made.append(scratch.mkdtemp("ingest-"))  # left for the folder's removal to take
        return {"ok": True}

    app = flask.Flask("scratch-test")
    app.add_url_rule("/<path:path>", view_func=lambda path: router(flask.request))
    response = app.test_client().get("/work")
    assert response.status_code == 200 and os.path.isdir(made[1])
    response.close()  # what the server does once the body is sent
    assert not os.path.exists(made[0]) and not os.path.exists(made[1])
    assert os.path.basename(os.path.dirname(made[1])) == os.path.basename(made[0])
