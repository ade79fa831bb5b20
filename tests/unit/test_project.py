"""The project's own promises: settings fail fast, every command documents itself, the compose
stack starts in order, and nothing unpickles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from worker.cli import app
from worker.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def all_commands() -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(cmd, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if path:
            found.append(path)
        for name, sub in (subs or {}).items():
            walk(sub, [*path, name])

    walk(group, [])
    return found


@pytest.mark.parametrize("command", all_commands(), ids=" ".join)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    if command[-1] not in ("db", "sources"):
        assert "Example" in result.output, f"newsclass {' '.join(command)} --help has no example"


def test_every_option_reads_the_environment_or_is_a_flag() -> None:
    import typer.main

    group = typer.main.get_command(app)
    for name in ("enqueue", "worker", "classify", "query", "stats", "reclassify"):
        cmd = group.commands[name]  # type: ignore[attr-defined]
        for param in cmd.params:
            if param.param_type_name == "option" and param.name not in ("help",):
                assert param.envvar or param.is_flag or name in ("query",), f"{name} --{param.name}"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("NEWSCLASS_BROKER_URL", "http://nope", "NEWSCLASS_BROKER_URL"),
        ("NEWSCLASS_DATABASE_URL", "mysql://x/y", "NEWSCLASS_DATABASE_URL"),
        ("NEWSCLASS_MODEL_PATH", "/nonexistent/model.skops", "no model file"),
        ("NEWSCLASS_BROKER_VISIBILITY_TIMEOUT", "soon", "NEWSCLASS_BROKER_VISIBILITY_TIMEOUT"),
        ("NEWSCLASS_LOG_LEVEL", "LOUD", "NEWSCLASS_LOG_LEVEL"),
    ],
)
def test_a_bad_setting_is_a_clear_error(monkeypatch, variable: str, value: str, says: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=says):
        load_settings()


def test_defaults_are_the_embedded_ones(monkeypatch) -> None:
    for var in ("NEWSCLASS_BROKER_URL", "NEWSCLASS_DATABASE_URL", "NEWSCLASS_MODEL_PATH"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings()
    assert settings.broker_url == "redis://localhost:6379/0"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.model_path.is_file()


def test_a_bad_setting_stops_a_command_with_a_message(monkeypatch) -> None:
    from worker.settings import get_settings

    monkeypatch.setenv("NEWSCLASS_BROKER_VISIBILITY_TIMEOUT", "-3")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["stats"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "NEWSCLASS_BROKER_VISIBILITY_TIMEOUT" in result.output


def test_compose_stack_starts_in_order() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "migrate", "worker", "beat"} <= set(services)
    for name in ("redis", "postgres"):
        assert "healthcheck" in services[name]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("worker", "beat"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["command"][0] == "worker"
    assert services["beat"]["command"] == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "noeviction" in services["redis"]["command"]
    env = services["worker"]["environment"]
    assert env["NEWSCLASS_DATABASE_URL"].startswith("postgresql")


def test_no_pickle_anywhere() -> None:
    from worker.celery_app import app as celery_app

    assert celery_app.conf.accept_content == ["json"]
    assert celery_app.conf.task_serializer == "json"
    assert celery_app.conf.task_acks_late and celery_app.conf.task_reject_on_worker_lost
    pattern = re.compile(r"\b(import pickle|pickle\.loads?|joblib\.load|cloudpickle)\b")
    for path in [*REPO.glob("worker/**/*.py"), *REPO.glob("classifiers/**/*.py")]:
        assert not pattern.search(path.read_text()), path


def test_redis_brokers_use_newsclass_transport_and_tls_verifies() -> None:
    import ssl

    from worker.celery_app import broker_transport_settings

    transport = "newsclass-redis"
    assert broker_transport_settings("redis://127.0.0.1:6379/0") == {"broker_transport": transport}
    assert broker_transport_settings("rediss://h:6380/0")["broker_use_ssl"] == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED
    }
    assert "broker_use_ssl" not in broker_transport_settings("rediss://h/0?ssl_cert_reqs=none")
    assert broker_transport_settings("amqp://guest:guest@127.0.0.1:5672//") == {}


def test_a_worker_takes_at_most_one_batch_per_round_trip() -> None:
    from worker.celery_app import app as celery_app
    from worker.redis_transport import Channel

    options = celery_app.conf.broker_transport_options
    assert options["fetch_limit"] == load_settings().batch_size
    assert "fetch_limit" in Channel.from_transport_options


def test_a_bad_url_setting_does_not_print_its_password(monkeypatch) -> None:
    monkeypatch.setenv("NEWSCLASS_BROKER_URL", "http://user:hunter2@broker.example/0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
    assert "NEWSCLASS_BROKER_URL" in str(caught.value)
