"""Which mounts keep claim locks safe: /proc/self/mountinfo read, NFS lock modes judged."""

from pathlib import Path

from ingestd.ledgers.file.mounts import (
    check_state_dir,
    mount_of,
    parse_mountinfo,
    unsafe_lock_reason,
)

# Recorded /proc/self/mountinfo lines (addresses from the documentation ranges).
MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
120 22 0:52 / /mnt/drop rw,relatime shared:66 - nfs4 files:/export rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=192.0.2.2,local_lock=none,addr=192.0.2.1
121 22 0:53 / /mnt/flocked rw,relatime shared:67 - nfs4 files:/export rw,vers=4.2,hard,proto=tcp,local_lock=flock,addr=192.0.2.1
122 22 0:54 / /mnt/all rw,relatime shared:68 - nfs files:/v3 rw,vers=3,hard,proto=tcp,local_lock=all,addr=192.0.2.1
123 22 0:55 / /mnt/nolock rw,relatime shared:69 - nfs files:/v3 rw,vers=3,nolock,proto=tcp,addr=192.0.2.1
124 22 0:56 / /mnt/with\\040space rw,relatime shared:70 - nfs4 files:/x rw,local_lock=flock
125 121 0:57 / /mnt/flocked/inner rw,relatime shared:71 - ext4 /dev/vdb rw
"""


def test_parses_mount_points_types_and_options() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.mount_point for m in mounts][:3] == ["/", "/mnt/drop", "/mnt/flocked"]
    assert mounts[1].fstype == "nfs4"
    assert "local_lock=none" in mounts[1].options
    assert mounts[5].mount_point == "/mnt/with space"


def test_safe_and_unsafe_mounts() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert unsafe_lock_reason(mount_of("/mnt/drop/.ingestd", mounts)) is None
    assert unsafe_lock_reason(mount_of("/home/x", mounts)) is None
    for path, option in (
        ("/mnt/flocked/.ingestd", "local_lock=flock"),
        ("/mnt/all/state", "local_lock=all"),
        ("/mnt/nolock", "nolock"),
        ("/mnt/with space/.ingestd", "local_lock=flock"),
    ):
        reason = unsafe_lock_reason(mount_of(path, mounts))
        assert reason is not None and option in reason, path
    # A local disk mounted inside the unsafe NFS mount is its own filesystem: fine.
    assert unsafe_lock_reason(mount_of("/mnt/flocked/inner/s", mounts)) is None
    # A prefix that is not a path component does not match.
    assert mount_of("/mnt/dropbox", mounts).mount_point == "/"  # type: ignore[union-attr]


def test_check_state_dir_reads_a_mountinfo_file(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert check_state_dir(Path("/mnt/flocked/.ingestd"), info) is not None
    assert check_state_dir(Path("/mnt/drop/.ingestd"), info) is None
    assert check_state_dir(tmp_path, tmp_path / "missing") is None
