"""Walking folder trees lazily: os.scandir, one directory at a time, no list of all files.

    for path, folder in iter_files(["/data/pacs"], folder_depth=2, errors=summary.add_walk_error):
        ...

``folder`` is the key the audit groups files by for its "top folders" table: the root as the
user gave it plus at most ``folder_depth`` directory levels below it (``/data/pacs/2019/CT``
for ``/data/pacs/2019/CT/SMITH^JOHN/1.dcm`` with depth 2), or the full parent folder with
``folder_depth=None`` (``--show-phi``): folder names below the first levels are often patient
names or IDs.

Memory: the stack holds the directories still to visit (their paths, not their contents); a
directory's entries are streamed from scandir. Symbolic links are not followed unless asked;
when they are, each directory is visited once (by device and inode), so link loops end.
Errors (a directory that cannot be listed, a broken link) are reported through ``errors`` with
a reason that names no path, and the walk goes on.
"""

from __future__ import annotations

import os
import stat as _stat
from collections.abc import Callable, Iterator, Sequence

__all__ = ["iter_files"]


def _reason(prefix: str, exc: OSError) -> str:
    return f"{prefix}: {(exc.strerror or type(exc).__name__).lower()}"


def iter_files(roots: Sequence[str | os.PathLike[str]], *, follow_symlinks: bool = False,
               folder_depth: int | None = 2,
               errors: Callable[[str], None] | None = None) -> Iterator[tuple[str, str]]:
    """Yield (file path, folder key) for every regular file under ``roots``, depth first."""

    def report(reason: str) -> None:
        if errors is not None:
            errors(reason)

    for root_like in roots:
        root = os.fspath(root_like)
        try:
            st = os.stat(root) if follow_symlinks else os.lstat(root)
        except OSError as exc:
            report(_reason("cannot access a path given", exc))
            continue
        if _stat.S_ISLNK(st.st_mode):
            report("symbolic link not followed")
            continue
        if _stat.S_ISREG(st.st_mode):
            yield root, os.path.dirname(root) or "."
            continue
        if not _stat.S_ISDIR(st.st_mode):
            report("not a regular file or folder")
            continue
        seen: set[tuple[int, int]] = {(st.st_dev, st.st_ino)} if follow_symlinks else set()
        root_key = root.rstrip(os.sep) or os.sep
        # stack of (directory path, its folder key, depth below root)
        stack: list[tuple[str, str, int]] = [(root, root_key, 0)]
        while stack:
            dirpath, key, depth = stack.pop()
            subdirs: list[tuple[str, str, int]] = []
            try:
                it = os.scandir(dirpath)
            except OSError as exc:
                report(_reason("cannot list a folder", exc))
                continue
            with it:
                while True:
                    try:
                        entry = next(it)
                    except StopIteration:
                        break
                    except OSError as exc:
                        report(_reason("cannot list a folder", exc))
                        break
                    try:
                        if entry.is_symlink() and not follow_symlinks:
                            report("symbolic link not followed")
                            continue
                        if entry.is_dir(follow_symlinks=follow_symlinks):
                            if follow_symlinks:
                                sst = entry.stat()
                                ident = (sst.st_dev, sst.st_ino)
                                if ident in seen:
                                    report("folder already visited (link loop)")
                                    continue
                                seen.add(ident)
                            if folder_depth is None or depth < folder_depth:
                                sub_key = key + os.sep + entry.name
                            else:
                                sub_key = key
                            subdirs.append((entry.path, sub_key, depth + 1))
                        elif entry.is_file(follow_symlinks=follow_symlinks):
                            yield entry.path, key
                        elif entry.is_symlink():
                            report("broken symbolic link")
                        else:
                            report("not a regular file or folder")
                    except OSError as exc:
                        report(_reason("cannot stat an entry", exc))
            subdirs.sort(reverse=True)  # visit in name order
            stack.extend(subdirs)
