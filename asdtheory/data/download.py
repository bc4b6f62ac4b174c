"""Download and unpack the public DCASE 2023 Task 2 development archives.

``fetch("valve")`` downloads ``dev_valve.zip`` from Zenodo (record 7882613) into
``<data root>/downloads/``, resuming an interrupted download with an HTTP Range request and
checking the size the server announced, then unpacks it into
``<data root>/dcase2023t2/dev_data/raw/valve/<train|test>/`` (the layout of
:mod:`asdtheory.data.dcase`). The recordings are CC BY 4.0 (MIMII DG / ToyADMOS2; see the
DCASE 2023 Task 2 description for attribution).
"""

from __future__ import annotations

import http.client
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from asdtheory.data.dcase import DEV_MACHINES_2023, data_root

__all__ = ["ZENODO_DCASE2023_DEV", "archive_url", "download", "fetch", "unpack"]

ZENODO_DCASE2023_DEV = "https://zenodo.org/record/7882613/files"


def archive_url(machine: str, *, year: int = 2023, base_url: str | None = None) -> str:
    """URL of the development archive of ``machine`` (``base_url`` replaces the Zenodo folder,
    e.g. a mirror)."""
    if year != 2023:
        raise ValueError(f"only the DCASE 2023 development archives can be fetched, got "
                         f"year={year!r}; unpack other years by hand (see asdtheory.data.dcase).")
    if machine not in DEV_MACHINES_2023:
        raise ValueError(f"machine must be one of {DEV_MACHINES_2023}, got {machine!r}.")
    return f"{(base_url or ZENODO_DCASE2023_DEV).rstrip('/')}/dev_{machine}.zip"


def _incomplete(url: str, part: Path, total: int | None) -> OSError:
    have = part.stat().st_size if part.exists() else 0
    of = f" of {total}" if total is not None else ""
    return OSError(f"download of {url} stopped after {have}{of} bytes; the partial file "
                   f"{part} is kept, run the same command again to resume.")


def download(url: str, dest, *, expected_size: int | None = None, progress: bool = True,
             timeout: float = 60.0, chunk_size: int = 1 << 20) -> Path:
    """Downloads ``url`` to ``dest``, resuming from ``dest.part`` when it exists.

    A partial file is continued with ``Range: bytes=<have>-``; a server that ignores the range
    (status 200) makes the download start over. The final size must equal the size the
    server announced (and ``expected_size`` when given); only then is ``.part`` renamed to
    ``dest``. An existing ``dest`` is taken as complete.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    total = None
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        content_range = err.headers.get("Content-Range", "")
        if err.code == 416 and content_range == f"bytes */{have}":
            part.rename(dest)  # the partial file was already complete
            return dest
        raise OSError(f"cannot download {url}: HTTP {err.code} {err.reason}.") from err
    except (urllib.error.URLError, OSError) as err:
        # URLError wraps the socket's error ("[Errno -2] Name or service not known"): its
        # words are what a user can act on.
        reason = getattr(err, "reason", err)
        text = getattr(reason, "strerror", None) or str(reason)
        raise OSError(f"cannot download {url}: {text}; check the address and the network, "
                      "then run again.") from err
    with response:
        if response.status == 206:
            match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)",
                                 response.headers.get("Content-Range", ""))
            if not match or int(match[1]) != have:
                raise OSError(f"cannot resume {url}: unexpected Content-Range "
                              f"{response.headers.get('Content-Range')!r}; delete {part} and "
                              "run again.")
            total = None if match[2] == "*" else int(match[2])
            mode = "ab"
        else:
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            have, mode = 0, "wb"
        if expected_size is not None and total is not None and total != expected_size:
            raise OSError(f"{url} has {total} bytes but {expected_size} were expected; the "
                          "archive on the server differs from the one this code knows.")
        with part.open(mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                          desc=dest.name, disable=not progress) as bar:
            try:
                while block := response.read(chunk_size):
                    out.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as err:
                out.close()
                raise _incomplete(url, part, total) from err
    size = part.stat().st_size
    want = total if total is not None else expected_size
    if want is not None and size != want:
        raise _incomplete(url, part, want)
    part.rename(dest)
    return dest


def unpack(archive, dest, *, machine: str) -> Path:
    """Extracts ``archive`` (members ``<machine>/<train|test>/*.wav``) below ``dest``.

    Files already present with the right size are left alone, so unpacking over an existing
    (even read-only) copy is a no-op. Members outside ``<machine>/`` or with unsafe paths
    (absolute, ``..``) are refused. Returns ``dest / machine``.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            for m in members:
                parts = PurePosixPath(m.filename).parts
                if m.filename.startswith("/") or ".." in parts or not parts:
                    raise ValueError(f"{archive} holds an unsafe path {m.filename!r}; refusing "
                                     "to unpack it.")
                if parts[0] != machine:
                    raise ValueError(f"{archive} is not the archive of machine {machine!r}: "
                                     f"member {m.filename!r} is outside {machine}/.")
            for m in members:
                target = dest.joinpath(*PurePosixPath(m.filename).parts)
                if target.exists() and target.stat().st_size == m.file_size:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".tmp")
                with zf.open(m) as src, tmp.open("wb") as out:
                    shutil.copyfileobj(src, out)
                tmp.replace(target)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{archive} is not a valid zip archive ({err}); delete it and fetch "
                         "again.") from err
    return dest / machine


def fetch(machine: str, *, year: int = 2023, root=None, base_url: str | None = None,
          progress: bool = True, keep_archive: bool = False) -> Path:
    """Downloads (resumably) and unpacks the DCASE ``year`` development archive of ``machine``.

    Returns ``<data root>/dcase2023t2/dev_data/raw/<machine>``. The archive is deleted after
    a successful unpack unless ``keep_archive``.
    """
    url = archive_url(machine, year=year, base_url=base_url)
    root = data_root(root)
    archive = download(url, root / "downloads" / f"dev_{machine}.zip", progress=progress)
    folder = unpack(archive, root / f"dcase{year}t2" / "dev_data" / "raw", machine=machine)
    if not keep_archive:
        archive.unlink()
    return folder
