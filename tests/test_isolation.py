"""A run that survives: worker isolation, timeouts, crashes, resume, tiling on OOM."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import srbench_test_models

from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.runner.isolation import measure_in_worker
from srbench.runner.orchestrator import run_benchmark
from srbench.runner.protocol import measure_model

TESTS = Path(__file__).parent
#: Small images and a small complexity input: these tests are about surviving, not figures.
FAST = ["--data", "sample-mini", "--profile-input", "1x3x64x64"]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> ImageCache:
    return ImageCache.build(load_dataset("sample-mini", scale=4), tmp_path_factory.mktemp("images"))


def _spec(name: str) -> ModelSpec:
    return ModelSpec(name=name, arch=name)


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("test_raise", "deliberate failure"),
        ("test_segfault", "SIGSEGV"),
        ("test_nan", "NaN or Inf"),
        ("test_wrongsize", "output shape"),
    ],
)
def test_worker_faults_become_error_rows(images: ImageCache, model: str, reason: str) -> None:
    result = measure_in_worker(_spec(model), images, RunConfig(), setup=srbench_test_models.register)
    assert result.status == "error"
    assert reason in (result.reason or "")


def test_timeout_kills_the_worker(images: ImageCache) -> None:
    t0 = time.monotonic()
    result = measure_in_worker(
        _spec("test_hang"), images, RunConfig(), timeout_s=8, setup=srbench_test_models.register
    )
    assert result.status == "error" and "--model-timeout 8" in (result.reason or "")
    assert time.monotonic() - t0 < 60


def test_isolated_result_equals_in_process(images: ImageCache) -> None:
    cfg = RunConfig(isolate=True)
    isolated = measure_in_worker(ModelSpec("bicubic", "bicubic"), images, cfg)
    local = measure_model(ModelSpec("bicubic", "bicubic"), images, cfg)
    assert isolated.status == local.status == "ok"
    assert [i.psnr_y for i in isolated.images] == [i.psnr_y for i in local.images]
    assert isolated.memory_kind == "cpu_forward_peak"


_MAIN_SCRIPT = """
import os, sys

with open(os.environ["SRBENCH_TEST_MARK"], "a") as fh:  # once per run of this file
    fh.write(__name__ + "\\n")

if __name__ == "__main__":
    from pathlib import Path

    from srbench.data.cache import ImageCache
    from srbench.data.datasets import load_dataset
    from srbench.results.config import RunConfig
    from srbench.runner.isolation import measure_in_worker
    from srbench.models.specs import ModelSpec

    images = ImageCache.build(load_dataset("sample-mini", scale=4), Path(sys.argv[1]))
    cfg = RunConfig(profile_input=[1, 3, 64, 64])
    spec = ModelSpec("bicubic", "bicubic")
    main = sys.modules["__main__"]
    before = (main.__spec__, main.__file__)
    hidden = measure_in_worker(spec, images, cfg, skip_main=True)
    restored = (main.__spec__, main.__file__) == before
    with open(os.environ["SRBENCH_TEST_MARK"], "a") as fh:
        fh.write("--\\n")
    shown = measure_in_worker(spec, images, cfg)
    print(hidden.status, shown.status, hidden.psnr_y == shown.psnr_y, restored)
"""


def test_skip_main_keeps_the_worker_from_rerunning_the_main_script(tmp_path: Path) -> None:
    # A parent run as a script (a Ray worker runs Ray's default_worker.py) has that script
    # re-run in every worker by multiprocessing, unless skip_main hides it at start.
    script, mark = tmp_path / "main_script.py", tmp_path / "mark.txt"
    script.write_text(_MAIN_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "images")],
        env={**os.environ, "SRBENCH_TEST_MARK": str(mark)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ok", "ok", "True", "True"]
    # The parent ran it as __main__; the skip_main worker not at all; the default one re-ran it.
    assert mark.read_text().splitlines() == ["__main__", "--", "__mp_main__"]


def test_main_hidden_overlapping_hides_until_the_last_leaves_then_restores() -> None:
    # The forkserver's start (a background thread) and a measuring worker's start may overlap.
    import multiprocessing.spawn as mp_spawn

    from srbench.runner.forkserver import main_hidden

    main = sys.modules["__main__"]
    before = (main.__spec__, getattr(main, "__file__", None))
    first, second = main_hidden(), main_hidden()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    prep = mp_spawn.get_preparation_data("x")  # what a starting worker would re-run
    assert "init_main_from_name" not in prep and "init_main_from_path" not in prep
    second.__exit__(None, None, None)
    assert (main.__spec__, getattr(main, "__file__", None)) == before


_SHADOWED_SCRIPT = """
import sys
from pathlib import Path

from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.results.config import RunConfig
from srbench.runner.isolation import measure_in_worker
from srbench.models.specs import ModelSpec

if __name__ == "__main__":
    images = ImageCache.build(load_dataset("sample-mini", scale=4), Path(sys.argv[1]))
    cfg = RunConfig(models=["bicubic"], data="sample-mini", profile_input=[1, 3, 8, 8])
    result = measure_in_worker(ModelSpec("bicubic", "bicubic"), images, cfg)
    print(result.status, result.reason)
"""


def test_a_srbench_folder_where_srbench_runs_does_not_shadow_it_in_workers(tmp_path: Path) -> None:
    # The worker server runs as `python -c`, which puts the current folder on its path: a
    # checkout named srbench there shadowed the installed package in every worker.
    shadow = tmp_path / "work"
    (shadow / "srbench").mkdir(parents=True)
    (shadow / "srbench" / "__init__.py").write_text("SHADOW = True  # an old checkout, say\n")
    script = tmp_path / "shadowed.py"
    script.write_text(_SHADOWED_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "images")],
        cwd=shadow,
        env={k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "ok", out.stdout + out.stderr[-2000:]


def test_crashing_model_leaves_others_intact(tmp_path: Path) -> None:
    def measure(spec, images, cfg, **kw):  # type: ignore[no-untyped-def]
        return measure_in_worker(
            spec, images, cfg, progress=kw.get("progress"), setup=srbench_test_models.register
        )

    cfg = RunConfig(models=["bicubic", "test_segfault", "test_slow"], data="sample-mini", isolate=True)
    run, interrupted = run_benchmark(cfg, tmp_path, measure=measure)
    assert not interrupted
    status = {m.name: m.status for m in run.models}
    assert status == {"bicubic": "ok", "test_segfault": "error", "test_slow": "no-weights"}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [m["name"] for m in saved["models"]] == ["bicubic", "test_segfault", "test_slow"]


def _cap_memory() -> None:
    # The cap is on address space (RLIMIT_AS), a stand-in for running out of RAM. glibc's
    # dynamic mmap threshold keeps freed blocks of up to 32 MiB mapped in the heap, where they
    # still count against an address-space cap (not against RAM), so pin the threshold in this
    # test worker only: every block of 64 KiB or more is then unmapped when freed, as RAM
    # accounting would see it. (srbench itself never changes allocator settings.)
    import ctypes

    ctypes.CDLL("libc.so.6").mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    # Leave ~350 MiB of address space above what the worker already maps.
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:"))
    limit = (vm + 350 * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_out_of_memory_falls_back_to_tiling(tmp_path: Path) -> None:
    import numpy as np

    from srbench.data.datasets import ImagePair

    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    lr = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    images = ImageCache.build([ImagePair("big", hr, lr)], tmp_path / "img")

    result = measure_in_worker(_spec("test_memhog"), images, RunConfig(warmup=0), setup=_capped_setup)
    assert result.status == "no-weights", result.reason
    assert result.images[0].tiled
    assert result.runtime_ms is None  # the tiled image's time is excluded
    assert any("tiled" in n for n in result.notes)


def _capped_setup() -> None:
    srbench_test_models.register()
    _cap_memory()


def _cli(args: list[str], env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env["SRBENCH_PLUGINS"] = "srbench_test_models"
    env["PYTHONPATH"] = str(TESTS) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    return subprocess.Popen(
        [sys.executable, "-m", "srbench", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _quality(path: Path) -> dict[str, object]:
    data = json.loads((path / "results.json").read_text())
    return {
        m["name"]: (m["status"], m["params"], m["flops"], m["psnr_y"], [i["psnr_y"] for i in m["images"]])
        for m in data["models"]
    }


def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    models = "bicubic,test_slow,span_ca"
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = _cli(["run", "--models", models, "--output", str(killed), *FAST])
    deadline = time.monotonic() + 120
    # Kill once the first model is saved and the second is under way.
    while time.monotonic() < deadline:
        f = killed / "results.json"
        if f.exists() and len(json.loads(f.read_text())["models"]) >= 1:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = json.loads((killed / "results.json").read_text())  # valid JSON after SIGKILL
    assert 1 <= len(partial["models"]) < 3

    resumed = _cli(["run", "--models", models, "--resume", str(killed), *FAST])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "already measured" in err
    full = _cli(["run", "--models", models, "--output", str(whole), *FAST])
    _, err = full.communicate(timeout=300)
    assert full.returncode == 0, err
    assert _quality(killed) == _quality(whole)


def test_resume_refuses_another_config(tmp_path: Path) -> None:
    first = _cli(["run", "--models", "bicubic", "--output", str(tmp_path), "--no-isolate", *FAST])
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    other = _cli(
        ["run", "--models", "bicubic", "--resume", str(tmp_path), "--scale", "2", "--no-isolate", *FAST]
    )
    _, err = other.communicate(timeout=300)
    assert other.returncode == 2
    assert "another configuration" in err and "--force" in err and "Traceback" not in err


def test_first_ctrl_c_saves_and_exits_non_zero(tmp_path: Path) -> None:
    proc = _cli(["run", "--models", "test_slow,bicubic", "--output", str(tmp_path), *FAST])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (tmp_path / ".images" / "names.txt").exists():
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    data = json.loads((tmp_path / "results.json").read_text())
    slow = data["models"][0]
    assert slow["name"] == "test_slow" and slow["status"] == "error" and "interrupted" in slow["reason"]
    # The exact command that resumes, in the message and in the row.
    assert f"resume with: srbench run --resume {tmp_path}\n" in err
    assert slow["reason"].endswith(f"srbench run --resume {tmp_path}")
    assert 0 < len(slow["images"]) < 4
