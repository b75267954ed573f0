"""Getting user datasets safely: resumable downloads with progress and checksums, and archive extraction that
refuses entries escaping the target folder.

Nothing here runs unless a user asks (``nas data fetch``, ``nas data extract``); the search and the tests never
download.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from nas._logging import get_logger
from nas.errors import DataError

__all__ = ["DIV2K_PARTS", "download", "extract_zip", "sha256_of", "fetch_div2k"]

log = get_logger("data")

DIV2K_BASE = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
#: the DIV2K archives a x3 study uses: name -> (file, sha256 where known, else None)
DIV2K_PARTS: dict[str, tuple[str, str | None]] = {
    "train_hr": ("DIV2K_train_HR.zip", None),
    "valid_hr": ("DIV2K_valid_HR.zip", None),
    "train_lr_x3": ("DIV2K_train_LR_bicubic_X3.zip", None),
    "valid_lr_x3": ("DIV2K_valid_LR_bicubic_X3.zip", None),
}

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | Path, *, sha256: str | None = None, progress: Progress | None = None,
             timeout: float = 60.0, chunk: int = 1 << 16) -> Path:
    """Download ``url`` to ``dest``, resuming a ``dest.part`` left by an interrupted download (HTTP Range), and
    verify ``sha256`` when given. ``dest`` appears only when complete and verified."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (a URL the user chose)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file is already whole
            resp = None
        else:
            raise DataError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"download of {url} failed: {getattr(exc, 'reason', exc)}") from None
    if resp is not None:
        with resp:
            resumed = resp.status == 206
            if have and not resumed:
                log.info("%s does not resume downloads: starting %s again", url, dest.name)
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            done = have
            try:
                with open(part, "ab" if resumed else "wb") as fh:
                    while block := resp.read(chunk):
                        fh.write(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, total)
            except (OSError, TimeoutError) as exc:
                raise DataError(f"download of {url} stopped at {done} bytes ({exc}); run again to resume") from None
            if total is not None and done < total:
                raise DataError(f"download of {url} stopped at {done} of {total} bytes; run again to resume")
    if sha256 is not None:
        got = sha256_of(part)
        if got != sha256.lower():
            part.unlink()
            raise DataError(f"{dest.name}: checksum mismatch (sha256 {got}, expected {sha256}); the download was "
                            "removed")
    part.replace(dest)
    return dest


def _safe_target(root: Path, info: zipfile.ZipInfo, archive: Path) -> Path | None:
    name = info.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    mode = info.external_attr >> 16
    if pure.is_absolute() or (pure.parts and pure.parts[0].endswith(":")) or ".." in pure.parts:
        raise DataError(f"{archive}: entry '{name}' would be written outside {root}; nothing was extracted")
    if stat.S_ISLNK(mode):
        raise DataError(f"{archive}: entry '{name}' is a symbolic link; nothing was extracted")
    target = (root / Path(*pure.parts)).resolve() if pure.parts else root
    if target != root and root not in target.parents:
        raise DataError(f"{archive}: entry '{name}' would be written outside {root}; nothing was extracted")
    return None if info.is_dir() else target


def extract_zip(archive: str | Path, to: str | Path, *, progress: Progress | None = None) -> list[Path]:
    """Extract ``archive`` into ``to``. Every entry is checked first: one that is absolute, climbs out with
    ``..`` or is a symbolic link stops the extraction before anything is written."""
    archive, root = Path(archive), Path(to).resolve()
    try:
        zf = zipfile.ZipFile(archive)
    except FileNotFoundError:
        raise DataError(f"archive not found: {archive}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive}: not a readable zip archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        targets = [(_safe_target(root, i, archive), i) for i in infos]
        total = sum(i.file_size for i in infos)
        done, out = 0, []
        root.mkdir(parents=True, exist_ok=True)
        for target, info in targets:
            if target is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            try:
                with zf.open(info) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                tmp.unlink(missing_ok=True)
                raise DataError(f"{archive}: entry '{info.filename}' is damaged ({exc})") from None
            tmp.replace(target)
            out.append(target)
            done += info.file_size
            if progress is not None:
                progress(done, total)
    return out


def fetch_div2k(to: str | Path, parts: tuple[str, ...] = ("train_hr", "valid_hr"), *, base_url: str = DIV2K_BASE,
                keep_archives: bool = True, progress: Callable[[str, int, int | None], None] | None = None) -> Path:
    """Download and extract DIV2K archives into ``to`` (the folder ``--data`` then takes)."""
    unknown = [p for p in parts if p not in DIV2K_PARTS]
    if unknown:
        raise DataError(f"unknown DIV2K part {unknown[0]!r} (known: {', '.join(DIV2K_PARTS)})")
    root = Path(to)
    for p in parts:
        file, digest = DIV2K_PARTS[p]
        zpath = download(base_url.rstrip("/") + "/" + file, root / "archives" / file, sha256=digest,
                         progress=(lambda d, t, f=file: progress(f, d, t)) if progress else None)
        extract_zip(zpath, root, progress=(lambda d, t, f=file: progress(f"extract {f}", d, t)) if progress else None)
        if not keep_archives:
            zpath.unlink()
    return root
