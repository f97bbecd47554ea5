"""Remote files for the ``url`` source, shared by the corpus and every task: downloaded over http(s), refused unless
their sha256 matches the one in params.yaml, and cached by checksum so that a re-run does not download again::

    from electra_model.data.remote import DOWNLOAD_CACHE, download
    path = download(params.ner.url.train, "ner.url.train", DOWNLOAD_CACHE)
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from tqdm import tqdm

from electra_model.config import RemoteFile
from electra_model.errors import ElectraError
from electra_model.io import atomic_file

DOWNLOAD_CACHE = Path("cache/downloads")
DOWNLOAD_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


def _file_name(url: str) -> str:
    """The url's last path segment, kept so the cached file's suffix (``.gz``) still says how to read it."""
    return PurePosixPath(urlparse(url).path).name or "download"


def _fetch(remote: RemoteFile, key: str, target: Path) -> None:
    """Stream the url into ``target`` while hashing it; a wrong checksum leaves nothing behind."""
    digest = hashlib.sha256()
    log.info("downloading %s", remote.url)
    with (
        urllib.request.urlopen(remote.url, timeout=DOWNLOAD_TIMEOUT_S) as response,
        atomic_file(target, "wb") as handle,
    ):
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=None) as progress:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                handle.write(chunk)
                progress.update(len(chunk))
        if digest.hexdigest() != remote.sha256:
            raise ElectraError(
                f"{key}: {remote.url} has sha256 {digest.hexdigest()}, but {key}.sha256 is {remote.sha256}; "
                f"if the file changed on purpose, update {key}.sha256 in params.yaml, otherwise check the url"
            )


def download(remote: RemoteFile | None, key: str, cache_dir: Path) -> Path:
    """The verified local copy of the remote file params ``key`` names, from the cache when it is there."""
    if remote is None:
        raise ElectraError(f"{key} is not set; give its url and sha256")
    target = Path(cache_dir) / remote.sha256 / _file_name(remote.url)
    if target.is_file():
        log.info("using cached %s for %s", target, remote.url)
        return target
    try:
        _fetch(remote, key, target)
    except urllib.error.HTTPError as error:
        raise ElectraError(
            f"{key}.url: {remote.url} answered HTTP {error.code} {error.reason}; check the url"
        ) from None
    except urllib.error.URLError as error:
        raise ElectraError(
            f"{key}.url: cannot reach {remote.url} ({error.reason}); check the url and the network"
        ) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
        raise ElectraError(
            f"{key}.url: download of {remote.url} failed ({error!r}); try again or check the server"
        ) from None
    return target
