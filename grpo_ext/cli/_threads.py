"""CPU threads for the commands: how many the machine really gives us, and how idle threads wait.

Set in the environment before torch is imported (OpenMP reads it once, when it starts); a value the
user has set is kept, and ``GRPO_EXT_THREADS=torch`` leaves everything to torch.
"""

from __future__ import annotations

import math
import os

#: libgomp's spin count before an idle thread sleeps: its default (300,000) keeps waiting threads busy
#: for milliseconds, which beside another busy process takes the CPU from the threads doing work.
#: Measured with benchmarks/demo_contention.py (docs/benchmarks.md).
SPIN_COUNT = "2000"


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


def share_the_cpu(environ=os.environ) -> None:
    """Threads that share the CPU gracefully: a short spin before idle threads sleep (``GOMP_SPINCOUNT``),
    and no more threads than the CPUs available (``OMP_NUM_THREADS``) when a quota or affinity mask
    gives fewer than the machine has (torch would start one per core)."""
    if environ.get("GRPO_EXT_THREADS", "").lower() == "torch":
        return
    if "OMP_WAIT_POLICY" not in environ:
        environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
    cpus = available_cpus()
    if cpus < (os.cpu_count() or cpus):
        environ.setdefault("OMP_NUM_THREADS", str(cpus))
