"""DTensor gradients over processes against PyTorch's own DTensor: the same program
(`distributed_worker.dtensor_gradients`) on 2 processes under each, launched by each one's
launcher, gives each process the same local gradients. And PyTorch's launcher, `torchrun`,
starting tapegrad's worker unchanged."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


def _run(launcher: str, worker: str, out: Path, *args: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(HERE.parent / "src"), str(HERE), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", launcher, "--nproc-per-node", "2",
                           str(HERE / worker), str(out), *args], env=env, cwd=out,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_from_local_and_to_local_gradients_match_pytorch(tmp_path):
    pytest.importorskip("torch")
    _run("torch.distributed.run", "dtensor_torch_worker.py", tmp_path)
    _run("tapegrad.distributed.run", "distributed_worker.py", tmp_path, "dtensor")
    for rank in range(2):
        theirs = json.loads((tmp_path / f"torch{rank}.json").read_text())
        ours = json.loads((tmp_path / f"rank{rank}.json").read_text())["dtensor"]
        assert set(theirs) == {"grad_rows", "grad_cols", "grad_scaled", "to_local_grad",
                               "round_trip_grad"}
        for key, value in theirs.items():
            assert ours[key] == value, key


def test_torchrun_launches_a_tapegrad_script(tmp_path):
    pytest.importorskip("torch")
    from test_distributed import _expected_collectives
    _run("torch.distributed.run", "distributed_worker.py", tmp_path, "collectives")
    expected = _expected_collectives(2)
    for rank in range(2):
        ours = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert (ours["rank"], ours["world"]) == (rank, 2)
        for key, want in expected.items():
            np.testing.assert_allclose(np.asarray(ours["collectives"][key], float),
                                       np.asarray(want, float), rtol=1e-6, err_msg=key)
