"""CPU threads of the commands: the CPUs a quota allows, a short spin before idle threads sleep."""

from __future__ import annotations

import os

from grpo_ext.cli import _threads
from grpo_ext.cli._threads import WAIT_POLICY, cgroup_quota, share_the_cpu


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


def test_beside_a_busy_process_idle_threads_sleep_at_once():
    env = {}
    assert share_the_cpu(env, load=lambda: 1.0) == "busy"
    assert env["OMP_WAIT_POLICY"] == WAIT_POLICY == "PASSIVE"


def test_on_a_free_machine_threads_wait_as_torch_has_them():
    env = {}
    assert share_the_cpu(env, load=lambda: 0.1) == "free"
    assert "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env


def test_an_unreadable_load_shares_the_cpu():
    env = {}
    assert share_the_cpu(env, load=lambda: None) == "busy"
    assert env["OMP_WAIT_POLICY"] == WAIT_POLICY


def test_share_setting_always_shares():
    env = {"GRPO_EXT_THREADS": "share"}
    assert share_the_cpu(env, load=lambda: 0.0) == "share"
    assert env["OMP_WAIT_POLICY"] == WAIT_POLICY


def test_the_users_wait_policy_is_kept():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert share_the_cpu(env, load=lambda: 2.0) == "user"
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_cpu_times_are_read_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal
    stat.write_text("cpu  100 5 20 800 10 3 2 0 0 0\ncpu0 50 2 10 400 5 1 1 0 0 0\n")
    assert _threads._cpu_times(str(stat)) == (130, 940)


def test_only_the_cpus_of_the_affinity_mask_are_read(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  300 0 0 700 0 0 0 0\ncpu0 100 0 0 300 0 0 0 0\ncpu1 200 0 0 400 0 0 0 0\nintr 5\n")
    assert _threads._cpu_times(str(stat), {1}) == (200, 600)


def test_ranks_started_together_share_the_cpu():
    env = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
    assert share_the_cpu(env, load=lambda: 0.0) == "share"
    assert env["OMP_WAIT_POLICY"] == WAIT_POLICY


def test_the_load_of_others_is_measured_here():
    load = _threads.other_load(0.05)
    assert load is None or 0.0 <= load <= (os.cpu_count() or 1)


def test_torch_setting_leaves_everything_alone(monkeypatch):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 1)
    env = {"GRPO_EXT_THREADS": "torch"}
    share_the_cpu(env)
    assert env == {"GRPO_EXT_THREADS": "torch"}


def test_fewer_available_cpus_than_cores_set_the_threads(monkeypatch):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    env = {}
    share_the_cpu(env, load=lambda: 0.0)
    assert env["OMP_NUM_THREADS"] == "1"


def test_all_cores_available_leaves_the_thread_count_to_torch(monkeypatch):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 8)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    env = {}
    share_the_cpu(env, load=lambda: 0.0)
    assert "OMP_NUM_THREADS" not in env
