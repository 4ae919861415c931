"""The real `hearth` entry point as a subprocess, offline, on the bundled model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HEARTH = [sys.executable, "-m", "app.cli"]


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run(
        [*HEARTH, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("hearth 0.")


def test_ask_answers_with_stats_on_stderr() -> None:
    result = run("ask", "What is the capital of France?", "--temperature", "0", "--stats")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "tokens/s" in result.stderr and "first token after" in result.stderr
    assert "tokens/s" not in result.stdout


def test_ask_json(hearth_home: Path) -> None:
    result = run("ask", "What is the capital of France?", "--temperature", "0", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert "Paris" in doc["answer"]
    assert doc["stats"]["generated_tokens"] > 0 and doc["stats"]["tokens_per_s"] > 0
    assert doc["stats"]["stop_reason"] == "eos"
    assert (hearth_home / "logs" / "hearth.log").exists()
    assert "capital of France" not in (hearth_home / "logs" / "hearth.log").read_text()


def test_ask_with_a_schema_answers_json_that_matches_it(tmp_path: Path) -> None:
    import jsonschema

    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["city", "country"],
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "country": {"type": "string", "maxLength": 40},
        },
    }
    path = tmp_path / "place.json"
    path.write_text(json.dumps(schema))
    result = run(
        "ask",
        "Where is the Eiffel Tower?",
        "--schema",
        str(path),
        "--temperature",
        "0.8",
        "--seed",
        "5",
    )
    assert result.returncode == 0, result.stderr
    jsonschema.validate(json.loads(result.stdout), schema)

    path.write_text('{"$ref": "https://example.com/s.json"}')
    refused = run("ask", "hi", "--schema", str(path))
    assert refused.returncode == 1 and "refers outside itself" in refused.stderr
    missing = run("ask", "hi", "--schema", str(tmp_path / "none.json"))
    assert missing.returncode == 1 and "could not be read" in missing.stderr
    assert "Traceback" not in refused.stderr + missing.stderr


def test_ask_with_a_broken_model_fails_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\0\0\0" + b"\xff" * 16)
    result = run("ask", "hi", "--model", str(bad))
    assert result.returncode == 1
    assert "broken.gguf" in result.stderr and "Traceback" not in result.stderr


def test_models_list_json() -> None:
    result = run("models", "list", "--json")
    assert result.returncode == 0
    models = json.loads(result.stdout)["installed"]
    assert models[0]["id"].startswith("bundled:") and models[0]["usable"]
    assert models[0]["quantization"] == "Q4_1"


def test_doctor_reports_kernels_devices_paths_and_hashes(hearth_home: Path) -> None:
    result = run("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["llama_cpp"]["cpu_kernels"]
    assert any(d["type"] == "CPU" for d in report["llama_cpp"]["devices"])
    assert report["paths"]["data"].startswith(str(hearth_home))
    assert all(m["sha256_ok"] for m in report["bundled_models"])
    # A checkout has torch and no shipped export (a release build has the opposite).
    assert report["embedder"] == {
        "shipped_export": None,
        "torch": True,
        "runs_on": report["embedder"]["runs_on"],
    }
    human = run("doctor", "--no-hash")
    assert "CPU kernels:" in human.stdout and "Bundled models:" in human.stdout
    assert "Document embedder: runs on torch in bfloat16 where the CPU" in human.stdout


def test_chat_ctrl_c_stops_the_answer_not_the_program() -> None:
    proc = subprocess.Popen(
        [*HEARTH, "chat", "--temperature", "0.8", "--max-tokens", "3000", "--seed", "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # our own process group, as a terminal would have
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write("Write a very long story about a lighthouse keeper.\n")
        proc.stdin.flush()
        seen = ""
        while len(seen) < 40:  # wait until the answer is streaming
            seen += proc.stdout.read(1)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the CLI and the worker alike
        time.sleep(0.5)
        assert proc.poll() is None, "Ctrl-C must not end the program"
        proc.stdin.write("What is the capital of France?\n/exit\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=120)
        out = seen + out
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "(stopped)" in err
    answers = out.split("ai> ")
    assert len(answers) == 3, out  # the stopped story, then a whole second answer
    assert answers[2].strip().removesuffix("you>").strip()


def test_erase_asks_first_then_deletes_everything(tmp_path: Path) -> None:
    from engine import erase, paths

    env = dict(os.environ, HF_HUB_OFFLINE="1", HEARTH_HOME=str(tmp_path / "home"))
    run = [sys.executable, "-m", "app.cli"]
    assert (
        subprocess.run(
            [*run, "ask", "--max-tokens", "4", "Hi"], env=env, capture_output=True, timeout=120
        ).returncode
        == 0
    )
    refused = subprocess.run(
        [*run, "erase"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert refused.returncode == 1 and "confirm with --yes" in refused.stderr
    assert (tmp_path / "home" / "logs" / "hearth.log").exists()
    done = subprocess.run(
        [*run, "erase", "--yes"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "logs, including the network log" in done.stdout
    assert erase.leftovers(paths.resolve(env)) == [] and not (tmp_path / "home").exists()


def test_chats_list_and_export_read_the_windows_history(tmp_path: Path) -> None:
    from engine.chats import ChatStore

    home = tmp_path / "home"
    store = ChatStore(home / "data" / "chats.sqlite")
    chat = store.create(title="Pelican facts")
    store.add_message(chat.id, "user", "What do pelicans eat?")
    store.add_message(chat.id, "assistant", "Fish.", model="SmolLM2")
    store.close()
    env = dict(os.environ, HF_HUB_OFFLINE="1", HEARTH_HOME=str(home))
    run = [sys.executable, "-m", "app.cli", "chats"]
    listed = subprocess.run(
        [*run, "list", "pelicans"], env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0 and "Pelican facts" in listed.stdout
    shown = subprocess.run(
        [*run, "export", str(chat.id)], env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0 and "# Pelican facts" in shown.stdout and "Fish." in shown.stdout
    out = tmp_path / "pelicans.json"
    written = subprocess.run(
        [*run, "export", str(chat.id), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert written.returncode == 0, written.stderr
    assert [m["content"] for m in json.loads(out.read_text())["messages"]] == [
        "What do pelicans eat?",
        "Fish.",
    ]
    missing = subprocess.run(
        [*run, "export", "999"], env=env, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 1 and "no longer exists" in missing.stderr


def test_a_policy_checksum_list_refuses_other_models(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps({"reason": "Contoso IT", "settings": {"models.allowed_sha256": ["ab" * 32]}})
    )
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HEARTH_HOME=str(tmp_path / "home"),
        HEARTH_POLICY=str(policy),
    )
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "ask", "Hi"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "policy does not allow the model" in result.stderr
    assert "Contoso IT" in result.stderr  # who decided, not a setting to go and change
    doctor = subprocess.run(
        [sys.executable, "-m", "app.cli", "doctor", "--no-hash"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    section = doctor.stdout.split("Machine policy:")[1]
    assert f"in force from {policy} (HEARTH_POLICY)" in section
    assert f'locked models.allowed_sha256 = ["{"ab" * 32}"]: Contoso IT' in section


def test_the_window_names_missing_x11_libraries_instead_of_qts_plugin_error() -> None:
    from app.gui import X11_PACKAGES, missing_x11_libraries

    desktop = {"DISPLAY": ":0"}
    assert missing_x11_libraries(desktop, "linux", lambda _soname: True) == []
    gone = missing_x11_libraries(desktop, "linux", lambda soname: "cursor" not in soname)
    assert gone == ["libxcb-cursor.so.0"] and X11_PACKAGES[gone[0]] == "libxcb-cursor0"
    # no X11 to open a window on: nothing to check
    assert missing_x11_libraries({}, "linux", lambda _s: False) == []
    assert (
        missing_x11_libraries(
            {**desktop, "WAYLAND_DISPLAY": "wayland-0"}, "linux", lambda _s: False
        )
        == []
    )
    assert (
        missing_x11_libraries(
            {**desktop, "QT_QPA_PLATFORM": "offscreen"}, "linux", lambda _s: False
        )
        == []
    )
    assert missing_x11_libraries(desktop, "darwin", lambda _s: False) == []
    # this machine, as the test suite runs it, has them or runs offscreen
    assert missing_x11_libraries() == []


def test_doctor_says_when_the_app_turned_the_fast_kernels_off(hearth_home: Path) -> None:
    from engine import paths as paths_module
    from engine.runtime import kernel_memory

    memory = paths_module.resolve().data / kernel_memory.FILE_NAME
    kernel_memory.remember(memory, "SIGSEGV")
    result = run("doctor", "--no-hash")
    assert result.returncode == 0, result.stderr
    assert "fast kernels: OFF in the app since" in result.stdout
    assert f"delete {memory} to try them again" in result.stdout
