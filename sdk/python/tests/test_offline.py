"""The SDK against a scripted transport: batching, errors, configs and waiting, without a server."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List

import httpx
import pytest

import flywheel
from flywheel import Client, FlywheelError, FlywheelTimeout


class FakeServer:
    """Just enough of the server's MLflow routes to see what the client sends."""

    def __init__(self) -> None:
        self.requests: List[httpx.Request] = []
        self.batches: List[Dict[str, Any]] = []
        self.updates: List[Dict[str, Any]] = []
        self.fail_batches: List[httpx.Response] = []
        self.pipeline_states: List[Dict[str, Any]] = []
        self.uploads: Dict[str, bytes] = {}
        self.runs = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        body = json.loads(request.content) if request.headers.get("content-type", "").startswith("application/json") and request.content else {}
        if path == "/api/2.0/mlflow/runs/create":
            self.runs += 1
            return httpx.Response(200, json={"run": {"info": {
                "run_id": f"r{self.runs}", "experiment_id": str(body.get("experiment_id")), "run_name": body.get("run_name", "r1"), "status": "RUNNING",
                "start_time": body.get("start_time"), "artifact_uri": f"mlflow-artifacts:/0/r{self.runs}/artifacts"}, "data": {"tags": body.get("tags", [])}}})
        if path == "/api/2.0/mlflow/runs/log-batch":
            if self.fail_batches:
                return self.fail_batches.pop(0)
            self.batches.append(body)
            return httpx.Response(200, json={})
        if path == "/api/2.0/mlflow/runs/update":
            self.updates.append(body)
            return httpx.Response(200, json={"run_info": {"run_id": body["run_id"], "status": body["status"], "end_time": body["end_time"]}})
        if path.startswith("/api/2.0/mlflow-artifacts/artifacts/") and request.method == "PUT":
            self.uploads[path[len("/api/2.0/mlflow-artifacts/artifacts/"):]] = request.read()
            return httpx.Response(200, json={})
        if path.startswith("/api/v1/pipelines/"):
            state = self.pipeline_states.pop(0) if len(self.pipeline_states) > 1 else self.pipeline_states[0]
            return httpx.Response(200, json=state)
        return httpx.Response(404, json={"error_code": "ENDPOINT_NOT_FOUND", "message": f"no route {request.method} {path}"})

    def metric_points(self) -> List[Dict[str, Any]]:
        return [m for b in self.batches for m in b.get("metrics", [])]


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def client_for(server: FakeServer, **options: Any) -> Client:
    return Client("http://flywheel.test", "fw_test", transport=httpx.MockTransport(server), **options)


def test_metrics_are_buffered_and_sent_in_batches_of_at_most_1000(server: FakeServer) -> None:
    client = client_for(server, flush_interval=3600)
    run = client.start_run(name="batching")
    for step in range(2500):
        client.log_metric("loss", 1 / (step + 1), step=step)
    assert len(server.batches) == 2 and client.pending_points() == 500  # flushed at 1000 and 2000
    client.end_run()
    assert [len(b["metrics"]) for b in server.batches] == [1000, 1000, 500]
    assert [m["step"] for m in server.metric_points()] == list(range(2500))
    assert server.updates[-1]["status"] == "FINISHED" and run.status == "FINISHED"
    assert all(r.headers["authorization"] == "Bearer fw_test" for r in server.requests)


def test_a_large_manual_flush_is_split_within_the_servers_limits(server: FakeServer) -> None:
    client = client_for(server, flush_every=10_000, flush_interval=3600)
    client.start_run()
    client.log_metrics({f"m{i}": i for i in range(2300)}, step=3)
    client.log_params({f"p{i}": i for i in range(250)})  # sent at once, with the buffered points
    sizes = [(len(b.get("metrics", [])), len(b.get("params", []))) for b in server.batches]
    assert sizes == [(1000, 100), (1000, 100), (300, 50)]
    client.end_run()


def test_a_bad_step_or_key_is_refused_by_the_call_that_logs_it_not_by_a_later_flush(server: FakeServer) -> None:
    client = client_for(server)
    client.start_run()
    client.log_metrics({"ok": 1.0}, step=3.0)  # an integral float, as numpy loops give
    client.log_metric("neg", 1.0, step=-2)
    for step, message in [(2**40, "outside the 32-bit range"), (1.5, "is not an integer"), ("3", "is not an integer")]:
        with pytest.raises(FlywheelError) as refused:
            client.log_metric("loss", 1.0, step=step)
        assert message in str(refused.value) and refused.value.field == "step"
    for key in ["", "a" * 251, "../up", "tab\there"]:
        with pytest.raises(FlywheelError) as refused:
            client.log_metric(key, 1.0)
        assert "a key is 1 to 250 letters" in str(refused.value)
    client.flush()
    assert [(m["key"], m["step"]) for m in server.metric_points()] == [("ok", 3), ("neg", -2)]
    client.end_run()


def test_params_and_tags_are_sent_at_once_and_values_become_strings(server: FakeServer) -> None:
    client = client_for(server)
    client.start_run()
    client.log_params({"lr": 0.01, "layers": [16, 8], "none": None})
    client.set_tags({"team": "forecast"})
    assert server.batches[0]["params"] == [{"key": "lr", "value": "0.01"}, {"key": "layers", "value": "[16, 8]"}, {"key": "none", "value": ""}]
    assert server.batches[1]["tags"] == [{"key": "team", "value": "forecast"}]
    client.end_run()


def test_non_finite_metrics_are_spelled_as_mlflow_does_and_strings_are_refused(server: FakeServer) -> None:
    client = client_for(server)
    client.start_run()
    client.log_metrics({"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "ok": 1})
    with pytest.raises(FlywheelError) as refused:
        client.log_metric("acc", "high")
    assert refused.value.code == "INVALID_PARAMETER_VALUE"
    client.flush()
    assert [m["value"] for m in server.metric_points()] == ["NaN", "Infinity", "-Infinity", 1.0]
    client.end_run()


def test_the_context_manager_marks_failed_on_exception_and_killed_on_interrupt(server: FakeServer) -> None:
    client = client_for(server)
    with pytest.raises(RuntimeError):
        with client.start_run():
            client.log_metric("x", 1)
            raise RuntimeError("boom")
    assert server.updates[-1]["status"] == "FAILED"
    assert server.metric_points()[0]["key"] == "x"  # flushed before the run ended
    with pytest.raises(KeyboardInterrupt):
        with client.start_run():
            raise KeyboardInterrupt
    assert server.updates[-1]["status"] == "KILLED"
    assert client.active_run() is None


def test_explicit_end_inside_the_block_is_not_overwritten(server: FakeServer) -> None:
    client = client_for(server)
    with client.start_run():
        client.end_run("KILLED")
    assert [u["status"] for u in server.updates] == ["KILLED"]


def test_a_second_run_needs_nested(server: FakeServer) -> None:
    client = client_for(server)
    parent = client.start_run()
    with pytest.raises(FlywheelError) as refused:
        client.start_run()
    assert refused.value.code == "INVALID_STATE"
    child = client.start_run(nested=True)
    create = json.loads(server.requests[-1].content)
    assert {"key": "mlflow.parentRunId", "value": parent.run_id} in create["tags"]
    assert client.active_run() is child
    client.end_run()
    assert client.active_run() is parent
    client.end_run()


def test_logging_without_a_run_is_refused_by_the_client_and_auto_starts_in_the_fluent_api(server: FakeServer) -> None:
    client = client_for(server)
    with pytest.raises(FlywheelError) as refused:
        client.log_metric("x", 1)
    assert refused.value.code == "INVALID_STATE"
    flywheel._default = client  # the fluent API over this client
    try:
        flywheel.log_metric("x", 1)
        assert flywheel.active_run() is not None
        flywheel.end_run()
        assert flywheel.active_run() is None and server.updates[-1]["status"] == "FINISHED"
    finally:
        flywheel._default = None


def test_points_survive_a_transient_failure_and_a_refused_batch_is_dropped(server: FakeServer) -> None:
    client = client_for(server)
    client.start_run()
    client.log_metrics({"a": 1, "b": 2})
    server.fail_batches.append(httpx.Response(503, json={"error_code": "TEMPORARILY_UNAVAILABLE", "message": "restarting"}))
    with pytest.raises(FlywheelError) as transient:
        client.flush()
    assert transient.value.status == 503 and client.pending_points() == 2
    server.fail_batches.append(httpx.Response(400, json={"error_code": "INVALID_PARAMETER_VALUE", "message": "bad key"}))
    with pytest.raises(FlywheelError):
        client.flush()
    assert client.pending_points() == 0
    client.end_run()


@pytest.mark.parametrize("response, code, message, field", [
    (httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "run x does not exist"}), "RESOURCE_DOES_NOT_EXIST", "run x does not exist", None),
    (httpx.Response(400, json={"error": {"code": "INVALID_PARAMETER_VALUE", "message": "config: bad", "field": "config"}}), "INVALID_PARAMETER_VALUE", "config: bad", "config"),
    (httpx.Response(502, text="<html>Bad Gateway</html>"), "TEMPORARILY_UNAVAILABLE", "<html>Bad Gateway</html>", None),
    (httpx.Response(403, content=b""), "PERMISSION_DENIED", "Forbidden", None),
])
def test_errors_carry_the_servers_code_message_and_status(response: httpx.Response, code: str, message: str, field: Any) -> None:
    client = Client("http://flywheel.test", "t", transport=httpx.MockTransport(lambda request: response))
    with pytest.raises(FlywheelError) as raised:
        client.get_run("x")
    assert (raised.value.code, raised.value.status, raised.value.field) == (code, response.status_code, field)
    assert message in raised.value.message


def test_an_unreachable_server_is_a_flywheel_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)
    client = Client("http://flywheel.test", "t", transport=httpx.MockTransport(refuse))
    with pytest.raises(FlywheelError) as raised:
        client.get_run("x")
    assert raised.value.code == "UNAVAILABLE" and raised.value.status is None and "flywheel.test" in raised.value.message


def test_artifacts_stream_files_and_directories_under_the_runs_root(server: FakeServer, tmp_path: Path) -> None:
    client = client_for(server)
    client.start_run()
    (tmp_path / "report.txt").write_text("hello")
    (tmp_path / "model" / "weights").mkdir(parents=True)
    (tmp_path / "model" / "weights" / "w.bin").write_bytes(b"\x00" * 3_000_000)
    (tmp_path / "model" / "empty.txt").write_bytes(b"")
    assert client.log_artifact(tmp_path / "report.txt", "reports") == ["reports/report.txt"]
    assert client.log_artifact(tmp_path / "model") == ["model/empty.txt", "model/weights/w.bin"]
    assert client.log_artifacts(tmp_path / "model", "copy") == ["copy/empty.txt", "copy/weights/w.bin"]
    assert server.uploads["0/r1/artifacts/reports/report.txt"] == b"hello"
    assert len(server.uploads["0/r1/artifacts/model/weights/w.bin"]) == 3_000_000
    assert server.uploads["0/r1/artifacts/model/empty.txt"] == b""
    with pytest.raises(FlywheelError):
        client.log_artifact(tmp_path / "report.txt", "../outside")
    with pytest.raises(FlywheelError):
        client.log_artifact(tmp_path / "missing.txt")
    client.end_run()


def test_pipeline_configs_from_json_yaml_and_dicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"name": "p", "data": {"source": "rows.csv"}}))
    (tmp_path / "p.yaml").write_text("name: p\ndata:\n  source: s3://bucket/rows.csv\n")
    loaded = flywheel.load_pipeline_config(tmp_path / "p.json")
    assert loaded["data"]["source"] == str(tmp_path.resolve() / "rows.csv")  # relative to the file, as the CLI does
    assert flywheel.load_pipeline_config({"name": "d"}) == {"name": "d"}
    pytest.importorskip("yaml")
    assert flywheel.load_pipeline_config(str(tmp_path / "p.yaml")) == {"name": "p", "data": {"source": "s3://bucket/rows.csv"}}
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML absent: JSON still reads, YAML says what to install
    assert flywheel.load_pipeline_config(tmp_path / "p.json")["name"] == "p"
    with pytest.raises(FlywheelError) as needs_yaml:
        flywheel.load_pipeline_config(tmp_path / "p.yaml")
    assert "PyYAML" in needs_yaml.value.message


def test_wait_returns_a_completed_pipeline_and_raises_with_the_failure_message(server: FakeServer) -> None:
    client = client_for(server)
    server.pipeline_states = [{"workflowId": "w", "status": "RUNNING", "stages": []}, {"workflowId": "w", "status": "COMPLETED", "result": {"model": {"version": 1}}}]
    seen: List[str] = []
    assert client.wait("w", timeout=30, poll_interval=0.01, on_status=lambda s: seen.append(s["status"]))["result"] == {"model": {"version": 1}}
    assert seen == ["RUNNING", "COMPLETED"]
    server.pipeline_states = [{"workflowId": "w", "status": "FAILED", "failure": "[IngestError] rows.csv: no such file"}]
    with pytest.raises(FlywheelError) as failed:
        client.wait("w")
    assert failed.value.code == "FAILED" and "rows.csv: no such file" in failed.value.message
    assert failed.value.details["status"] == "FAILED"
    server.pipeline_states = [{"workflowId": "w", "status": "RUNNING", "stages": [{"stage": "train", "status": "running"}]}]
    with pytest.raises(FlywheelTimeout) as timed_out:
        client.wait("w", timeout=0.05, poll_interval=0.01)
    assert timed_out.value.code == "DEADLINE_EXCEEDED" and "train" in timed_out.value.message
    assert isinstance(timed_out.value, TimeoutError)


def test_runs_left_active_are_ended_at_exit_failed_after_an_uncaught_exception(tmp_path: Path) -> None:
    """A child interpreter logs to a tiny HTTP server and exits: normally, then by an uncaught exception."""
    script = textwrap.dedent("""
        import json, sys, threading
        from http.server import BaseHTTPRequestHandler, HTTPServer
        seen = []
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])) or b"{}")
                seen.append((self.path, body))
                if self.path.endswith("runs/update"):  # before answering: the process exits once the client has the answer
                    print("STATUS", body["status"], "POINTS", sum(len(b.get("metrics", [])) for p, b in seen if p.endswith("log-batch")), flush=True)
                out = {"run": {"info": {"run_id": "r", "experiment_id": "0", "status": "RUNNING"}}} if self.path.endswith("runs/create") else {}
                data = json.dumps(out).encode()
                self.send_response(200); self.send_header("content-type", "application/json"); self.send_header("content-length", str(len(data))); self.end_headers()
                self.wfile.write(data)
            def log_message(self, *args): pass
        httpd = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        import flywheel
        flywheel.configure(f"http://127.0.0.1:{httpd.server_port}", "t")
        flywheel.start_run()
        flywheel.log_metric("loss", 0.5)
        if sys.argv[1] == "crash":
            raise SystemError("training crashed")
    """)
    path = tmp_path / "child.py"
    path.write_text(script)
    clean = subprocess.run([sys.executable, str(path), "ok"], capture_output=True, text=True, timeout=60)
    assert "STATUS FINISHED POINTS 1" in clean.stdout, clean.stderr
    crashed = subprocess.run([sys.executable, str(path), "crash"], capture_output=True, text=True, timeout=60)
    assert "STATUS FAILED POINTS 1" in crashed.stdout, crashed.stderr
    assert crashed.returncode == 1
