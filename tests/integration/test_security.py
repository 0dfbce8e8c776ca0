"""Locked-down defaults (docs/security.md): no pickle, Redis AUTH / ACL users / TLS, loopback binding.

Real pools and private redis-servers. The HTTP API's binding and token rules are also tested over
TCP in ``test_http.py`` (``test_real_server_refuses_a_public_bind_without_token``,
``test_real_server_over_tcp_with_token``, ``test_token_is_required_when_set_except_for_health``), and
markup in payloads is shown as text by the dashboard in ``test_dashboard.py``
(``test_browser_overview_filter_fan_out_terminate_and_api_log``, the ``xss-browser`` run).

The pickle test builds a pickle message on purpose (the one place in the project that does): a
payload that would create a file if any worker ever unpickled it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from orchestrator import RedisAuthError, Settings, WorkflowClient, WorkflowStatus
from orchestrator.http.server import ExposureError, check_exposure
from orchestrator.worker.celery_app import create_celery_app
from tests.conftest import Pool
from tests.support.redis_proc import EmbeddedRedis
from tests.support.waiting import wait_until

APP = "tests.apps.reliability_app"
PASSWORD = "s3cret-redis-password-for-tests"


def finished(client: WorkflowClient, instance_id: str, timeout: float = 30) -> Any:
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=timeout)
    assert state.runtime_status == WorkflowStatus.COMPLETED, (state.runtime_status, state.failure_details)
    return state.output


# -- no pickle -------------------------------------------------------------------------------------
class Gadget:
    """Unpickling this runs ``touch <path>``: the classic remote-code-execution payload."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.path}",))


def test_celery_apps_accept_msgpack_only():
    app = create_celery_app(Settings())
    assert app.conf.accept_content == ["msgpack"] and app.conf.task_serializer == "msgpack"
    assert app.conf.result_accept_content == ["msgpack"]


def test_a_pickle_message_on_a_pool_queue_is_rejected_and_never_executed(client, start_pool, redis_server,
                                                                         redis_client, tmp_path):
    pool = start_pool(APP)
    # An instance whose step only a message can run: its start is an hour away, so no sweeper sends one.
    later = datetime.now(UTC) + timedelta(hours=1)
    iid = client.schedule_new_workflow("rel_plain", input=3, instance_id="pickle-target", start_at=later)
    marker = tmp_path / "pwned"
    attacker = Celery("attacker", broker=redis_server.url, set_as_current=False)
    attacker.conf.update(task_serializer="pickle", accept_content=["pickle"])
    attacker.send_task("orchestrator.step", args=[iid], queue="orchestrator.default", serializer="pickle")
    attacker.send_task("orchestrator.step", args=[Gadget(str(marker))], queue="orchestrator.default",
                       serializer="pickle")
    wait_until(lambda: pool.log_path.read_text().count("Refusing to deserialize untrusted content of type pickle") >= 2,
               timeout=20, what="the pool to refuse both pickle messages")
    assert not marker.exists()  # the payload was never unpickled
    assert client.get_workflow_state(iid).runtime_status == WorkflowStatus.PENDING  # the step never ran
    # Dropped, not requeued: the refusal is logged just before kombu removes the message.
    wait_until(lambda: redis_client.llen("orchestrator.default") == 0 and redis_client.hlen("unacked") == 0,
               timeout=20, what="the pickle messages to leave the queue and unacked")
    client._publisher.send_step(iid, "default")  # the same request as msgpack is served
    assert finished(client, iid) == 6


# -- Redis AUTH, ACL users, TLS ----------------------------------------------------------------------
class SecuredRedis(EmbeddedRedis):
    """A private redis-server with extra arguments, whose readiness check uses ``client_url``."""

    def __init__(self, data_dir: Path, extra: list[str], client_url: str, tls_port: bool = False) -> None:
        super().__init__(data_dir, appendonly=False)
        self.extra, self.client_url_template, self.tls_port = extra, client_url, tls_port

    @property
    def url(self) -> str:
        return self.client_url_template.format(port=self.port)

    def _command(self) -> list[str]:
        argv = super()._command()
        if self.tls_port:  # TLS only: the plain port is closed
            argv[argv.index("--port") + 1] = "0"
            argv += ["--tls-port", str(self.port)]
        return argv + self.extra

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 10
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            while True:
                try:
                    if probe.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError):
                    if time.monotonic() > deadline or (self._proc is not None and self._proc.poll() is not None):
                        self._fail("secured redis-server did not answer PING")
                time.sleep(0.05)
        finally:
            probe.close()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Any]:
    servers: list[SecuredRedis] = []

    def start(extra: list[str], client_url: str, tls_port: bool = False) -> SecuredRedis:
        server = SecuredRedis(tmp_path / f"redis-{len(servers)}", extra, client_url, tls_port)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def _run_one_workflow(url: str, log: Path) -> Any:
    pool = Pool(APP, url, "default", 1, log).start()
    try:
        pool.wait_ready()
        client = WorkflowClient(settings=Settings(redis_url=url))
        iid = client.schedule_new_workflow("rel_one", input={"value": "authenticated"})
        return finished(client, iid)
    finally:
        pool.kill()


@pytest.mark.parametrize("mode", ["requirepass", "acl-user"])
def test_password_protected_redis_serves_pool_and_client(secured, tmp_path, mode):
    if mode == "requirepass":
        server = secured(["--requirepass", PASSWORD], f"redis://:{PASSWORD}@127.0.0.1:{{port}}/0")
    else:  # Redis 6 ACL: the default user is off, a named user has the rights the engine needs
        acl = tmp_path / "users.acl"
        acl.write_text(f"user default off\nuser orchestrator on >{PASSWORD} ~* &* +@all\n")
        server = secured(["--aclfile", str(acl)], f"redis://orchestrator:{PASSWORD}@127.0.0.1:{{port}}/0")
    assert _run_one_workflow(server.url, tmp_path / "pool.log") == "authenticated"
    anonymous = redis.Redis(port=server.port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()


def test_missing_or_wrong_redis_credentials_are_named_and_stop_a_pool(secured, tmp_path):
    server = secured(["--requirepass", PASSWORD], f"redis://:{PASSWORD}@127.0.0.1:{{port}}/0")
    for url in (f"redis://127.0.0.1:{server.port}/0", f"redis://:wrong-password@127.0.0.1:{server.port}/0"):
        client = WorkflowClient(settings=Settings(redis_url=url))
        with pytest.raises(RedisAuthError, match=r"refused the credentials") as info:
            client.get_workflow_state("any")
        assert f"127.0.0.1:{server.port}" in str(info.value) and "wrong-password" not in str(info.value)
    # A pool with a wrong password exits with that error instead of retrying forever.
    pool = Pool(APP, f"redis://:wrong-password@127.0.0.1:{server.port}/0", "default", 1, tmp_path / "bad.log").start()
    assert pool.proc.wait(60) != 0
    log = pool.log_path.read_text()
    assert "RedisAuthError" in log and "refused the credentials" in log and "wrong-password" not in log


def _self_signed(directory: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert


def test_tls_rediss_url_with_password_serves_pool_and_client(secured, tmp_path):
    cert = _self_signed(tmp_path)
    url = (f"rediss://:{PASSWORD}@127.0.0.1:{{port}}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}")
    try:
        server = secured(["--requirepass", PASSWORD, "--tls-cert-file", str(cert), "--tls-key-file",
                          str(tmp_path / "key.pem"), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"],
                         url, tls_port=True)
    except RuntimeError as exc:
        if "tls" in str(exc).lower():
            pytest.skip(f"this redis-server was built without TLS: {exc}")
        raise
    assert _run_one_workflow(server.url, tmp_path / "pool.log") == "authenticated"
    plain = redis.Redis(port=server.port, password=PASSWORD, socket_timeout=2)
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        plain.ping()  # a client without TLS gets nothing from the TLS-only port


# -- HTTP API: loopback by default, a token elsewhere ------------------------------------------------
def test_the_api_binds_loopback_by_default_and_needs_a_strong_token_elsewhere():
    assert Settings().api_host == "127.0.0.1" and Settings().api_token is None
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    for host in ("0.0.0.0", "10.1.2.3", "api.example.com"):
        with pytest.raises(ExposureError, match=f"refusing to serve on {host}"):
            check_exposure(host, None)
    with pytest.raises(ExposureError, match="use at least 16"):
        check_exposure("0.0.0.0", "short")
    check_exposure("0.0.0.0", "a-token-of-thirty-two-characters")
