"""The worker's pure parts: entrypoint parsing and resolution (and their errors), queue names, options, the startup
line. No server and no Temporal needed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from flywheel._entrypoint import EntrypointError, load_entrypoint, parse_entrypoint, resolve_script
from flywheel.worker import QUEUES, TemporalTls, parse_options, resolve_queue, startup_line, temporal_tls


@pytest.fixture
def clean_modules() -> Iterator[None]:
    """Modules and sys.path entries a test imports are dropped afterwards, so tests do not see each other's code."""
    modules, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_parse_tells_modules_from_scripts() -> None:
    module = parse_entrypoint("team_models.churn:fit")
    assert (module.module, module.script, module.function) == ("team_models.churn", None, "fit")
    script = parse_entrypoint("./train/churn.py:Trainer.fit")
    assert (script.module, script.script, script.function) == (None, "train/churn.py", "Trainer.fit")
    assert parse_entrypoint("train\\churn.py:fit").script == "train/churn.py"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("team_models.churn", "names no function"),
        ("team_models.churn:", "names no function"),
        (":fit", "names no function"),
        ("churn:fit-it", "not a Python name"),
        ("team-models.churn:fit", "neither a module name nor a .py path"),
        ("/etc/train.py:fit", "not absolute"),
        ("C:/train.py:fit", "not absolute"),
        ("../elsewhere/train.py:fit", "climb out"),
        ("train/../../x.py:fit", "climb out"),
        ("train/data.csv:fit", "names a .py file"),
    ],
)
def test_parse_refuses_malformed_entrypoints_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(EntrypointError, match=message):
        parse_entrypoint(text)


def test_a_script_resolves_inside_the_first_root_that_has_it(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    expected = write(second, "train/churn.py", "def fit(ctx):\n    return None\n")
    assert resolve_script(parse_entrypoint("train/churn.py:fit"), [first, second]) == expected.resolve()
    with pytest.raises(EntrypointError, match=r"no file train/other\.py in the worker's code roots .*first.*second"):
        resolve_script(parse_entrypoint("train/other.py:fit"), [first, second])


def test_a_symlink_out_of_the_code_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(outside, "evil.py", "def fit(ctx):\n    pass\n")
    root.mkdir()
    os.symlink(outside / "evil.py", root / "evil.py")
    with pytest.raises(EntrypointError, match="leads out of code root"):
        resolve_script(parse_entrypoint("evil.py:fit"), [root])


def test_load_finds_a_module_function_in_a_code_root(tmp_path: Path, clean_modules: None) -> None:
    write(tmp_path, "pyw_models/__init__.py", "")
    write(tmp_path, "pyw_models/helpers.py", "SCALE = 3\n")
    write(
        tmp_path,
        "pyw_models/churn.py",
        "from pyw_models.helpers import SCALE\n\ndef fit(ctx):\n    return SCALE * ctx\n",
    )
    fit = load_entrypoint("pyw_models.churn:fit", [tmp_path])
    assert fit(2) == 6


def test_load_runs_a_script_that_imports_its_neighbours(tmp_path: Path, clean_modules: None) -> None:
    write(tmp_path, "jobs/pyw_shared.py", "OFFSET = 10\n")
    write(
        tmp_path,
        "jobs/train.py",
        "import pyw_shared\n\nclass Trainer:\n    @staticmethod\n    def fit(ctx):\n"
        "        return pyw_shared.OFFSET + ctx\n",
    )
    assert load_entrypoint("jobs/train.py:Trainer.fit", [tmp_path])(1) == 11


def test_load_names_what_is_wrong(tmp_path: Path, clean_modules: None) -> None:
    write(tmp_path, "pyw_broken.py", "import pyw_no_such_dependency\n")
    write(tmp_path, "pyw_raises.py", "raise RuntimeError('bad config at import')\n")
    write(tmp_path, "pyw_plain.py", "fit = 42\n\ndef other(ctx):\n    pass\n")
    write(tmp_path, "script.py", "raise ValueError('script blew up')\n")
    cases = [
        ("pyw_no_such_module:fit", r"no module pyw_no_such_module in the worker's code roots \(" + str(tmp_path)),
        ("pyw_broken:fit", "importing pyw_broken failed: No module named 'pyw_no_such_dependency'"),
        ("pyw_raises:fit", "importing pyw_raises failed: RuntimeError: bad config at import"),
        ("pyw_plain:missing", "pyw_plain has no missing"),
        ("pyw_plain:fit", "fit in pyw_plain is a int, not a function"),
        ("script.py:fit", "importing .*script.py failed: ValueError: script blew up"),
    ]
    for text, message in cases:
        with pytest.raises(EntrypointError, match=message):
            load_entrypoint(text, [tmp_path])


def test_queues_resolve_from_kind_name_and_environment() -> None:
    assert resolve_queue("cpu", {}) == (QUEUES["cpu"], False)
    assert resolve_queue("gpu", {}) == (QUEUES["gpu"], True)
    assert resolve_queue("gpu", {"FLYWHEEL_TRAIN_PYTHON_GPU_QUEUE": "team-a-gpu-pool"}) == ("team-a-gpu-pool", True)
    assert resolve_queue("team-a-gpu-pool", {"FLYWHEEL_TRAIN_PYTHON_GPU_QUEUE": "team-a-gpu-pool"}) == (
        "team-a-gpu-pool",
        True,
    )
    assert resolve_queue("test-123-python-gpu", {}) == ("test-123-python-gpu", True)
    assert resolve_queue("test-123-python-cpu", {}) == ("test-123-python-cpu", False)


def test_options_need_a_token_and_existing_roots_and_the_startup_line_hides_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    env = {
        "FLYWHEEL_URL": "http://flywheel.test:8470/",
        "FLYWHEEL_TOKEN": "fw_write_secret",
        "TEMPORAL_ADDRESS": "t:7233",
    }
    argv = ["--queue", "gpu", "--path", str(tmp_path), "--path", ".", "--max-concurrent", "2"]
    options = parse_options(argv, env, detect=lambda: [])  # a machine without GPUs
    assert options.queue == QUEUES["gpu"] and options.gpu and options.max_concurrent == 2
    assert options.roots == [tmp_path.resolve(), Path.cwd().resolve()]
    line = startup_line(options)
    assert QUEUES["gpu"] in line and str(tmp_path.resolve()) in line and "http://flywheel.test:8470" in line
    assert "t:7233/default" in line and "fw_write_secret" not in line
    assert parse_options([], env).roots == [Path.cwd().resolve()]

    with pytest.raises(SystemExit):
        parse_options([], {"FLYWHEEL_URL": "http://x"})
    assert "FLYWHEEL_TOKEN is not set" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_options(["--path", str(tmp_path / "missing")], env)
    assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_options(["--max-concurrent", "0"], env)
    assert "at least 1" in capsys.readouterr().err


def test_temporal_tls_reads_the_files_the_typescript_workers_read(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cert, key, ca = (write(tmp_path, name, f"-----{name}-----\n") for name in ("client.pem", "client.key", "ca.pem"))
    assert temporal_tls({}) is False
    assert temporal_tls({"TEMPORAL_TLS": "false"}) is False
    assert temporal_tls({"TEMPORAL_TLS": "true"}) is True
    assert temporal_tls({"TEMPORAL_API_KEY": "k"}) is True
    mutual = temporal_tls(
        {
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key),
            "TEMPORAL_TLS_SERVER_CA_PATH": str(ca),
            "TEMPORAL_TLS_SERVER_NAME": "frontend.cluster",
        }
    )
    assert mutual == TemporalTls(
        b"-----client.pem-----\n", b"-----client.key-----\n", b"-----ca.pem-----\n", "frontend.cluster"
    )
    # A private CA alone: server TLS without a client certificate.
    assert temporal_tls({"TEMPORAL_TLS_SERVER_CA_PATH": str(ca)}) == TemporalTls(server_ca=b"-----ca.pem-----\n")

    env = {
        "FLYWHEEL_TOKEN": "fw_write_x",
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key),
    }
    assert "t:7233/default (mTLS)," in startup_line(parse_options([], {**env, "TEMPORAL_ADDRESS": "t:7233"}))
    assert "(TLS)," in startup_line(parse_options([], {"FLYWHEEL_TOKEN": "fw_write_x", "TEMPORAL_API_KEY": "k"}))

    refusals = [
        ({"TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert)}, "but only TEMPORAL_TLS_CLIENT_CERT_PATH is set"),
        ({"TEMPORAL_TLS_CLIENT_KEY_PATH": str(key)}, "but only TEMPORAL_TLS_CLIENT_KEY_PATH is set"),
        ({"TEMPORAL_TLS": "yes"}, 'TEMPORAL_TLS must be true or false, got "yes"'),
        (
            {**env, "TEMPORAL_TLS_SERVER_CA_PATH": str(tmp_path / "missing.pem")},
            f"cannot read Temporal's server CA certificate {tmp_path / 'missing.pem'} (TEMPORAL_TLS_SERVER_CA_PATH)",
        ),
    ]
    for environment, message in refusals:
        with pytest.raises(ValueError) as refused:
            temporal_tls(environment)
        assert message in str(refused.value)
        with pytest.raises(SystemExit):
            parse_options([], {"FLYWHEEL_TOKEN": "fw_write_x", **environment})
        assert message in capsys.readouterr().err
