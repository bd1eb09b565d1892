"""The ``environment`` block of a results file: what the numbers were measured on."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import torch

from srbench import __version__
from srbench.backends.registry import get_backend
from srbench.measure.energy import energy_counter_supported


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_facts(index: int) -> dict[str, Any]:
    """GPU name, driver, memory and clocks through NVML (``pynvml``); empty if unavailable."""
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        facts: dict[str, Any] = {
            "nvml_name": _str(pynvml.nvmlDeviceGetName(handle)),
            "driver": _str(pynvml.nvmlSystemGetDriverVersion()),
            "memory_total_mb": mem.total / 2**20,
            "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "mem_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "max_sm_clock_mhz": pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
            # Whether results carry energy_j (see srbench.measure.energy).
            "energy_counter": energy_counter_supported(pynvml, handle),
        }
        return facts
    except Exception as exc:  # NVML errors are environment facts, not failures
        return {"nvml_error": str(exc)}


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def collect_environment(device: torch.device, *, backend: str = "torch") -> dict[str, Any]:
    """srbench/torch/python versions, device, CPU, threads and (on GPU) CUDA/cuDNN/TF32 facts.

    With a deployment ``backend`` (``onnxruntime``) also the versions of ``onnx``,
    ``onnxruntime`` and ``onnxscript`` and ONNX Runtime's available execution providers.
    """
    env: dict[str, Any] = {
        "srbench": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(device),
        "cpu_model": cpu_model(),
        # The instruction set torch's CPU kernels dispatch to (e.g. "AVX512", "AVX2").
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        env.update(
            {
                "device_name": torch.cuda.get_device_name(index),
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
                "gpu": gpu_facts(index),
            }
        )
    else:
        env["device_name"] = env["cpu_model"]
    env.update(get_backend(backend).environment())
    return env


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (runnable + uninterruptible tasks), or None."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def busy_notes(environment: dict[str, Any]) -> list[str]:
    """Warnings when ``environment["load_average"]`` says other work competed for the CPUs.

    Busy: the 1-minute load average before the run exceeds half the CPU count (other
    processes were already running), or the one after exceeds the CPU count + 1 (more
    runnable tasks than cores, beyond srbench's own).
    """
    load = environment.get("load_average") or {}
    cpus = environment.get("cpu_count") or os.cpu_count() or 1
    before, after = load.get("before"), load.get("after")
    busy = (before is not None and before[0] > cpus / 2) or (after is not None and after[0] > cpus + 1)
    if not busy:
        return []
    return [
        f"load average {before[0] if before else '?'} before and {after[0] if after else '?'} after the "
        f"run on {cpus} CPUs: other processes competed for the machine; times are likely inflated"
    ]


#: Above this fraction of disturbed timed forwards (all models together), the run says the
#: machine did not give srbench's threads their cores.
DISTURBED_FRACTION_NOTE = 0.25


def thread_facts(requested: int | str, used: int, usable: int) -> dict[str, Any]:
    """The ``environment["threads"]`` block: ``requested`` (``--threads`` as given: N or
    ``"all"``), ``used`` (intra-op threads of torch and ONNX Runtime), ``usable_cores``
    (the affinity mask) and ``load_before`` (1-minute load average when the run started)."""
    load = load_average()
    return {
        "requested": requested,
        "used": used,
        "usable_cores": usable,
        "load_before": load[0] if load else None,
    }


def oversubscription_notes(environment: dict[str, Any], disturbed: int, timed: int) -> list[str]:
    """Why the run's threads did not have their cores, one line each (docs/runtime.md):

    * more threads than usable cores (the affinity mask);
    * more threads than free cores: usable cores minus the 1-minute load average before the
      run (other runnable tasks), floored at 0;
    * measured: more than :data:`DISTURBED_FRACTION_NOTE` of the ``timed`` forwards of all
      models were disturbed (``disturbed`` of them).

    Also sets ``environment["threads"]["oversubscribed"]``. Empty without a threads block."""
    facts = environment.get("threads")
    if not isinstance(facts, dict) or not facts.get("used"):
        return []
    used, usable, load = facts["used"], facts.get("usable_cores") or 1, facts.get("load_before")
    notes = []
    if used > usable:
        notes.append(f"{used} threads on {usable} usable core(s): oversubscribed by the affinity mask")
    elif load is not None and used > max(usable - load, 0.0) + 0.5:
        notes.append(
            f"{used} thread(s) with load average {load:.2f} on {usable} usable core(s) before the run: "
            f"about {max(usable - load, 0.0):.1f} core(s) were free"
        )
    if timed and disturbed / timed > DISTURBED_FRACTION_NOTE:
        notes.append(
            f"{disturbed} of {timed} timed forwards were disturbed (preempted): the machine did not "
            f"give srbench's {used} thread(s) their cores"
        )
    facts["oversubscribed"] = bool(notes)
    if notes:
        notes[-1] += (
            "; times are those of a shared machine (see README, Runtime; --threads 1 is the most stable)"
        )
    return notes
