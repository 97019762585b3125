"""Run a step's module as `python -m MODULE ARGS` would, in a worker forked from a pre-imported interpreter.

Every mini job is a fresh `python -m experiments...` process, and importing torch + transformers' model classes
costs ~5-7 s of CPU per process before the step does anything (~75 such jobs in the mini DAG: ~8 CPU minutes of
~45). The workflow's rules therefore call

    python -m experiments.warm MODULE [ARGS...]

which behaves exactly like `python -m MODULE [ARGS...]` (same argv, cwd, environment, stdin/stdout/stderr, exit
status), with one difference in where it runs: when $GPT2F_WARM names the socket of a running server
(`--serve`, started by the Snakefile's onstart for local runs when `compute.warm` is true), the server forks a
worker that already holds the third-party imports (torch, transformers, pandas, ...), and the client waits for
it. Without a server, inside a SLURM/PBS/LSF job, or when the server's import-time environment differs from
the client's (ATEN_*, OMP_*, MKL_*, ONEDNN_*, ...: `make robustness` changes the float kernels that way), the
module runs in the client's own process, cold. Either way the step runs with experiments.allocator's glibc
malloc settings (set in the server before it forks, or in the cold process). Nothing of this repository is
pre-imported: the worker drops every `experiments` module before running the step, so a job always runs the code
on disk when it starts.

Signals sent to the client (Snakemake stopping a job) are forwarded to the worker; a worker whose client
disappears ends itself. Snakemake `benchmark:` files keep the job's wall time (`s`); their CPU and memory
columns measure the client only when a job ran warm.

    python -m experiments.warm --serve SOCKET [--idle S] [--preload MOD,MOD]   # the server (foreground)
"""
from __future__ import annotations

import array
import json
import os
import runpy
import signal
import socket
import struct
import sys
import threading
import time

ENV = "GPT2F_WARM"  # the socket path; unset or empty: every step runs cold
# modules whose import is what a step pays for before it starts (a missing optional one is skipped)
PRELOAD = ("numpy", "pandas", "yaml", "tqdm", "torch", "torch.nn.functional", "safetensors.torch", "tokenizers",
           "transformers", "transformers:GPT2LMHeadModel", "transformers:GPTNeoForCausalLM",
           "transformers:LlamaForCausalLM", "transformers:PreTrainedTokenizerFast", "scipy.stats",
           "statsmodels.api", "matplotlib:Agg", "matplotlib.pyplot")
# environment read when those modules are imported (kernel choice, thread pools, library settings): a worker
# serves only clients whose values equal the server's
# (Snakemake sets the thread counts per job: the server starts with the ones its jobs get, thread_env)
IMPORT_ENV_PREFIXES = ("ATEN_", "OMP_", "MKL_", "ONEDNN_", "DNNL_", "KMP_", "GOMP_", "GOTO_", "OPENBLAS_",
                       "VECLIB_", "NUMEXPR_", "TORCH", "PYTORCH_", "CUDA_", "HIP_", "HF_", "TRANSFORMERS_",
                       "TOKENIZERS_", "MPL", "PYTHON", "LD_")
RUNTIME_ENV_PREFIXES = ("TORCHINDUCTOR_",)  # read when used, from the job's own environment
# what Snakemake's shell() sets for a job with `threads: n` (snakemake/shell.py)
THREAD_VARS = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

# a job that a scheduler placed (SLURM, PBS, LSF) runs in its own allocation, never in a worker outside it
SCHEDULER_JOB_VARS = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID")
_MSG = struct.Struct("!I")  # length prefix of a JSON message; the exit status travels as one too


def thread_env(threads: int) -> dict[str, str]:
    """The thread-count variables of a Snakemake job with `threads` threads."""
    return {v: str(threads) for v in THREAD_VARS}


def import_key(env: dict[str, str] | None = None) -> dict:
    """What must match between server and client for a forked worker to equal a fresh interpreter."""
    env = os.environ if env is None else env
    return {"python": [os.path.realpath(sys.executable), sys.prefix, sys.version],  # python vs python3: equal
            "env": {k: v for k, v in sorted(env.items())
                    if k.startswith(IMPORT_ENV_PREFIXES) and not k.startswith(RUNTIME_ENV_PREFIXES)}}


def preload(names: tuple[str, ...] | list[str] = PRELOAD) -> list[str]:
    """Import `names` ("pkg.mod", "pkg:Attr" to resolve a lazy attribute, "matplotlib:Agg" for the backend)."""
    import importlib

    done = []
    for name in names:
        mod, _, attr = name.partition(":")
        try:
            m = importlib.import_module(mod)
            if mod == "matplotlib" and attr:
                m.use(attr)
            elif attr:
                getattr(m, attr)
        except Exception:  # an optional package that is not installed: its steps import it themselves
            continue
        done.append(name)
    return done


def run_module(module: str, args: list[str]) -> int:
    """`python -m module args` in this process; the exit status."""
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BaseException:  # noqa: BLE001 - report like the interpreter does
        import traceback

        traceback.print_exc()
        return 1
    return 0


def _send(conn: socket.socket, obj, fds: list[int] | None = None) -> None:
    data = json.dumps(obj).encode()
    payload = _MSG.pack(len(data)) + data
    if fds:
        conn.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        conn.sendall(payload)


def _recv_exact(conn: socket.socket, n: int, fds: list[int] | None = None) -> bytes:
    buf = b""
    while len(buf) < n:
        if fds is not None and not buf:
            chunk, anc, _, _ = conn.recvmsg(n, socket.CMSG_SPACE(16 * array.array("i").itemsize))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(data[: len(data) - len(data) % a.itemsize])
                    fds.extend(a)
        else:
            chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def _recv(conn: socket.socket, fds: list[int] | None = None):
    (n,) = _MSG.unpack(_recv_exact(conn, _MSG.size, fds))
    return json.loads(_recv_exact(conn, n))


# ---------------------------------------------------------------- client


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("--serve", "-h", "--help"):
        return _server_cli(argv)
    if not argv:
        sys.exit("usage: python -m experiments.warm MODULE [ARGS...]  (or --serve SOCKET; --help)")
    module, args = argv[0], argv[1:]
    path = os.environ.get(ENV, "")
    if path and not any(v in os.environ for v in SCHEDULER_JOB_VARS):
        status = _run_warm(path, module, args)
        if status is not None:
            sys.exit(status)
    from experiments import allocator

    allocator.tune()  # a worker has it from the server (set before the fork)
    sys.exit(run_module(module, args))


def _run_warm(path: str, module: str, args: list[str]) -> int | None:
    """The worker's exit status, or None when no compatible server answers (the caller then runs cold)."""
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        _send(conn, {"module": module, "args": args, "cwd": os.getcwd(), "path0": sys.path[0],
                     "env": dict(os.environ), "key": import_key()}, fds=[0, 1, 2])
        reply = _recv(conn)
    except (OSError, EOFError, ValueError):
        return None
    if "cold" in reply:
        print(f"[warm] {module}: cold start ({reply['cold']})", file=sys.stderr, flush=True)
        conn.close()
        return None
    pid = reply["pid"]
    forwarded = []

    def forward(sig, _frame):
        forwarded.append(sig)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        return int(_recv(conn)["status"])
    except (OSError, EOFError, ValueError):
        if forwarded:
            return 128 + forwarded[-1]
        print(f"[warm] {module}: worker {pid} ended without an exit status (killed by a signal?)",
              file=sys.stderr, flush=True)
        return 1


# ---------------------------------------------------------------- server


def _server_cli(argv: list[str]) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m experiments.warm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", required=True, metavar="SOCKET", help="listen on this unix socket path")
    ap.add_argument("--idle", type=float, default=900.0, help="exit after this many seconds without a job")
    ap.add_argument("--preload", default=None, help="comma-separated modules (default: experiments.warm.PRELOAD)")
    a = ap.parse_args(argv)
    serve(a.serve, idle=a.idle, names=PRELOAD if a.preload is None else tuple(filter(None, a.preload.split(","))))


def serve(path: str, *, idle: float = 900.0, names=PRELOAD) -> None:
    """Preload, then fork one worker per connection until `idle` seconds pass without one, the process that
    started the server ends, or SIGTERM."""
    from experiments import allocator

    t0 = time.time()
    allocator.tune()  # before the preloads, so the workers fork from a heap laid out as theirs will be
    loaded = preload(names)
    key = import_key()
    parent = os.getppid()
    tmp = f"{path}.{os.getpid()}.tmp"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(tmp)
    srv.listen(64)
    os.replace(tmp, path)  # clients see the socket only once it listens
    inode = os.stat(path).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"[warm] serving {path} (pid {os.getpid()}, {len(loaded)} preloads in {time.time() - t0:.1f} s)",
          flush=True)
    srv.settimeout(5.0)
    last = time.time()
    try:
        while time.time() - last < idle and os.getppid() == parent:
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            last = time.time()
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:
                srv.close()
                _worker(conn, key)  # never returns
            conn.close()
    finally:
        srv.close()
        try:
            if os.stat(path).st_ino == inode:  # not a newer server's socket at the same path
                os.unlink(path)
        except OSError:
            pass


def _worker(conn: socket.socket, key: dict) -> None:
    """In the forked child: become the client's process (fds, cwd, environment, argv), run, report, exit."""
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fds: list[int] = []
        req = _recv(conn, fds)
        if req["key"] != key:
            diff = sorted(k for k in set(req["key"]["env"]) | set(key["env"])
                          if req["key"]["env"].get(k) != key["env"].get(k))
            what = ", ".join(diff) or f"interpreter {req['key']['python']} vs {key['python']}"
            _send(conn, {"cold": f"import-time environment differs: {what}"})
            os._exit(0)
        if len(fds) != 3:
            _send(conn, {"cold": f"expected 3 file descriptors, got {len(fds)}"})
            os._exit(0)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for stream in (sys.stdout, sys.stderr):  # a fresh interpreter line-buffers a terminal, block-buffers a file
            stream.reconfigure(line_buffering=stream.isatty() or stream is sys.stderr)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.path[0] = req["path0"]
        for mod in [m for m in sys.modules if m == "experiments" or m.startswith("experiments.")]:
            del sys.modules[mod]  # never run this repository's code from the server's memory
        import random
        import tempfile

        tempfile.tempdir = None  # re-read TMPDIR (Snakemake sets it per job) as a fresh interpreter would
        random.seed()  # a fresh interpreter's unseeded streams differ per process; so do the workers'
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        _send(conn, {"pid": os.getpid()})
        threading.Thread(target=_exit_when_client_gone, args=(conn,), daemon=True).start()
        status = run_module(req["module"], req["args"])
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        try:
            _send(conn, {"status": status})
        except OSError:
            pass
        os._exit(status & 0xFF if status >= 0 else 1)


def _exit_when_client_gone(conn: socket.socket) -> None:
    try:
        while conn.recv(1):
            pass
    except OSError:
        pass
    os._exit(143)  # the client (the job Snakemake runs) is gone: stop like SIGTERM would


if __name__ == "__main__":
    main()
