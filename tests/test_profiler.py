"""tapegrad.profiler: PyTorch's schedule and cycle semantics (against torch.profiler), and real
JAX traces read back: record_function ranges, key_averages, Chrome traces, TensorBoard output."""
from __future__ import annotations

import gzip
import json
import os
import warnings

import pytest

import tapegrad as tg
from tapegrad import profiler

SCHEDULES = [dict(wait=1, warmup=1, active=2, repeat=2), dict(wait=0, warmup=2, active=1),
             dict(wait=2, warmup=1, active=3, repeat=1, skip_first=3),
             dict(wait=3, warmup=1, active=1, repeat=2, skip_first=1, skip_first_wait=1)]


@pytest.mark.parametrize("args", SCHEDULES)
def test_schedule_matches_pytorch(args):
    torch = pytest.importorskip("torch")
    ours, theirs = profiler.schedule(**args), torch.profiler.schedule(**args)
    assert [ours(i).name for i in range(30)] == [theirs(i).name for i in range(30)]


def test_schedule_errors_and_warning_match_pytorch():
    torch = pytest.importorskip("torch")
    for m in (torch.profiler, profiler):
        with pytest.raises(AssertionError, match="Invalid profiler schedule arguments"):
            m.schedule(wait=0, warmup=1, active=0)
        with pytest.warns(UserWarning, match="won't be using warmup"):
            m.schedule(wait=0, warmup=0, active=1)


def _saves(lib, **sched):
    """The step numbers at which a profile over 9 steps hands a trace to on_trace_ready."""
    m, seen = lib.profiler, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with m.profile(activities=[m.ProfilerActivity.CPU], schedule=m.schedule(**sched),
                       on_trace_ready=lambda p: seen.append(p.step_num)) as prof:
            for _ in range(9):
                (lib.ones(3) * 2).sum().item()
                prof.step()
    return seen


@pytest.mark.parametrize("sched", [dict(wait=1, warmup=1, active=2, repeat=1),
                                   dict(wait=4, warmup=1, active=1, repeat=1),
                                   dict(wait=0, warmup=1, active=3)])  # the last cycle cut short
def test_cycles_are_saved_at_pytorchs_steps(sched):
    torch = pytest.importorskip("torch")
    saved = _saves(tg, **sched)
    assert saved and saved == _saves(torch, **sched)


def test_a_trace_records_ranges_and_tapegrad_work(tmp_path):
    x = tg.randn(16, 16, requires_grad=True)
    with profiler.profile() as prof:
        for _ in range(3):
            with profiler.record_function("forward_step"):
                loss = (x.tanh() @ x).sum()
            with profiler.record_function("backward_step"):
                loss.backward()
        x.grad.sum().item()  # a value read inside the trace

    events = prof.events()
    names = [e["name"] for e in events]
    assert names.count("forward_step") == 3 and names.count("backward_step") == 3
    assert any(n.startswith("PjitFunction") for n in names)  # tapegrad's programs ran in it

    averages = {e.key: e for e in prof.key_averages()}
    step = averages["backward_step"]
    assert step.count == 3
    ranges = [e["dur"] for e in events if e["name"] == "backward_step"]
    assert step.cpu_time_total == pytest.approx(sum(ranges))
    assert 0 <= step.self_cpu_time_total <= step.cpu_time_total
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=5)
    assert "Self CPU %" in table and "# of Calls" in table
    assert len([line for line in table.splitlines() if "us" in line or "ms" in line]) >= 5

    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    exported = json.loads(path.read_text())["traceEvents"]
    assert sum(e.get("name") == "forward_step" for e in exported) == 3


def test_self_time_excludes_nested_events():
    with profiler.profile() as prof:
        with profiler.record_function("outer"):
            for _ in range(2):
                with profiler.record_function("inner"):
                    tg.ones(50).sum().item()
    events = prof.events()
    (outer,) = [e for e in events if e["name"] == "outer"]
    inside = [e for e in events if e["tid"] == outer["tid"] and e is not outer
              and _within(e, outer)]
    direct = [e for e in inside if not any(p is not e and _within(e, p) for p in inside)]
    avg = {e.key: e for e in prof.key_averages()}
    assert avg["inner"].count == 2
    assert avg["outer"].cpu_time_total == pytest.approx(outer["dur"])
    assert avg["outer"].self_cpu_time_total == pytest.approx(
        outer["dur"] - sum(e["dur"] for e in direct))


def _within(e: dict, p: dict) -> bool:
    return p["ts"] <= e["ts"] and e["ts"] + e["dur"] <= p["ts"] + p["dur"]


def test_tensorboard_trace_handler_writes_both_formats(tmp_path):
    handler = profiler.tensorboard_trace_handler(str(tmp_path), worker_name="w0", use_gzip=True)
    with profiler.profile(on_trace_ready=handler):
        tg.ones(4).sum().item()
    runs = os.listdir(tmp_path / "plugins" / "profile")
    assert len(runs) == 1
    assert any(f.endswith(".xplane.pb") for f in os.listdir(tmp_path / "plugins" / "profile" / runs[0]))
    (chrome,) = [f for f in os.listdir(tmp_path) if f.startswith("w0.")]
    assert chrome.endswith(".pt.trace.json.gz")
    with gzip.open(tmp_path / chrome, "rt") as f:
        assert json.load(f)["traceEvents"]


def test_what_the_trace_cannot_give_raises():
    with profiler.profile(record_shapes=True) as prof:
        tg.ones(2).sum().item()
    with pytest.raises(NotImplementedError, match="no input shapes"):
        prof.key_averages(group_by_input_shape=True)
    with pytest.raises(AttributeError, match="cuda_time_total"):
        prof.key_averages().table(sort_by="cuda_time_total")
    unfinished = profiler.profile()
    with pytest.raises(RuntimeError, match="has not finished recording"):
        unfinished.events()


def test_record_function_decorates_and_is_free_outside_a_profile():
    @profiler.record_function("decorated")
    def f(t):
        return t * 3

    assert f(tg.ones(2)).tolist() == [3.0, 3.0]  # no profile: runs as is
    with profiler.profile() as prof:
        f(tg.ones(2)).tolist()
    assert [e["name"] for e in prof.events()].count("decorated") == 1
