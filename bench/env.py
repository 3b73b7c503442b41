"""Environment fingerprint and memory readings."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import psutil


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (x86 AVX512_BF16 / AMX, Arm BF16); without it torch emulates."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})


@lru_cache(maxsize=1)
def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
            text=True, timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return ""


def fingerprint(gpu_name: str = "") -> dict[str, object]:
    """Columns that say where and when a row was measured."""
    return {
        "env_cpu": cpu_model(),
        "env_cores": psutil.cpu_count(logical=False) or os.cpu_count(),
        "env_logical_cpus": psutil.cpu_count(logical=True),
        "env_gpu": gpu_name,
        "env_python": platform.python_version(),
        "env_torch": _version("torch"),
        "env_onnxruntime": _version("onnxruntime"),
        "env_os": platform.platform(terse=True),
        "env_git_commit": git_commit(),
        "env_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def peak_rss_mb() -> float:
    """The process's high-water resident set size, from the kernel's own accounting.

    Linux keeps VmHWM exact at every page fault, so nothing is missed between polls and reading
    it costs nothing during timing. Elsewhere ru_maxrss gives the same figure."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB -> MiB
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if platform.system() == "Darwin" else rss / 1024.0


def current_rss_mb() -> float:
    return psutil.Process().memory_info().rss / (1024.0 * 1024.0)


