"""CPU threads of the commands: the CPUs a quota allows, a short spin before idle threads sleep."""

from __future__ import annotations

import os

from grpo_ext.cli import _threads
from grpo_ext.cli._threads import SPIN_COUNT, cgroup_quota, share_the_cpu


def test_cgroup_v2_quota_is_read_in_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota(str(tmp_path)) == 1.5


def test_cgroup_v2_without_a_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(str(tmp_path)) is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota(str(tmp_path)) == 0.5


def test_a_quota_caps_the_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("100000 100000\n")  # one CPU's worth
    assert _threads.available_cpus(str(tmp_path)) == 1


def test_idle_threads_spin_briefly_by_default():
    env = {}
    share_the_cpu(env)
    assert env["GOMP_SPINCOUNT"] == SPIN_COUNT


def test_the_users_wait_policy_is_kept():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    share_the_cpu(env)
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_torch_setting_leaves_everything_alone(monkeypatch):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 1)
    env = {"GRPO_EXT_THREADS": "torch"}
    share_the_cpu(env)
    assert env == {"GRPO_EXT_THREADS": "torch"}


def test_fewer_available_cpus_than_cores_set_the_threads(monkeypatch):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    env = {}
    share_the_cpu(env)
    assert env["OMP_NUM_THREADS"] == "1"


def test_all_cores_available_leaves_the_thread_count_to_torch(monkeypatch):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 8)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    env = {}
    share_the_cpu(env)
    assert "OMP_NUM_THREADS" not in env
