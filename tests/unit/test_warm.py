"""experiments.warm: a step run through a pre-imported worker behaves like `python -m MODULE` (argv, cwd,
environment, streams, exit status, signals), runs cold when no compatible server answers, and never serves this
repository's code from memory."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

PROBE = '''
import json, os, sys, time
mode = sys.argv[1]
if mode == "report":
    print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv, "cwd": os.getcwd(),
                      "var": os.environ.get("WARM_TEST_VAR"), "name": __name__, "stdin": sys.stdin.read(),
                      "repo_modules": sorted(m for m in sys.modules if m == "experiments" or
                                             m.startswith("experiments."))}))
    print("to stderr", file=sys.stderr)
elif mode == "exit":
    sys.exit(int(sys.argv[2]))
elif mode == "raise":
    raise RuntimeError("boom from the probe")
elif mode == "sleep":
    open(sys.argv[2], "w").write(str(os.getpid()))
    time.sleep(60)
'''


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "GPT2F_WARM"}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


@pytest.fixture
def probe_dir(tmp_path):
    (tmp_path / "warm_probe.py").write_text(PROBE)
    return tmp_path


@pytest.fixture
def server(tmp_path):
    """A server preloading only json (fast); experiments.warm itself is what it would serve."""
    sock = str(tmp_path / "w.sock")
    proc = subprocess.Popen([sys.executable, "-m", "experiments.warm", "--serve", sock, "--idle", "60",
                             "--preload", "json"], cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    assert os.path.exists(sock), "server did not start"
    yield sock, proc
    proc.terminate()
    proc.wait(timeout=10)


def run(cwd, *args, sock=None, input_text="", python=sys.executable, **env):
    extra = {"GPT2F_WARM": sock} if sock else {}
    return subprocess.run([python, "-m", "experiments.warm", "warm_probe", *args], cwd=cwd,
                          env=_env(**extra, **env), input=input_text, capture_output=True, text=True, timeout=60)


def test_warm_run_is_the_module_run_in_a_forked_worker(probe_dir, server):
    sock, proc = server
    r = run(probe_dir, "report", "x y", sock=sock, input_text="from stdin", WARM_TEST_VAR="v1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ppid"] == proc.pid  # forked by the server, not started by the client
    assert out["argv"][1:] == ["report", "x y"] and out["argv"][0].endswith("warm_probe.py")
    assert out["cwd"] == str(probe_dir) and out["var"] == "v1" and out["name"] == "__main__"
    assert out["stdin"] == "from stdin"
    assert "to stderr" in r.stderr
    assert out["repo_modules"] == []  # nothing of this repository comes from the server's memory
    r2 = run(probe_dir, "report", sock=sock, WARM_TEST_VAR="v2")  # each job gets its own environment
    assert json.loads(r2.stdout)["var"] == "v2" and json.loads(r2.stdout)["pid"] != out["pid"]
    bindir = Path(sys.executable).parent  # Snakemake runs `python3` (its shebang), rules `python`: one interpreter
    for alias in ("python", "python3"):
        if (bindir / alias).exists():
            out = json.loads(run(probe_dir, "report", sock=sock, python=str(bindir / alias)).stdout)
            assert out["ppid"] == proc.pid


def test_exit_status_and_exceptions_as_python_dash_m(probe_dir, server):
    sock, _ = server
    for s in (None, sock):
        assert run(probe_dir, "exit", "3", sock=s).returncode == 3
        assert run(probe_dir, "exit", "0", sock=s).returncode == 0
        r = run(probe_dir, "raise", sock=s)
        assert r.returncode == 1 and "RuntimeError: boom from the probe" in r.stderr


def test_cold_without_server_or_with_another_import_environment(probe_dir, server, tmp_path):
    sock, proc = server
    r = run(probe_dir, "report", sock=str(tmp_path / "absent.sock"))
    assert r.returncode == 0 and json.loads(r.stdout)["ppid"] != proc.pid
    r = run(probe_dir, "report", sock=sock, ATEN_CPU_CAPABILITY="default")  # other float kernels: cold
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ppid"] != proc.pid
    assert "cold start (import-time environment differs: ATEN_CPU_CAPABILITY)" in r.stderr
    r = run(probe_dir, "report", sock=sock, SLURM_JOB_ID="17")  # a scheduler's job stays in its allocation
    assert r.returncode == 0 and json.loads(r.stdout)["ppid"] != proc.pid


def test_stopping_the_client_stops_the_worker(probe_dir, server, tmp_path):
    sock, _ = server
    for how in (signal.SIGTERM, signal.SIGKILL):  # forwarded; or noticed by the worker when its client is gone
        pid_file = tmp_path / f"pid_{how}"
        client = subprocess.Popen([sys.executable, "-m", "experiments.warm", "warm_probe", "sleep", str(pid_file)],
                                  cwd=probe_dir, env=_env(GPT2F_WARM=sock))
        for _ in range(200):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        assert worker != client.pid
        client.send_signal(how)
        code = client.wait(timeout=10)
        assert code == (128 + how if how == signal.SIGTERM else -how)
        for _ in range(100):
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"worker {worker} still runs after its client got {how!r}")


def test_import_key_reads_only_import_time_variables():
    from experiments.warm import import_key

    a = import_key({"ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1", "HOME": "/a", "SNAKEMAKE_X": "1"})
    b = import_key({"ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1", "HOME": "/b"})
    assert a == b and a["env"] == {"ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1"}
    assert import_key({"MKL_ENABLE_INSTRUCTIONS": "AVX"}) != import_key({})
    assert import_key({"TORCHINDUCTOR_CACHE_DIR": "/x"}) == import_key({})  # read when compiling, not at import


def test_thread_env_is_what_snakemake_gives_a_job():
    """The server starts with the thread variables Snakemake's shell() sets for a job (else every job is cold)."""
    import inspect

    from snakemake import shell

    from experiments.warm import THREAD_VARS, thread_env

    src = inspect.getsource(shell)
    set_by_snakemake = set(re.findall(r'envvars\["([A-Z_]+_THREADS)"\] = threads', src))
    assert set_by_snakemake == set(THREAD_VARS)
    assert thread_env(3) == {v: "3" for v in THREAD_VARS}


def test_server_removes_its_socket_on_exit(tmp_path):
    sock = str(tmp_path / "s.sock")
    proc = subprocess.Popen([sys.executable, "-m", "experiments.warm", "--serve", sock, "--preload", ""],
                            cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    assert os.path.exists(sock)
    proc.terminate()
    proc.wait(timeout=10)
    assert not Path(sock).exists()
