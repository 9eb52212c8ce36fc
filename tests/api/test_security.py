"""What a caller cannot reach (issue 19 item 5; SECURITY.md names these tests): files outside the app's
own outputs through Gradio's file routes or file arguments, uploads over the size limit, and secrets,
local paths or stack traces in responses and in the log at INFO level.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import httpx
import pytest
from gradio.utils import get_upload_folder
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from spaces.handlers import DEFAULT_MAX_UPLOAD_MB
from tests.api.calls import TIMEOUT, assert_still_serving, call, new_client
from tests.api.hostile_inputs import CASES, DEMO
from tests.running_app import running_app

SECRET = "hf_SENTINELtokenNeverShownAnywhere123"


def _file_routes(url: str, path: str) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
        return [http.get(f"{route}{path}") for route in ("gradio_api/file=", "file=")]


@pytest.mark.parametrize("target", ["/etc/passwd", "/proc/self/environ", "app.py", "weights-dir", "hub-cache",
                                    "traversal", "relative-traversal", "upload-folder"])
def test_file_routes_serve_nothing_outside_the_apps_outputs(app, target):
    url, ctx, demo = app
    upload = Path(get_upload_folder())
    path = {"app.py": str(Path("app.py").resolve()),
            "weights-dir": os.environ.get("HUB_WEIGHTS_DIR", "/nonexistent"),
            "hub-cache": str(ctx.settings.cache_dir) if hasattr(ctx.settings, "cache_dir") else str(upload.parent),
            "traversal": f"{upload}/../../etc/passwd",
            "relative-traversal": "../../../../etc/passwd",
            "upload-folder": str(upload)}.get(target, target)
    for response in _file_routes(url, path):
        assert response.status_code in (403, 404), (path, response.status_code)
        assert "root:" not in response.text


def test_a_symlink_in_the_upload_folder_does_not_lead_out(app):
    """Uploads are written as regular files, so only someone on the server can plant a link; even then
    Gradio's file route refuses it, because the file was not created by the app."""
    link = Path(get_upload_folder()) / "hub-security-test-link.txt"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/passwd")
    try:
        for response in _file_routes(app[0], str(link)):
            assert response.status_code in (403, 404) and "root:" not in response.text
    finally:
        link.unlink()


def _raw(url: str, endpoint: str, data: list) -> tuple[str, str]:
    with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
        event_id = http.post(f"gradio_api/call{endpoint}", json={"data": data}).json()["event_id"]
        text = http.get(f"gradio_api/call{endpoint}/{event_id}").text
    return re.findall(r"event: (\w+)", text)[-1], text


@pytest.mark.parametrize("path", ["/etc/passwd", "app.py", "{url}gradio_api/file=/etc/passwd",
                                  "http://169.254.169.254/latest/meta-data/", "../../../../etc/passwd"])
@pytest.mark.parametrize("endpoint", ["/align", "/upload_latent"])
def test_file_arguments_naming_server_paths_or_urls_are_refused(app, client, path, endpoint):
    """A file argument must be something this caller uploaded: a server path, `../`, or a URL the server
    would fetch (loopback, cloud metadata) is refused, and nothing of the file comes back."""
    url = app[0]
    payload = {"path": path.format(url=url), "meta": {"_type": "gradio.FileData"}}
    for file_arg in (payload, {**payload, "path": "photo.png", "url": path.format(url=url)}):
        data = [file_arg, "center", DEMO] if endpoint == "/align" else [file_arg]
        event, text = _raw(url, endpoint, data)
        assert event == "error", text
        assert "root:" not in text and "import" not in text
    assert_still_serving(client)


def test_launch_limits_are_minimal_and_published(app):
    url, _, demo = app
    assert demo.allowed_paths == [] and demo.blocked_paths == []
    assert demo.max_file_size == DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    config = httpx.get(f"{url}config", timeout=TIMEOUT).json()
    assert config["max_file_size"] == DEFAULT_MAX_UPLOAD_MB * 1024 * 1024  # what the page and clients read


def test_uploads_over_the_limit_are_refused_by_the_server_and_the_client(tmp_path_factory, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(1_200_000))
    with running_app(tmp_path_factory, env={"HUB_MAX_UPLOAD_MB": "1"}) as (url, _, demo):
        assert demo.max_file_size == 1024 * 1024
        with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
            response = http.post("gradio_api/upload", files={"files": ("big.png", big.read_bytes(), "image/png")})
        assert response.status_code == 413 and "exceeded maximum allowed size" in response.text
        client = Client(url, verbose=False)
        with pytest.raises(ValueError, match="exceeds the maximum file size"):
            client.predict(handle_file(str(big)), "center", DEMO, api_name="/align")
        assert_still_serving(client)


def test_no_secret_path_or_trace_in_responses_or_info_logs(tmp_path_factory, tmp_path, caplog):
    """HF_TOKEN set, the Hub cache and weights folders private: run the hostile corpus and some normal
    calls; no response carries the token, a local path of the app's, or a stack trace, and no log
    record below ERROR does either (errors may carry the trace of a bug, never the token)."""
    responses: list[str] = []
    with caplog.at_level(logging.INFO), running_app(tmp_path_factory, env={"HF_TOKEN": SECRET}) as (url, ctx, _):
        weights, cache = os.environ["HUB_WEIGHTS_DIR"], os.environ["HUB_CACHE_DIR"]
        client = new_client((url, ctx, None))
        for case in CASES:
            if case.endpoint == "/styleclip_global":
                continue  # the prompt cases need the text tab's relevance matrix; covered in test_hostile_inputs
            try:
                responses.append(repr(call(client, *case.args(tmp_path), api_name=case.endpoint)))
            except AppError as e:
                responses.append(str(e))
        for model in ("stylegan2-ffhq-1024", "stylegan3-t-ffhq-1024"):  # not on this machine: a Hub error
            with pytest.raises(AppError) as info:
                call(client, model, "0", 0.7, 0, None, 0.0, 0.0, 0.0, "const", api_name="/generate")
            responses.append(str(info.value))
        records = [r for r in caplog.records]
    assert len(responses) >= 40
    for text in responses:
        assert SECRET not in text and "Traceback" not in text and 'File "' not in text, text
        assert weights not in text and cache not in text, text
    for record in records:
        line = record.getMessage()
        assert SECRET not in line, line
        if record.levelno < logging.ERROR:
            assert record.exc_info is None and "Traceback" not in line, (record.name, line)
