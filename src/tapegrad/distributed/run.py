"""`python -m tapegrad.distributed.run`: a torchrun-style launcher for tapegrad scripts.

    python -m tapegrad.distributed.run --nproc-per-node 4 train.py --lr 0.1

starts one process per rank on this machine with torchrun's environment variables (`RANK`,
`LOCAL_RANK`, `WORLD_SIZE`, `LOCAL_WORLD_SIZE`, `GROUP_RANK`, `MASTER_ADDR`, `MASTER_PORT`, ...),
so `tapegrad.distributed.init_process_group()` finds them. When one process fails, the others
are stopped and the launcher exits with its code. Several machines: run it on each with
`--nnodes`, `--node-rank` and rank 0's `--master-addr`/`--master-port`.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tapegrad.distributed.run",
                                description="Start one process per rank of a tapegrad script, "
                                            "with torchrun's environment variables.")
    p.add_argument("--nnodes", type=int, default=1, help="number of machines (default 1)")
    p.add_argument("--node-rank", "--node_rank", type=int, default=0,
                   help="this machine's rank among them (default 0)")
    p.add_argument("--nproc-per-node", "--nproc_per_node", type=int, default=1,
                   help="processes on this machine (default 1)")
    p.add_argument("--master-addr", "--master_addr", default="127.0.0.1",
                   help="rank 0's machine (default 127.0.0.1)")
    p.add_argument("--master-port", "--master_port", type=int, default=None,
                   help="a free port on rank 0's machine (default: any free port, one machine)")
    p.add_argument("--standalone", action="store_true",
                   help="one machine, any free port (what the defaults do already)")
    p.add_argument("-m", "--module", action="store_true",
                   help="run the script argument as a module (python -m)")
    p.add_argument("script", help="the script (or module with -m) to run")
    p.add_argument("script_args", nargs=argparse.REMAINDER)
    return p


def _environments(args) -> list:
    if args.nproc_per_node < 1 or args.nnodes < 1 or not 0 <= args.node_rank < args.nnodes:
        raise SystemExit(f"invalid --nproc-per-node {args.nproc_per_node}, --nnodes "
                         f"{args.nnodes} or --node-rank {args.node_rank}")
    if args.master_port is None:
        if args.nnodes > 1:
            raise SystemExit("--master-port is required with --nnodes > 1")
        args.master_port = _free_port()
    world = args.nnodes * args.nproc_per_node
    envs = []
    for local_rank in range(args.nproc_per_node):
        rank = args.node_rank * args.nproc_per_node + local_rank
        env = dict(os.environ)
        env.update({
            "RANK": str(rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(args.nproc_per_node), "GROUP_RANK": str(args.node_rank),
            "GROUP_WORLD_SIZE": str(args.nnodes), "ROLE_RANK": str(rank),
            "ROLE_WORLD_SIZE": str(world), "ROLE_NAME": "default",
            "MASTER_ADDR": args.master_addr, "MASTER_PORT": str(args.master_port),
            "TORCHELASTIC_RUN_ID": "none", "TORCHELASTIC_RESTART_COUNT": "0",
            "TORCHELASTIC_MAX_RESTARTS": "0",
        })
        envs.append(env)
    return envs


def _stop(procs: list) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: list | None = None) -> int:
    args = _parser().parse_args(argv)
    command = [sys.executable, "-u"] + (["-m"] if args.module else []) + [args.script]
    procs = [subprocess.Popen(command + args.script_args, env=env)
             for env in _environments(args)]
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                local_rank, code = failed[0]
                print(f"tapegrad.distributed.run: local rank {local_rank} (pid "
                      f"{procs[local_rank].pid}) exited with code {code}; stopping the others",
                      file=sys.stderr, flush=True)
                _stop(procs)
                return code if code > 0 else 128 - code
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.1)
    except KeyboardInterrupt:
        _stop(procs)
        return 130


if __name__ == "__main__":
    sys.exit(main())
