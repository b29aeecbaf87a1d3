"""DTensor gradients over processes against PyTorch's own DTensor: the same program
(`distributed_worker.dtensor_gradients`) on 2 processes under each, launched by each one's
launcher, gives each process the same local gradients. And PyTorch's launcher, `torchrun`,
starting tapegrad's worker unchanged."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import launches

HERE = Path(__file__).parent


def _launch(name: str, launcher: str, worker: str, *args: str, users: tuple) -> Path:
    """Declares `worker` on 2 processes under `launcher` (tests/launches.py), on a free port (two
    may run at once); its output directory."""
    out = launches.scratch(name)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(HERE.parent / "src"), str(HERE), os.environ.get("PYTHONPATH", "")]))
    launches.add(name, [sys.executable, "-m", launcher, "--standalone", "--nproc-per-node", "2",
                        HERE / worker, out, *args], env=env, cwd=out, users=users)
    return out


def _wait(name: str) -> None:
    proc = launches.result(name)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


_GRADIENTS = ("test_from_local_and_to_local_gradients_match_pytorch",)
_THEIRS = _launch("dtensor_torch", "torch.distributed.run", "dtensor_torch_worker.py",
                  users=_GRADIENTS)
_OURS = _launch("dtensor_tapegrad", "tapegrad.distributed.run", "distributed_worker.py",
                "dtensor", users=_GRADIENTS)
_TORCHRUN = _launch("torchrun", "torch.distributed.run", "distributed_worker.py", "collectives",
                    users=("test_torchrun_launches_a_tapegrad_script",))


def test_from_local_and_to_local_gradients_match_pytorch():
    pytest.importorskip("torch")
    _wait("dtensor_torch")
    _wait("dtensor_tapegrad")
    for rank in range(2):
        theirs = json.loads((_THEIRS / f"torch{rank}.json").read_text())
        ours = json.loads((_OURS / f"rank{rank}.json").read_text())["dtensor"]
        assert set(theirs) == {"grad_rows", "grad_cols", "grad_scaled", "to_local_grad",
                               "round_trip_grad"}
        for key, value in theirs.items():
            assert ours[key] == value, key


def test_torchrun_launches_a_tapegrad_script():
    pytest.importorskip("torch")
    from test_distributed import _expected_collectives
    _wait("torchrun")
    expected = _expected_collectives(2)
    for rank in range(2):
        ours = json.loads((_TORCHRUN / f"rank{rank}.json").read_text())
        assert (ours["rank"], ours["world"]) == (rank, 2)
        for key, want in expected.items():
            np.testing.assert_allclose(np.asarray(ours["collectives"][key], float),
                                       np.asarray(want, float), rtol=1e-6, err_msg=key)
