"""Keeps cargo's cache valid across clean clones: every tracked file whose content is the same as
in the previous CI run gets back the modification time it had then; every other file keeps its
checkout time, which is newer than any artifact built before.

    python3 .ci/mtimes.py MANIFEST

Cargo decides that a workspace crate is fresh by comparing its source files' modification times
with the time its artifact was built (it does not hash them), and a clone gives every file the
time of the checkout, so without this each run compiles every workspace crate again. The
manifest keeps, for each path, the blob id git has for its content and the time given to it;
a file is restored only when its blob id is the one recorded, so an artifact is never taken for
fresh when its sources changed, and a file that changed and changed back gets a new time too
(the manifest holds the latest content only). Only CI's own target directory may be used with
it: an artifact built from a working tree's edits is not described by any manifest.
"""
import os
import subprocess
import sys
import time


def tracked():
    """(path, blob id) of every file in the index, from git itself: no file is read or hashed."""
    out = subprocess.run(
        ["git", "ls-files", "-s", "-z"], check=True, capture_output=True
    ).stdout
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, blob, _stage = meta.split(b" ")
        if mode == b"160000":  # a submodule: no file here
            continue
        yield os.fsdecode(path), blob.decode()


def modified():
    """Tracked files whose working copy differs from the index: their blob id says nothing of
    what is on disk, so they are never restored (a run in a working tree with edits)."""
    out = subprocess.run(
        ["git", "ls-files", "-m", "-z"], check=True, capture_output=True
    ).stdout
    return {os.fsdecode(p) for p in out.split(b"\0") if p}


def load(manifest):
    known = {}
    try:
        with open(manifest, encoding="utf-8") as f:
            for line in f:
                blob, mtime, path = line.rstrip("\n").split("\t", 2)
                known[path] = (blob, int(mtime))
    except FileNotFoundError:
        pass
    except ValueError:
        # A damaged manifest restores nothing: every file is then taken as changed.
        known = {}
    return known


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    manifest = sys.argv[1]
    known = load(manifest)
    edited = modified()
    restored = changed = 0
    rows = []
    for path, blob in tracked():
        if path in edited:
            changed += 1
            continue
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        old = known.get(path)
        if old and old[0] == blob and not os.path.islink(path):
            os.utime(path, ns=(st.st_atime_ns, old[1]))
            mtime = old[1]
            restored += 1
        else:
            mtime = st.st_mtime_ns
            changed += 1
        rows.append(f"{blob}\t{mtime}\t{path}\n")
    os.makedirs(os.path.dirname(os.path.abspath(manifest)), exist_ok=True)
    tmp = f"{manifest}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(rows)
    os.replace(tmp, manifest)
    print(f"mtimes: {restored} files as in the last run, {changed} new or changed")


if __name__ == "__main__":
    main()
