"""`hearth serve` and `hearth api` as a user or a service manager runs them: a real process on
loopback, reached with the official `openai` client, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import openai

HEARTH = [sys.executable, "-m", "app.cli"]


def env_for(home: Path, policy: Path | None = None) -> dict[str, str]:
    return dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HEARTH_HOME=str(home),
        HEARTH_POLICY=str(policy or home / "no-policy.json"),
    )


def hearth(home: Path, *args: str, policy: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HEARTH, *args], capture_output=True, text=True, timeout=120, env=env_for(home, policy)
    )


def test_serve_answers_the_openai_client_and_stops_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [*HEARTH, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(home),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the model is loaded and the port is open
        assert line.startswith("Hearth API on http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[3]
        token = hearth(home, "api", "token").stdout.strip()
        assert token.startswith("hearth-") and token not in line
        with openai.OpenAI(base_url=url, api_key=token, max_retries=0, timeout=120) as client:
            out = client.chat.completions.create(
                model="bundled:smollm2-135m-instruct-q4_1",
                temperature=0,
                max_tokens=16,
                messages=[
                    {
                        "role": "user",
                        "content": "What is the capital of France? Answer in one word.",
                    }
                ],
            )
            assert "Paris" in (out.choices[0].message.content or "")
        rotated = hearth(home, "api", "token", "--rotate").stdout.strip()
        assert rotated != token
        with openai.OpenAI(base_url=url, api_key=token, max_retries=0) as stale:
            try:
                stale.models.list()
                raise AssertionError("the rotated-out token still worked")
            except openai.AuthenticationError:
                pass
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    log = hearth(home, "api", "log", "--json")
    entries = json.loads(log.stdout)
    assert [e["status"] for e in entries] == [200, 401]
    assert "capital" not in (home / "logs" / "api-audit.jsonl").read_text()


def test_serve_refuses_other_addresses_and_a_policy_that_forbids_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = hearth(home, "serve", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 1
    assert "machine policy" in result.stderr and "Traceback" not in result.stderr
    result = hearth(home, "serve", "--model", "no-such-model", "--port", "0")
    assert result.returncode == 1
    assert "There is no model “no-such-model”" in result.stderr and "Traceback" not in result.stderr
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {"reason": "Example Corp: no local servers.", "settings": {"api.enabled": False}}
        )
    )
    result = hearth(home, "serve", "--port", "0", policy=policy)
    assert result.returncode == 1
    assert "Example Corp: no local servers." in result.stderr
