"""Downloads against a local HTTP server (resume, size checks, unpacking) and the
``asdtheory data`` command."""

import io
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from asdtheory import audio
from asdtheory.data import dcase, download
from asdtheory.repro import cli

NAMES = ["valve/train/section_00_source_train_normal_0000_pat_00.wav",
         "valve/train/section_00_target_train_normal_0001_pat_02.wav",
         "valve/test/section_00_source_test_anomaly_0003_pat_01.wav"]


def _wav_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, 4000)
    sf.write(buf, noise, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def valve_zip() -> bytes:
    return _zip({name: _wav_bytes(i) for i, name in enumerate(NAMES)})


class _Server:
    """Serves ``files`` on 127.0.0.1 with Range support; records the Range headers it got.

    ``cut_after[name] = n`` makes the next response for ``name`` announce the full length but
    close the connection after n bytes (once). ``honour_range=False`` ignores Range headers.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        self.honour_range = True
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                if name not in server.files:
                    self.send_error(404, "Not Found")
                    return
                data = server.files[name]
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = 0
                if header and server.honour_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", header)[1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.cut_after:
                    body = body[: server.cut_after.pop(name)]
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def server(valve_zip):
    s = _Server()
    s.files["dev_valve.zip"] = valve_zip
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_fetch_unpacks_into_the_dcase_layout(server, tmp_path):
    folder = download.fetch("valve", root=tmp_path, base_url=server.url, progress=False)
    assert folder == tmp_path / "dcase2023t2/dev_data/raw/valve"
    clips = dcase.index_dataset(tmp_path, machines=["valve"])
    assert sorted(f"valve/{c.split}/{c.path.name}" for c in clips) == sorted(NAMES)
    wave = audio.load(folder / NAMES[2].split("/", 1)[1])
    assert wave.shape == (4000,)
    assert not (tmp_path / "downloads" / "dev_valve.zip").exists()  # removed after unpacking
    assert server.ranges == [None]


def test_interrupted_download_resumes_with_a_range_request(server, valve_zip, tmp_path):
    dest = tmp_path / "dev_valve.zip"
    url = f"{server.url}/dev_valve.zip"
    server.cut_after["dev_valve.zip"] = 5000
    with pytest.raises(OSError, match=rf"stopped after 5000 of {len(valve_zip)} bytes; the "
                                      r"partial file .*dev_valve\.zip\.part is kept, run the "
                                      r"same command again to resume"):
        download.download(url, dest, progress=False)
    assert (tmp_path / "dev_valve.zip.part").stat().st_size == 5000
    assert not dest.exists()
    download.download(url, dest, progress=False)
    assert server.ranges == [None, "bytes=5000-"]
    assert dest.read_bytes() == valve_zip
    assert not (tmp_path / "dev_valve.zip.part").exists()


def test_complete_partial_file_and_server_without_ranges(server, valve_zip, tmp_path):
    url = f"{server.url}/dev_valve.zip"
    complete = tmp_path / "a.zip"
    (tmp_path / "a.zip.part").write_bytes(valve_zip)
    download.download(url, complete, progress=False)  # 416: the part was already whole
    assert complete.read_bytes() == valve_zip
    server.honour_range = False
    restarted = tmp_path / "b.zip"
    (tmp_path / "b.zip.part").write_bytes(b"stale bytes")
    download.download(url, restarted, progress=False)  # 200 instead of 206: start over
    assert restarted.read_bytes() == valve_zip


def test_size_and_http_errors(server, valve_zip, tmp_path):
    with pytest.raises(OSError, match=rf"has {len(valve_zip)} bytes but 123 were expected"):
        download.download(f"{server.url}/dev_valve.zip", tmp_path / "x.zip", expected_size=123,
                          progress=False)
    with pytest.raises(OSError, match=r"cannot download .*/dev_fan\.zip: HTTP 404"):
        download.fetch("fan", root=tmp_path, base_url=server.url, progress=False)
    with pytest.raises(ValueError, match="machine must be one of"):
        download.archive_url("pump")
    with pytest.raises(ValueError, match="only the DCASE 2023 development archives"):
        download.archive_url("valve", year=2022)
    assert download.archive_url("ToyCar") == "https://zenodo.org/record/7882613/files/dev_ToyCar.zip"


@pytest.mark.parametrize(
    "members,message",
    [({"valve/train/../../evil.wav": b"x"}, r"unsafe path 'valve/train/\.\./\.\./evil\.wav'"),
     ({"fan/train/a.wav": b"x"}, r"not the archive of machine 'valve': member 'fan/train/a\.wav'")],
)
def test_unpack_refuses_foreign_or_unsafe_archives(tmp_path, members, message):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip(members))
    with pytest.raises(ValueError, match=message):
        download.unpack(archive, tmp_path / "raw", machine="valve")
    assert not (tmp_path / "raw").exists()


def test_unpack_rejects_corrupt_archive_and_skips_existing_files(tmp_path, valve_zip):
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(valve_zip[:200])
    with pytest.raises(ValueError, match=r"corrupt\.zip is not a valid zip archive"):
        download.unpack(corrupt, tmp_path / "raw", machine="valve")
    good = tmp_path / "good.zip"
    good.write_bytes(valve_zip)
    folder = download.unpack(good, tmp_path / "raw", machine="valve")
    first = folder / NAMES[0].split("/", 1)[1]
    first.chmod(0o444)  # a read-only existing copy must be left alone, not rewritten
    download.unpack(good, tmp_path / "raw", machine="valve")
    assert first.read_bytes() == _wav_bytes(0)


def test_cli_fetch_and_info(server, tmp_path, capsys):
    assert cli.main(["data", "fetch", "--year", "2023", "--machine", "valve", "--root",
                     str(tmp_path), "--base-url", server.url, "--quiet"]) == 0
    # The served clips last 0.25 s: a run cutting them to 10 s would reject them.
    assert cli.main(["data", "info", str(tmp_path / "dcase2023t2")]) == 1
    assert cli.main(["data", "info", str(tmp_path / "dcase2023t2"), "--seconds", "0.25"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"valve +00 +train +source +normal +1 +pat_00 \(1\)", out)
    assert re.search(r"valve +00 +test +source +anomaly +1 +pat_01 \(1\)", out)
    assert "total: 3 clips (valve: 3)" in out
    assert cli.main(["data", "fetch", "--machine", "fan", "--root", str(tmp_path),
                     "--base-url", server.url, "--quiet"]) == 1
    assert "asdtheory data fetch: error: cannot download" in capsys.readouterr().err


def test_cli_info_on_the_shared_valve_clips(shared_data, capsys):
    assert cli.main(["data", "info", str(shared_data / "dcase2023t2")]) == 0
    out = capsys.readouterr().out
    for domain, attrs in (("source", "pat_00 (25), pat_01 (25)"),
                          ("target", "pat_02 (25), pat_03 (25)")):
        for label in ("normal", "anomaly"):
            assert re.search(rf"valve +00 +test +{domain} +{label} +50 +{re.escape(attrs)}", out)
    assert "total: 200 clips (valve: 200)" in out
    # The data root itself: the DCASE 2020 slider clips and the MIMII fan clips (no split)
    # count too; the four background recordings are not counted.
    assert cli.main(["data", "info", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "total: 315 clips (fan: 40, slider: 75, valve: 200)" in out
    assert re.search(r"fan +00 +- +source +anomaly +20 +noAttribute \(20\)", out)
    assert re.search(r"slider +00 +train +source +normal +75 +noAttribute \(75\)", out)
    assert "(4 other .wav file(s) outside the clip folders not counted)" in out
    assert cli.main(["data", "info", str(shared_data / "noise")]) == 1
    assert "no DCASE clips" in capsys.readouterr().err


def test_cli_info_errors(tmp_path, capsys):
    assert cli.main(["data", "info", str(tmp_path)]) == 1
    assert f"no DCASE clips (*.wav) under {tmp_path}" in capsys.readouterr().err
    assert cli.main(["data", "info", str(tmp_path / "missing")]) == 1
    assert "folder not found" in capsys.readouterr().err
