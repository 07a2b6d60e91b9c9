"""`make dist`'s last step: what the built sdist and wheel hold, and the wheel installed into a
fresh virtual environment outside the checkout, run as a user would run it.

The wheel must carry the package with its typing marker and the console's static files, at
the version the code says, and nothing of the tests, benchmarks or data. Installed alone (its
runtime dependencies from the package index), `ingestd --version` names that version, `ingestd
run` processes a small directory, and the operator commands read what it did. A file missing
from the package fails here, not on a user's machine.

    python tools/check_dist.py [DIST_DIR]
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingestd import __version__  # noqa: E402

REQUIRED = ("ingestd/__init__.py", "ingestd/py.typed", "ingestd/console/static/console.css")
FORBIDDEN = ("tests/", "bench/", "data/", "docs/", "tools/", ".ci/")
NAMES = ("2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "2018_06_28_00_30.txt")


def fail(message: str) -> None:
    print(f"check_dist: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def check_wheel(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for required in REQUIRED:
        if required not in names:
            fail(f"{wheel.name} lacks {required}")
    stray = [n for n in names if n.startswith(FORBIDDEN)]
    if stray:
        fail(f"{wheel.name} holds {stray[:5]}")
    if f"-{__version__}-" not in wheel.name:
        fail(f"{wheel.name} is not version {__version__}")
    print(f"check_dist: {wheel.name}: {len(names)} files, {', '.join(REQUIRED)} present")


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for required in ("pyproject.toml", "README.md", *REQUIRED):
        if required not in names:
            fail(f"{sdist.name} lacks {required}")
    print(f"check_dist: {sdist.name}: {len(names)} files")


def run(command: list[str], cwd: Path, expect: int = 0) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != expect:
        fail(f"{' '.join(command[-4:])}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return done.stdout


def check_installed(wheel: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="ingestd-dist-") as tmp:
        home = Path(tmp)
        venv.create(home / "venv", with_pip=True)
        bin_dir = home / "venv" / "bin"
        run([str(bin_dir / "pip"), "install", "--quiet", str(wheel)], home)
        ingestd = str(bin_dir / "ingestd")
        version = run([ingestd, "--version"], home).strip()
        if version != f"ingestd {__version__}":
            fail(f"ingestd --version says {version!r}")
        drop = home / "drop"
        drop.mkdir()
        for name in NAMES:
            (drop / name).write_text("1")
        run([ingestd, str(drop), "--seconds-in-min", "0", "--exit-when-idle", "0.5",
             "--log-format", "json"], home)  # fmt: skip
        verify = run([ingestd, "verify", str(drop), "--expect", str(len(NAMES))], home)
        run([ingestd, "status", str(drop)], home)
        run([ingestd, "failed", str(drop)], home)
        run([ingestd, "workers", str(drop)], home)
        run([ingestd, "explain", str(drop), NAMES[0]], home)
        run([ingestd, "retry", str(drop), NAMES[0]], home, expect=1)  # done: refused
        print(f"check_dist: installed outside the checkout: {version}; {verify.splitlines()[0]}")


def main() -> int:
    dist = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist").resolve()
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        fail(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}")
    check_wheel(wheels[0])
    check_sdist(sdists[0])
    check_installed(wheels[0])
    print("check_dist: OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
