"""CPU threads for the commands: how many the machine really gives us, and how idle threads wait.

Set in the environment before torch is imported (OpenMP reads it once, when it starts); a value the
user has set is kept. When the command starts, the CPU time other processes used over a short
sample (:data:`LOAD_SAMPLE_SECONDS`) decides how idle threads wait: on a free machine torch's own
defaults (libgomp's long spin, the fastest alone), beside a busy process a passive wait
(``OMP_WAIT_POLICY=PASSIVE``: idle threads sleep at once), which keeps waiting threads from taking
the CPU from the threads doing work. Measured with benchmarks/demo_contention.py (docs/benchmarks.md).
Several processes started together by a launcher (``WORLD_SIZE`` > 1) always share: none of them
sees the others busy yet. ``GRPO_EXT_THREADS=torch`` leaves everything to torch;
``GRPO_EXT_THREADS=share`` always shares.
"""

from __future__ import annotations

import math
import os

#: How idle OpenMP threads wait beside a busy process: libgomp's default spin (300,000 rounds) keeps
#: them busy for milliseconds, which takes the CPU from the threads doing work; passive sleeps at once.
WAIT_POLICY = "PASSIVE"
#: How long the command samples the machine's load when it starts.
LOAD_SAMPLE_SECONDS = 0.2
#: Other processes using at least this many CPUs' worth of time make the command share the CPU.
BUSY_CPUS = 0.5


def available_cpus(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (containers, CI runners)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_quota(cgroup_root)
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


def cgroup_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs' worth of time a cgroup quota allows (1.5 = one and a half CPUs), or None without a quota."""
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        with open(os.path.join(root, "cpu.max"), encoding="ascii") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us"), encoding="ascii") as f:
            quota = int(f.read())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us"), encoding="ascii") as f:
            period = int(f.read())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _cpu_times(path: str = "/proc/stat", cpus: set[int] | None = None) -> tuple[int, int] | None:
    """(busy, total) clock ticks since boot of ``cpus`` (default: all CPUs), or None where ``/proc/stat`` is
    not there or does not list them."""
    busy = total = 0
    seen = False
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                name, *values = line.split()
                if not name.startswith("cpu"):
                    break
                wanted = name == "cpu" if cpus is None else name[3:].isdigit() and int(name[3:]) in cpus
                if not wanted:
                    continue
                fields = [int(x) for x in values]
                if len(fields) < 4:
                    return None
                idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
                busy += sum(fields[:8]) - idle
                total += sum(fields[:8])
                seen = True
    except (OSError, ValueError):
        return None
    return (busy, total) if seen else None


def _own_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def other_load(seconds: float = LOAD_SAMPLE_SECONDS, path: str = "/proc/stat") -> float | None:
    """CPUs' worth of time other processes used over ``seconds`` on the CPUs this process may run on (its
    affinity mask; this process sleeps meanwhile), or None where it cannot be read (no ``/proc``)."""
    import time

    cpus = _own_cpus()
    first = _cpu_times(path, cpus)
    if first is None:
        return None
    own = os.times()
    time.sleep(seconds)
    second = _cpu_times(path, cpus)
    after = os.times()
    if second is None or second[1] <= first[1]:
        return None
    share = (second[0] - first[0]) / (second[1] - first[1])
    mine = (after.user + after.system - own.user - own.system) / seconds
    return max(0.0, share * (len(cpus) if cpus else (os.cpu_count() or 1)) - mine)


def _several_ranks(environ) -> bool:
    """Started by a launcher with several processes on this machine (accelerate, torchrun, DeepSpeed): they
    start together, so none sees the others busy yet, and they will share the CPU."""
    for name in ("LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        try:
            if int(environ.get(name, "1")) > 1:
                return True
        except ValueError:
            pass
    return False


def share_the_cpu(environ=os.environ, load=None) -> str:
    """Threads that share the CPU gracefully, and which way was chosen (``"torch"``, ``"free"``, ``"busy"``,
    ``"share"`` or ``"user"``): beside busy processes (``load()``, default :func:`other_load`, at least
    :data:`BUSY_CPUS`) idle threads sleep at once (``OMP_WAIT_POLICY=PASSIVE``); on a free machine
    torch's own wait; and no more threads than the CPUs available (``OMP_NUM_THREADS``) when a quota or
    affinity mask gives fewer than the machine has (torch would start one per core)."""
    choice = environ.get("GRPO_EXT_THREADS", "").lower()
    if choice == "torch":
        return "torch"
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        mode = "user"
    elif choice == "share" or _several_ranks(environ):
        mode = "share"
    else:
        busy = (load or other_load)()
        mode = "busy" if busy is None or busy >= BUSY_CPUS else "free"  # unknown load: share, as before
    if mode in ("share", "busy"):
        environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    cpus = available_cpus()
    if cpus < (os.cpu_count() or cpus):
        environ.setdefault("OMP_NUM_THREADS", str(cpus))
    return mode
