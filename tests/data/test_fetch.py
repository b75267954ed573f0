"""Downloads resume and verify checksums (a real HTTP server on 127.0.0.1); archive extraction refuses entries
that would escape the target folder."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile

import pytest

from nas.data._fetch import download, extract_zip
from nas.errors import DataError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    cut_first = True  # the first full response stops half way, as a dropped connection would

    def do_GET(self):  # noqa: N802 (http.server's name)
        rng = self.headers.get("Range")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = PAYLOAD[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.end_headers()
        if _Handler.cut_first and not rng:
            _Handler.cut_first = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.cut_first = True
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_interrupted_download_resumes_and_is_verified(server, tmp_path):
    dest = tmp_path / "DIV2K_valid_HR.zip"
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    seen = []
    with pytest.raises(DataError, match="run again to resume"):
        download(f"{server}/x.zip", dest, sha256=digest, progress=lambda d, t: seen.append((d, t)))
    part = tmp_path / "DIV2K_valid_HR.zip.part"
    assert not dest.exists() and 0 < part.stat().st_size < len(PAYLOAD)
    download(f"{server}/x.zip", dest, sha256=digest, progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == PAYLOAD and not part.exists()
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and seen[0][1] == len(PAYLOAD)


def test_checksum_mismatch_removes_the_file(server, tmp_path):
    _Handler.cut_first = False
    with pytest.raises(DataError, match="checksum mismatch"):
        download(f"{server}/x.zip", tmp_path / "a.zip", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="download of http://127.0.0.1:9/x.zip failed"):
        download("http://127.0.0.1:9/x.zip", tmp_path / "a.zip", timeout=5)


@pytest.mark.parametrize("evil", ["../escape.png", "/tmp/abs-escape.png", "ok/../../escape.png"])
def test_extraction_refuses_entries_that_escape_and_writes_nothing(tmp_path, evil):
    z = tmp_path / "bad.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("DIV2K_valid_HR/0801.png", b"fine")
        zf.writestr(evil, b"evil")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="would be written outside"):
        extract_zip(z, out)
    assert not out.exists() and not (tmp_path / "escape.png").exists()


def test_extraction_refuses_symlinks_and_extracts_good_archives(tmp_path):
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("DIV2K_valid_HR/link.png")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="is a symbolic link"):
        extract_zip(z, tmp_path / "o1")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("DIV2K_valid_HR/0801.png", b"a")
        zf.writestr("DIV2K_valid_LR_bicubic/X3/0801x3.png", b"b")
    files = extract_zip(good, tmp_path / "o2")
    assert sorted(p.relative_to(tmp_path / "o2").as_posix() for p in files) == [
        "DIV2K_valid_HR/0801.png", "DIV2K_valid_LR_bicubic/X3/0801x3.png"]
    with pytest.raises(DataError, match="not a readable zip archive"):
        extract_zip(tmp_path / "o2" / "DIV2K_valid_HR" / "0801.png", tmp_path / "o3")
