"""Print tests/constraints.txt: the installed versions of grpo-ext[test]'s whole dependency closure.

Run it in an environment where the suite is green: ``python tests/freeze_constraints.py > tests/constraints.txt``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOTS = ["grpo-ext[test]", "deepspeed", "torch"]
HEADER = """\
# The versions the test suite was last green with (CPU, Python 3.11), for reproducible test runs:
#   pip install --no-build-isolation deepspeed==0.19.8 -c tests/constraints.txt
#   pip install -e ".[test]" -c tests/constraints.txt
# setup.py keeps ranges for users; this file pins the whole dependency closure of grpo-ext[test],
# deepspeed and torch so a fresh machine gets the same packages CI used. To test against the latest
# releases instead, run the same commands without "-c tests/constraints.txt".
# Regenerate after a green run on newer versions: python tests/freeze_constraints.py > tests/constraints.txt"""


def closure(roots: list[str]) -> dict[str, str]:
    """``{name: version}`` of every installed distribution the roots need, following extras and markers."""
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue  # an optional dependency of another platform
        pins[key[0]] = dist.version.split("+")[0]  # "2.13.0+cpu" -> "2.13.0": matches any local build
        for line in dist.requires or []:
            dep = Requirement(line)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                todo.append(dep)
    pins.pop("grpo-ext", None)
    return pins


if __name__ == "__main__":
    print(HEADER)
    for name, version in sorted(closure(ROOTS).items()):
        print(f"{name}=={version}")
