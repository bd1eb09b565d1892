"""nox sessions: ``lint``, ``tests``, ``regression``, ``quickstart``, ``ray``, ``browser``, ``docs``,
``bench`` (figures, not pass/fail) and ``gpu`` (the CUDA check, only on a machine with a GPU; never a
default session).

One torch, not one per session: the README's test command (``python -m pip install torch==2.13.0 nox
&& nox``) installs ``torch==2.13.0`` beside nox. The sessions that test the checkout (``tests``,
``regression``, ``ray``, ``browser``, ``bench``) share one editable environment
(:func:`_shared_env`), rebuilt only when what it was built from changes; ``quickstart`` keeps a
fresh environment of its own (a plain ``pip install .`` is its point). Both get a ``.pth`` file
naming the site-packages of nox's own environment (:func:`_see_outer_packages`), so pip finds
that torch already satisfied. (``--system-site-packages`` would not do: it exposes the *base*
interpreter, not the venv nox runs in, and a torch per environment came back.)
``lint`` and ``docs`` have small environments of their own (ruff; MkDocs), ``gpu`` a full one (a
CUDA torch). Before this, six environments each held a torch: 8.6 GB and 43 min on the 2-core
machine under load (CONTRIBUTING.md has the figures after).

``torch==2.13.0`` is still installed (a no-op when present) before the project everywhere: a looser
torch requirement would let pip pull a CUDA build with several GB of nvidia-* wheels on a CPU machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

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
nox.options.sessions = ["lint", "tests", "regression", "quickstart", "ray", "docs"]
if _browser_available():
    nox.options.sessions.append("browser")
else:
    sys.stderr.write(
        "nox: no Chromium found, so the browser session is left out; "
        "install it with: apt-get install -y chromium (then run: nox -s browser)\n"
    )
#: virtualenv (a nox dependency) seeds pip from its cache: 11 s per environment here under load,
#: against 37 s for ``python -m venv``, whose ensurepip reinstalls pip each time.
nox.options.default_venv_backend = "virtualenv"

TORCH = "torch==2.13.0"
ROOT = Path(__file__).resolve().parent
#: Every extra the shared sessions need, installed once (gpu's CUDA torch stays apart).
SHARED_EXTRAS = "test,onnx,ray,browser"
#: The site-packages of the environment nox runs in, where the test command put torch.
OUTER_SITE = list(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")))


def _outer_torch() -> str:
    """The torch version beside nox ("absent" without one): part of the shared environment's key."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _see_outer_packages(site_packages: str | Path) -> None:
    """Append nox's own site-packages to an environment's ``sys.path`` with a ``.pth`` file.

    The environment's own packages come first, so whatever it installs (a torch other than the
    pinned one beside nox, say) shadows the outer copy; pip counts the outer packages as
    installed, so ``pip install torch==2.13.0`` is a no-op when that torch is there.
    """
    Path(site_packages, "_srbench_outer_site.pth").write_text("".join(f"{p}\n" for p in OUTER_SITE))


class Shared:
    """The shared environment: ``bin(name)`` is one of its executables, ``env`` its variables.

    Sessions using it have no nox environment of their own (``venv_backend="none"``), so every
    command is named by its path here: nox would otherwise look it up on the outer ``PATH``.
    """

    def __init__(self, location: Path) -> None:
        self.location = location
        self.env = {
            "VIRTUAL_ENV": str(location),
            "PATH": str(location / "bin") + os.pathsep + os.environ.get("PATH", ""),
            "SRBENCH_WEIGHTS_DIR": os.environ.get("SRBENCH_WEIGHTS_DIR", "../shared/weights"),
        }

    def bin(self, name: str) -> str:
        return str(self.location / "bin" / name)

    def run(self, session: nox.Session, name: str, *args: str, **env: str) -> None:
        """Run the environment's ``name`` with ``args``, its variables plus ``env``."""
        session.run(self.bin(name), *args, env=self.env | env, external=True)


def _shared_env(session: nox.Session) -> Shared:
    """Create or reuse the one environment the checkout's sessions share.

    It lives in nox's cache folder (``.nox/.cache/shared``, or under ``--envdir``) and holds an
    editable install of the project with :data:`SHARED_EXTRAS`. It is reused only when its stamp
    matches the SHA-256 of what it was built from (pyproject.toml, the extras, the torch pin, the
    interpreter and its version, the torch version beside nox); anything else rebuilds it from
    scratch, so a dependency change never runs against a stale environment. Source edits need no
    rebuild (editable install).
    A lock keeps ``nox --parallel`` from building it twice at once.
    """
    location = Path(session.cache_dir) / "shared"
    python = location / "bin" / "python"
    key = hashlib.sha256(
        json.dumps(
            [
                (ROOT / "pyproject.toml").read_text(),
                SHARED_EXTRAS,
                TORCH,
                sys.executable,
                sys.version,
                _outer_torch(),
            ]
        ).encode()
    ).hexdigest()
    stamp = location / "srbench-env.sha256"
    location.parent.mkdir(parents=True, exist_ok=True)
    with open(location.parent / "shared.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if stamp.read_text() == key and python.exists():
                session.log(f"reusing the shared environment {location}")
                return Shared(location)
        shutil.rmtree(location, ignore_errors=True)
        session.log(f"creating the shared environment {location}")
        subprocess.run([sys.executable, "-m", "virtualenv", "-q", str(location)], check=True)
        _see_outer_packages(_site_packages(str(python)))
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        session.run(*pip, TORCH, external=True)
        session.run(*pip, "-e", f"{ROOT}[{SHARED_EXTRAS}]", external=True)
        stamp.write_text(key)
    return Shared(location)


def _site_packages(python: str) -> str:
    """The site-packages folder of the environment whose interpreter is ``python``."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def _install(session: nox.Session, extras: str = "test") -> None:
    session.install(TORCH)
    session.install("-e", f".[{extras}]")


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The test suite (the README's test command runs this session)."""
    # The shared environment has the onnx extra: tests/test_onnx.py exports and runs ONNX Runtime.
    _shared_env(session).run(
        session, "python", "-m", "pytest", "-q", "-m", "not ray and not browser", *session.posargs
    )


@nox.session(venv_backend="none")
def ray(session: nox.Session) -> None:
    """The Ray engine tests: they start (and stop) their own loopback-only Ray cluster."""
    args = ("-m", "pytest", "-q", "-m", "ray", "tests/test_sweep_ray.py", *session.posargs)
    _shared_env(session).run(session, "python", *args)


@nox.session(venv_backend="none")
def browser(session: nox.Session) -> None:
    """The tests that need a real browser (report.html in Chromium, the browser backend).

    Needs the system Chromium (``apt-get install -y chromium``) and npm: ``srbench browser
    setup`` installs the pinned onnxruntime-web into srbench's cache. A missing piece fails
    these tests here (SRBENCH_REQUIRE_BROWSER=1) instead of skipping them.
    """
    shared = _shared_env(session)
    shared.run(session, "srbench", "browser", "setup")
    args = ("-m", "pytest", "-q", "-m", "browser", *session.posargs)
    shared.run(session, "python", *args, SRBENCH_REQUIRE_BROWSER="1", SRBENCH_OFFLINE="1")


@nox.session(reuse_venv=True)
def lint(session: nox.Session) -> None:
    """ruff check and format check (its own small environment: ruff needs no torch)."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Harness overhead, metrics, resize, timer fidelity, fusion and counting figures."""
    # The shared environment's onnx extra: the ONNX Runtime / PyTorch latency figures; ray: the sweep.
    out = session.posargs[0] if session.posargs else "bench-out"
    _shared_env(session).run(session, "python", "-m", "srbench.selfcheck.bench", "--output", out)


@nox.session
def gpu(session: nox.Session) -> None:
    """The CUDA paths end to end on one GPU, < 5 min (not a default session; needs a GPU).

    ``nox -s gpu -- DIR`` writes DIR/gpu_check.json (default gpu-check-out). On Linux the
    PyPI torch wheel is the CUDA build; on a machine without a CUDA device the check exits 2
    with one line saying so. Its own environment, without the system site-packages: the
    torch beside nox may be a CPU build.
    """
    _install(session, "test,gpu")
    out = session.posargs[0] if session.posargs else "gpu-check-out"
    env = {"SRBENCH_WEIGHTS_DIR": os.environ.get("SRBENCH_WEIGHTS_DIR", "../shared/weights")}
    session.run("python", "-m", "srbench.selfcheck.gpu_check", "--output", out, env=env)


#: The CI regression fixture: every model with official weights, plus efficiency-only rows.
REGRESSION_MODELS = "bicubic,rlfn,rlfn_paper,rlfn_s,span,span_tiny,spanf,efdn,span_ca,fdat_tiny,grla"
REGRESSION_BASELINE = "results/baselines/ci-cpu.json"


@nox.session(venv_backend="none")
def regression(session: nox.Session) -> None:
    """Run the fixture benchmark on sample-mini and check it against the committed baseline.

    ``nox -s regression -- --update`` rewrites the baseline on purpose.
    """
    shared = _shared_env(session)
    out = os.path.join(session.create_tmp(), "regression")
    run = ("run", "--models", REGRESSION_MODELS, "--data", "sample-mini", "--profile-input", "1x3x64x64")
    shared.run(session, "srbench", *run, "--output", out, SRBENCH_OFFLINE="1")
    check = ("check", os.path.join(out, "results.json"), "--baseline", REGRESSION_BASELINE, "--per-image")
    shared.run(session, "srbench", *check, *session.posargs)


#: What the quickstart session asserts: these rows must come back with real PSNR.
QUICKSTART_MODELS = "rlfn,span,span_ca"


@nox.session(reuse_venv=False)
def quickstart(session: nox.Session) -> None:
    """The README's first command as a new user runs it: a fresh venv, a plain (non-editable)
    ``pip install .``, ``srbench run`` from the project root (on sample-mini to stay short).

    An editable install hides packaging bugs (a root folder shadowing the installed package,
    package data left out of the wheel); this session does not. The venv sees the torch
    installed beside nox, as the README's user has the torch its first step installed; every
    other dependency is installed into it afresh.
    """
    _see_outer_packages(_site_packages(os.path.join(session.bin, "python")))
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


@nox.session(reuse_venv=True)
def docs(session: nox.Session) -> None:
    """Build the documentation site with ``mkdocs build --strict``: a broken link, anchor or
    missing page fails. Its own small environment with the ``docs`` extra's requirements only
    (MkDocs needs neither torch nor srbench). ``nox -s docs -- DIR`` keeps the site in DIR.
    """
    session.install(*nox.project.load_toml("pyproject.toml")["project"]["optional-dependencies"]["docs"])
    out = session.posargs[0] if session.posargs else os.path.join(session.create_tmp(), "site")
    session.run("mkdocs", "build", "--strict", "--site-dir", out)
