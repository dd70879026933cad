"""Hostile arguments for keygen, sign, verify, fingerprint and doctor: the CLI contract holds for all.

Every argument of each command is replaced, one at a time, by values a careless or hostile user
can type: huge, empty, terminal escapes, C1 controls, NUL, lone surrogates (undecodable file
names), newlines, FIFOs and directories. For each run: the exit code is one the command
documents, an error is exactly one line on stderr, nothing says "unexpected" (an untyped error),
every printed line is under 1,000 characters, and no control character reaches the terminal.
(/dev/zero and /dev/urandom are tried in test_cli.py, in child processes with a memory limit,
so that a regression cannot take the machine down.)
"""

from __future__ import annotations

import os
import re

import pytest

from snapbook.cli import main
from snapbook.keys import save_private_key, save_public_key
from snapbook.signing import sign, string_to_sign

TS = "2020-12-18T10:55:00+07:00"
CLIENT = "MCP00000001"
MAX_LINE = 1000
pytestmark = pytest.mark.timeout(120)  # a FIFO read that blocks again fails here, not after 300 s
#: Exit codes each command documents (README, "Command line").
CONTRACT = {"keygen": {0, 2}, "sign": {0, 2}, "verify": {0, 1, 2}, "fingerprint": {0, 2}, "doctor": {0, 1, 2}}
#: What must never reach a terminal: C0 controls but tab and newline, DEL, C1 controls (CSI is U+009B).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

HOSTILE_VALUES = {
    "empty": "",
    "space": " ",
    "dash": "-",
    "120k": "A" * 120_000,
    "120k-escapes": "\x1b[2J\x1b]0;pwned\x07" * 10_000,
    "csi-c1": "\x9b2J\x9b31mred",
    "newlines": "line1\nline2\r\nline3",
    "nul": "ab\x00cd",
    "surrogate": "key\udcff\udcfe.pem",  # how Python shows a file name that is not UTF-8
    "non-ascii": "kunci-rahasia-é-😀" * 3,
    "format": "%s%n{0}{}",
    "number": "9" * 5000,
}


@pytest.fixture(scope="module")
def files(private_key, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile-args")
    fifo = tmp / "key.fifo"
    os.mkfifo(fifo)
    return {
        "private": str(save_private_key(private_key, tmp / "private.pem")),
        "public": str(save_public_key(private_key, tmp / "public.pem")),
        "fifo": str(fifo),
        "dir": str(tmp),
        "signature": sign(private_key, string_to_sign(CLIENT, TS)),
    }


def _argument_sets(files: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(name, argv): each command's good arguments with one replaced by a hostile value."""
    values = {**HOSTILE_VALUES, "fifo": files["fifo"], "directory": files["dir"]}
    commands = {
        "sign": {"--key": files["private"], "--client-key": CLIENT, "--timestamp": TS},
        "verify": {"--public-key": files["public"], "--client-key": CLIENT, "--timestamp": TS,
                   "--signature": files["signature"]},
        "doctor": {"--public-key": files["public"], "--client-key": CLIENT, "--timestamp": TS,
                   "--signature": files["signature"], "--body": '{"grantType": "client_credentials"}'},
        "fingerprint": {"": files["public"]},
        "keygen": {"--out": "out", "--bits": "2048", "--passphrase-env": "SNAPBOOK_TEST_PW"},
    }
    sets = []
    for command, good in commands.items():
        for slot in good:
            for label, value in values.items():
                if command == "keygen" and slot == "--out" and label not in {"120k", "120k-escapes", "nul",
                                                                            "fifo", "csi-c1"}:
                    continue  # the rest name a directory keygen may rightly create (tested elsewhere)
                args = dict(good, **{slot: value})
                argv = [command]
                for name, arg in args.items():
                    argv += [arg] if name == "" else [name, arg]
                sets.append((f"{command} {slot or 'FILE'}={label}", argv))
    return sets


def test_hostile_arguments_keep_the_cli_contract(files, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # keygen's relative --out lands here
    monkeypatch.setenv("SNAPBOOK_TEST_PW", "a passphrase for the hostile-argument test")
    sets = _argument_sets(files)
    assert len(sets) >= 200
    failures = []
    for name, argv in sets:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        out, err = capsys.readouterr()
        problems = []
        if code not in CONTRACT[argv[0]]:
            problems.append(f"exit {code}")
        err_lines = err.splitlines()
        if code == 2 and (len(err_lines) != 1 or not err_lines[0].startswith("snapbook: error: ")):
            problems.append(f"{len(err_lines)} stderr lines")
        if "unexpected" in err or "Traceback" in err:
            problems.append("untyped error")
        longest = max((len(line) for line in (out + err).splitlines()), default=0)
        if longest >= MAX_LINE:
            problems.append(f"a {longest}-character line")
        if CONTROL.search(out + err.replace("\n", "")):
            problems.append("a control character reached the terminal")
        if problems:
            failures.append(f"{name}: {', '.join(problems)}: {err[:160]!r}")
        for path in tmp_path.glob("*/private.pem"):  # a keygen that succeeded: start clean
            path.unlink()
            (path.parent / "public.pem").unlink()
    assert not failures, f"{len(failures)} of {len(sets)} argument sets broke the contract:\n" + "\n".join(failures)


def test_doctor_json_escapes_every_control_character(files, capsys):
    """--json is data, but it reaches a terminal too: C1 controls (CSI) are escaped like C0 ones."""
    for client_key in ("\x9b2J\x9b31m", "\x1b]0;pwned\x07", "\u0085next"):
        code = main(["doctor", "--public-key", files["public"], "--client-key", client_key, "--timestamp", TS,
                     "--signature", files["signature"], "--json"])
        out, err = capsys.readouterr()
        assert code in CONTRACT["doctor"], err
        assert not CONTROL.search(out.replace("\n", "")), repr(out[:300])
        assert "unexpected" not in err
