"""The gateway config is checked like the policy (issue 16, F17; issue 15 item 5): an unknown
section or key is refused by name, types and ranges are checked, and the environment gives
``TAILGUARD_LEDGER`` / ``TAILGUARD_REDIS_URL`` / ``TAILGUARD_POLICY`` / ``TAILGUARD_PRICES``
over the file, as docs/configuration.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailguard.cli.app import run
from tailguard.errors import ConfigError
from tailguard.gateway.config import load_config

UPSTREAM = '[[upstream]]\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'


def _cfg(tmp_path: Path, gateway: str, rest: str = UPSTREAM) -> Path:
    p = tmp_path / "gw.toml"
    p.write_text(f"[gateway]\n{gateway}\n{rest}")
    return p


@pytest.mark.parametrize(
    "gateway,rest,named",
    [
        ('polcy = "policy.toml"', UPSTREAM, "'polcy'"),  # a typo: was no guard, no warning
        ("", UPSTREAM + '[gatway]\nledger = "x"\n', "[gatway]"),
        ("flush_interval_s = -1", UPSTREAM, "gateway.flush_interval_s"),  # spun a core
        ("flush_interval_s = 0", UPSTREAM, "gateway.flush_interval_s"),
        ("timeout_s = -5", UPSTREAM, "gateway.timeout_s"),  # made every call a 504
        ('timeout_s = "soon"', UPSTREAM, "gateway.timeout_s"),  # was a traceback
        ("default_max_output_tokens = 1.5", UPSTREAM, "gateway.default_max_output_tokens"),
        ("default_max_output_tokens = 0", UPSTREAM, "gateway.default_max_output_tokens"),
        ('durability = "maybe"', UPSTREAM, "gateway.durability"),
        ("ledger = 5", UPSTREAM, "gateway.ledger"),
        ("max_body_mb = 0", UPSTREAM, "gateway.max_body_mb"),
        ('redis_url = "localhost:6379"', UPSTREAM, "gateway.redis_url"),
        ('forward_headers = ["OpenAI-Organization"]', UPSTREAM, "gateway.forward_headers"),
        ('metrics_token_env = "TG_UNSET_TOKEN_VAR"', UPSTREAM, "metrics_token_env"),
        ("", UPSTREAM + 'modles = ["*"]\n', "'modles'"),
        ("", '[[upstream]]\nprovider = "openai"\nbase_url = "localhost"\n', "base_url"),
        ("", "[upstream]\nprovider = 'openai'\n", "[[upstream]]"),
    ],
)
def test_bad_config_is_refused_by_name(
    tmp_path: Path, gateway: str, rest: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _cfg(tmp_path, gateway, rest)
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert named in str(e.value) and str(p) in str(e.value)
    # the CLI: one line, exit 1, no traceback
    assert run(["gateway", "--config", str(p)]) == 1
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


def test_a_sound_config_with_every_key(tmp_path: Path) -> None:
    p = _cfg(
        tmp_path,
        'ledger = "led"\npolicy = "pol.toml"\nprices = "pr.toml"\n'
        'redis_url = "redis://127.0.0.1:6390/0"\nkeys = "k.json"\ndurability = "write"\n'
        "flush_interval_s = 0.5\ndefault_max_output_tokens = 100\ntimeout_s = 30\n"
        'http_client = "httpx"\nmax_body_mb = 1.5\nmetrics = false\n'
        'forward_headers = ["X-Trace-Id"]\n',
    )
    c = load_config(p, env={})
    assert c.ledger == tmp_path / "led" and c.keys == tmp_path / "k.json"
    assert c.policy == tmp_path / "pol.toml" and c.prices == tmp_path / "pr.toml"
    assert c.flush_interval_s == 0.5 and c.timeout_s == 30.0
    assert c.default_max_output_tokens == 100 and c.max_body_bytes == 1572864  # 1.5 x 2^20
    assert c.metrics is False and "x-trace-id" in c.forward_headers
    assert c.redis_url == "redis://127.0.0.1:6390/0"


def test_environment_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _cfg(tmp_path, 'ledger = "from-file"\nredis_url = "redis://file:1/0"')
    monkeypatch.chdir(tmp_path)
    env = {
        "TAILGUARD_LEDGER": "from-env",
        "TAILGUARD_REDIS_URL": "redis://env:2/0",
        "TAILGUARD_POLICY": "/etc/pol.toml",
        "TAILGUARD_PRICES": "prices-env.toml",
    }
    c = load_config(p, env=env)
    assert c.ledger == tmp_path / "from-env"  # relative to the working directory
    assert c.redis_url == "redis://env:2/0"
    assert c.policy == Path("/etc/pol.toml") and c.prices == tmp_path / "prices-env.toml"
    # and through os.environ, as `tailguard gateway` reads it
    monkeypatch.setenv("TAILGUARD_LEDGER", str(tmp_path / "abs-env"))
    assert load_config(p).ledger == tmp_path / "abs-env"
    c = load_config(p, env={})
    assert c.ledger == tmp_path / "from-file" and c.redis_url == "redis://file:1/0"


def test_unreadable_keys_file_at_start_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _cfg(tmp_path, "")
    (tmp_path / "keys.json").write_text('{"keys": ')
    assert run(["gateway", "--config", str(p)]) == 1
    err = capsys.readouterr().err
    assert "keys.json" in err and "unreadable keys file" in err and "Traceback" not in err
