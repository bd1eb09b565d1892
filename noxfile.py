"""nox sessions: ``lint``, ``tests``, ``regression``, ``quickstart``, ``browser``, ``ray``, ``bench``
(figures, not pass/fail) and ``gpu`` (the CUDA check, only on a machine with a GPU; never a default session).

Every session installs ``torch==2.13.0`` before the project: a looser torch requirement
would let pip pull a CUDA build with several GB of nvidia-* wheels on a CPU machine.
"""

from __future__ import annotations

import os
import shutil
import sys

import nox


def _browser_available() -> bool:
    """Whether the system Chromium is here (the browser session cannot pass without it)."""
    if os.environ.get("SRBENCH_REQUIRE_BROWSER") == "1":
        return True  # CI: .ci/run installed it, and a missing browser must fail, not skip
    return any(
        shutil.which(name) or os.path.exists(name)
        for name in ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")
    )


#: ``nox`` alone (the README's test command) runs every test session. The browser session
#: needs Debian's Chromium, which pip cannot install: without it the session is left out,
#: and nox says so; .ci/run installs Chromium and sets SRBENCH_REQUIRE_BROWSER=1.
nox.options.sessions = ["lint", "tests", "regression", "quickstart", "ray"]
if _browser_available():
    nox.options.sessions.append("browser")
else:
    sys.stderr.write(
        "nox: no Chromium found, so the browser session is left out; "
        "install it with: apt-get install -y chromium (then run: nox -s browser)\n"
    )
nox.options.default_venv_backend = "venv"

TORCH = "torch==2.13.0"


def _install(session: nox.Session, extras: str = "test") -> None:
    session.install(TORCH)
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (the README's test command runs this session)."""
    # The onnx extra: tests/test_onnx.py exports and runs ONNX Runtime (skipped without it).
    _install(session, "test,onnx")
    env = {"SRBENCH_WEIGHTS_DIR": os.environ.get("SRBENCH_WEIGHTS_DIR", "../shared/weights")}
    session.run("pytest", "-q", "-m", "not ray and not browser", *session.posargs, env=env)


@nox.session
def ray(session: nox.Session) -> None:
    """The Ray engine tests: they start (and stop) their own loopback-only Ray cluster."""
    _install(session, "test,ray")
    env = {"SRBENCH_WEIGHTS_DIR": os.environ.get("SRBENCH_WEIGHTS_DIR", "../shared/weights")}
    session.run("pytest", "-q", "-m", "ray", "tests/test_sweep_ray.py", *session.posargs, env=env)


@nox.session
def browser(session: nox.Session) -> None:
    """The tests that need a real browser (report.html in Chromium, the browser backend).

    Needs the system Chromium (``apt-get install -y chromium``) and npm: ``srbench browser
    setup`` installs the pinned onnxruntime-web into srbench's cache. A missing piece fails
    these tests here (SRBENCH_REQUIRE_BROWSER=1) instead of skipping them.
    """
    _install(session, "test,browser,onnx")
    session.run("srbench", "browser", "setup")
    env = {
        "SRBENCH_WEIGHTS_DIR": os.environ.get("SRBENCH_WEIGHTS_DIR", "../shared/weights"),
        "SRBENCH_REQUIRE_BROWSER": "1",
        "SRBENCH_OFFLINE": "1",
    }
    session.run("pytest", "-q", "-m", "browser", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Harness overhead, metrics, resize, timer fidelity, fusion and counting figures."""
    # onnx: the ONNX Runtime / PyTorch latency figures; ray: the sweep figure.
    _install(session, "test,onnx,ray")
    out = session.posargs[0] if session.posargs else "bench-out"
    env = {"SRBENCH_WEIGHTS_DIR": os.environ.get("SRBENCH_WEIGHTS_DIR", "../shared/weights")}
    session.run("python", "-m", "srbench.selfcheck.bench", "--output", out, env=env)


@nox.session
def gpu(session: nox.Session) -> None:
    """The CUDA paths end to end on one GPU, < 5 min (not a default session; needs a GPU).

    ``nox -s gpu -- DIR`` writes DIR/gpu_check.json (default gpu-check-out). On Linux the
    PyPI torch wheel is the CUDA build; on a machine without a CUDA device the check exits 2
    with one line saying so.
    """
    _install(session, "test,gpu")
    out = session.posargs[0] if session.posargs else "gpu-check-out"
    env = {"SRBENCH_WEIGHTS_DIR": os.environ.get("SRBENCH_WEIGHTS_DIR", "../shared/weights")}
    session.run("python", "-m", "srbench.selfcheck.gpu_check", "--output", out, env=env)


#: The CI regression fixture: every model with official weights, plus efficiency-only rows.
REGRESSION_MODELS = "bicubic,rlfn,rlfn_paper,rlfn_s,span,span_tiny,spanf,efdn,span_ca,fdat_tiny,grla"
REGRESSION_BASELINE = "results/baselines/ci-cpu.json"


@nox.session
def regression(session: nox.Session) -> None:
    """Run the fixture benchmark on sample-mini and check it against the committed baseline.

    ``nox -s regression -- --update`` rewrites the baseline on purpose.
    """
    _install(session)
    out = os.path.join(session.create_tmp(), "regression")
    env = {
        "SRBENCH_WEIGHTS_DIR": os.environ.get("SRBENCH_WEIGHTS_DIR", "../shared/weights"),
        "SRBENCH_OFFLINE": "1",
    }
    session.run(
        "srbench",
        "run",
        "--models",
        REGRESSION_MODELS,
        "--data",
        "sample-mini",
        "--profile-input",
        "1x3x64x64",
        "--output",
        out,
        env=env,
    )
    session.run(
        "srbench",
        "check",
        os.path.join(out, "results.json"),
        "--baseline",
        REGRESSION_BASELINE,
        "--per-image",
        *session.posargs,
    )


#: What the quickstart session asserts: these rows must come back with real PSNR.
QUICKSTART_MODELS = "rlfn,span,span_ca"


@nox.session
def quickstart(session: nox.Session) -> None:
    """The README's first command as a new user runs it: a fresh venv, a plain (non-editable)
    ``pip install .``, ``srbench run`` from the project root (on sample-mini to stay short).

    An editable install hides packaging bugs (a root folder shadowing the installed package,
    package data left out of the wheel); this session does not.
    """
    session.run("python", "-m", "pip", "install", "-q", TORCH)
    session.run("python", "-m", "pip", "install", "-q", ".")
    out = os.path.join(session.create_tmp(), "quickstart")
    env = {"SRBENCH_WEIGHTS_DIR": os.environ.get("SRBENCH_WEIGHTS_DIR", "../shared/weights")}
    session.run(
        "srbench", "run", "--models", QUICKSTART_MODELS, "--data", "sample-mini", "--output", out, env=env
    )
    # The installed package, not the checkout, must have answered, and with real quality.
    session.run("python", "-c", _QUICKSTART_CHECK, os.path.join(out, "results.json"))


_QUICKSTART_CHECK = """
import json, math, sys
import srbench
assert "site-packages" in srbench.__file__, f"srbench imported from {srbench.__file__}, not the install"
rows = {m["name"]: m for m in json.load(open(sys.argv[1]))["models"]}
for name in ("rlfn", "span"):
    psnr = rows[name]["psnr_y"]
    assert rows[name]["status"] == "ok" and isinstance(psnr, float) and 20 < psnr < 60, (name, rows[name])
assert rows["span_ca"]["status"] == "no-weights" and rows["span_ca"]["psnr_y"] is None
print("quickstart ok:", {n: round(rows[n]["psnr_y"], 4) for n in ("rlfn", "span")})
"""
