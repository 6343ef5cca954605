"""The shells run-command runs a script in on a node, as far as questions about sshd need them.

Linux (`RunShellScript`, bash): commands split on `;` and newlines outside quotes, pipelines on
`|`, `sudo` dropped, `2>/dev/null` / `>/dev/null` / `2>&1` honoured. Understood: `echo`,
`systemctl is-active|is-enabled|status UNIT` (`.service` optional, `--quiet`), `sshd -T` / `-t`
(any other sshd option: its usage text), `grep [-i] [-v] [-E] [-q] PATTERN` on a pipe, `true`.
Anything else: bash's "command not found". Units other than ssh/sshd are unknown to it.

What the units answer (AgentBaker `disableSSH` stops and disables `ssh` and `sshd`, whichever exist):
- Ubuntu runs `ssh.service`; its `[Install]` section says `Alias=sshd.service`, and systemd makes
  that alias link only while the unit is enabled. So `sshd` answers like `ssh` (`is-enabled`:
  `alias`) while `ssh` is enabled, and is a missing unit once it is disabled.
- Azure Linux ships `sshd.service` only: `ssh` is a missing unit.
- A missing unit: `is-active` prints `inactive`; `is-enabled` prints nothing on stdout and
  `Failed to get unit file state for X.service: No such file or directory` on stderr;
  `status` prints `Unit X.service could not be found.` on stderr.
- `sshd -T` prints the effective configuration (an excerpt, in OpenSSH's dump order) with the
  node's `pubkeyauthentication`. On Ubuntu its privilege separation directory `/run/sshd` is the
  unit's `RuntimeDirectory`, gone while `ssh` is stopped: then `sshd -T` fails with `Missing
  privilege separation directory: /run/sshd`. Azure Linux keeps it in /var/lib/sshd.

Windows (`RunPowerShellScript`): statements split on `;` and newlines, pipelines on `|`.
Understood: `Write-Output`/`echo`/`Write-Host`, `Get-Service [-Name] NAME [-ErrorAction
SilentlyContinue]`, `Format-List PROPS`. The `sshd` service (OpenSSH.Server capability) exists
only when SSH is on the node. Anything else: PowerShell's CommandNotFoundException on stderr.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from shared.keys import fingerprint
from shared.local.arm_emulator.state import AZURE_LINUX, UBUNTU, Node

_RUNNING = frozenset({"active", "activating", "reloading", "refreshing"})
# is-enabled states under which `systemctl enable` has made the unit's alias links.
_ALIASED = frozenset({"enabled", "enabled-runtime"})
_HERE = Path(__file__).parent
_SSHD_USAGE = (
    "usage: sshd [-46DdeiqTt] [-C connection_spec] [-c host_cert_file]\n"
    "            [-E log_file] [-f config_file] [-g login_grace_time]\n"
    "            [-h host_key_file] [-o option] [-p port] [-u len]\n"
)
_PS_SCRIPT = r"C:\Packages\Plugins\Microsoft.CPlat.Core.RunCommandWindows\1.1.18\Downloads\script{run}.ps1"


class ShellSyntaxError(ValueError):
    def __init__(self, quote: str):
        super().__init__(f"unterminated {quote}")
        self.quote = quote


def split_unquoted(text: str, separators: str) -> list[tuple[str, int]]:
    """`text` cut at `separators` that are outside quotes: (piece, offset of the piece)."""
    pieces, start, quote, index = [], 0, "", 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                index += 1
        elif char in "'\"":
            quote = char
        elif char == "\\":
            index += 1
        elif char in separators:
            pieces.append((text[start:index], start))
            start = index + 1
        index += 1
    if quote:
        raise ShellSyntaxError(quote)
    pieces.append((text[start:], start))
    return pieces


# --- bash ---


def run_bash(script: list[str], node: Node, os: str) -> tuple[str, str]:
    """(stdout, stderr) of a RunShellScript script on a Linux node."""
    path = f"/var/lib/waagent/run-command/download/{node.runs}/script.sh"
    lines = "\n".join(script).split("\n")
    stdout, stderr = [], []
    for number, line in enumerate(lines, start=1):
        try:
            commands = split_unquoted(line, ";")
            pipelines = [split_unquoted(command, "|") for command, _ in commands]
        except ShellSyntaxError as error:  # bash reads on to the end of the file for the quote
            stderr.append(f"{path}: line {number}: unexpected EOF while looking for matching `{error.quote}'\n")
            stderr.append(f"{path}: line {len(lines) + 1}: syntax error: unexpected end of file\n")
            break
        for stages in pipelines:
            if stages[0][0].strip().startswith("#") or not "".join(s for s, _ in stages).strip():
                continue
            words = [shlex.split(stage, comments=True) for stage, _ in stages]
            out, err = _pipeline(words, node, os, f"{path}: line {number}")
            stdout.append(out)
            stderr.append(err)
    return "".join(stdout), "".join(stderr)


def _pipeline(stages: list[list[str]], node: Node, os: str, where: str) -> tuple[str, str]:
    data, errors = "", []
    for words in stages:
        words, drop_out, drop_err, merge = _redirections(words)
        while words and words[0] == "sudo":
            words = words[1:]
        out, err = _bash_command(words, data, node, os, where)
        if merge:
            out, err = out + err, ""
        errors.append("" if drop_err else err)
        data = "" if drop_out else out
    return data, "".join(errors)


def _redirections(words: list[str]) -> tuple[list[str], bool, bool, bool]:
    kept, drop_out, drop_err, merge = [], False, False, False
    for word in words:
        if word in ("2>/dev/null",):
            drop_err = True
        elif word in (">/dev/null", "1>/dev/null"):
            drop_out = True
        elif word in ("&>/dev/null", ">&/dev/null"):
            drop_out = drop_err = True
        elif word == "2>&1":
            merge = True
        else:
            kept.append(word)
    return kept, drop_out, drop_err, merge


def _bash_command(words: list[str], stdin: str, node: Node, os: str, where: str) -> tuple[str, str]:
    if not words:
        return "", ""
    name, args = words[0].rsplit("/", 1)[-1], words[1:]
    if name == "echo":
        newline = "\n"
        if args and args[0] == "-n":
            args, newline = args[1:], ""
        return " ".join(args) + newline, ""
    if name in ("true", ":"):
        return "", ""
    if name == "systemctl":
        return systemctl(args, node, os)
    if name == "sshd":
        return sshd(args, node, os)
    if name == "grep":
        return grep(args, stdin)
    if name == "cat":
        return cat(args, node)
    if name == "ssh-keygen":
        return ssh_keygen(args, stdin)
    return "", f"{where}: {words[0]}: command not found\n"


AUTHORIZED_KEYS = re.compile(r"^/home/[^/]+/\.ssh/authorized_keys$")


def cat(args: list[str], node: Node) -> tuple[str, str]:
    """Only the admin user's `authorized_keys` exists here (any user name, or a `*` glob):
    it holds the cluster key the node booted with."""
    out, err = [], []
    for path in args:
        if AUTHORIZED_KEYS.match(path) and node.authorized_key:
            out.append(node.authorized_key + "\n")
        else:
            err.append(f"cat: {path}: No such file or directory\n")
    return "".join(out), "".join(err)


def ssh_keygen(args: list[str], stdin: str) -> tuple[str, str]:
    """`ssh-keygen -l -f -` (or `-lf -`): a line per public key read from stdin, as OpenSSH
    prints it: `<bits> SHA256:<base64> <comment or "no comment"> (RSA)`."""
    if not ("-lf" in args or "-l" in args) or "-" not in args:
        return "", "usage: ssh-keygen -l [-f input_keyfile]\n"
    lines = []
    for line in stdin.splitlines():
        words = line.split()
        try:
            key = load_ssh_public_key(" ".join(words[:2]).encode())
        except (ValueError, UnsupportedAlgorithm, IndexError):
            continue
        comment = " ".join(words[2:]) or "no comment"
        kind = "RSA" if words[0] == "ssh-rsa" else words[0].upper()
        lines.append(f"{key.key_size} {fingerprint(line)} {comment} ({kind})\n")
    if not lines:
        return "", "(stdin) is not a public key file.\n"
    return "".join(lines), ""


def systemctl(args: list[str], node: Node, os: str) -> tuple[str, str]:
    quiet = any(a in ("-q", "--quiet") for a in args)
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return "", "Too few arguments.\n"
    verb, units = words[0], words[1:]
    if verb not in ("is-active", "is-enabled", "status"):
        return "", f"Unknown command verb {verb}.\n"
    if not units:
        return "", "Too few arguments.\n"
    stdout, stderr = [], []
    for unit in units:
        full = unit if "." in unit else f"{unit}.service"
        state = unit_state(full, node, os)
        if verb == "is-active":
            stdout.append(f"{state[0] if state else 'inactive'}\n")
        elif state is None:
            missing = "Failed to get unit file state for {}: No such file or directory\n"
            stderr.append((missing if verb == "is-enabled" else "Unit {} could not be found.\n").format(full))
        else:
            stdout.append(f"{state[1]}\n" if verb == "is-enabled" else status_text(node, os))
    return ("" if quiet and verb != "status" else "".join(stdout)), "".join(stderr)


def unit_state(full_name: str, node: Node, os: str) -> tuple[str, str] | None:
    """(is-active, is-enabled) of a unit as named, or None when no such unit exists."""
    main = "ssh.service" if os == UBUNTU else "sshd.service"
    if full_name == main:
        return node.active, node.enabled
    if os == UBUNTU and full_name == "sshd.service" and node.enabled in _ALIASED:
        return node.active, "alias"
    return None


def status_text(node: Node, os: str) -> str:
    """`systemctl status` of the sshd unit as the AKS docs print it (sshd_status_*.txt, byte-identical
    copies): its Loaded line per enablement, its Active line per state."""
    enabled, disabled = _status_lines("enabled"), _status_lines("disabled")
    loaded = (enabled if node.enabled in _ALIASED else disabled)[1]
    active = (enabled if node.active == "active" else disabled)[2]
    text = enabled[0] + loaded + active
    if os == AZURE_LINUX:  # the same unit as Azure Linux names and describes it
        text = text.replace("ssh.service - OpenBSD Secure Shell server", "sshd.service - OpenSSH Daemon")
        text = text.replace("/lib/systemd/system/ssh.service", "/lib/systemd/system/sshd.service")
    return text


@cache
def _status_lines(which: str) -> list[str]:
    return (_HERE / f"sshd_status_{which}.txt").read_text(encoding="utf-8").splitlines(keepends=True)


def sshd(args: list[str], node: Node, os: str) -> tuple[str, str]:
    if args not in (["-T"], ["-t"]):
        return "", _SSHD_USAGE
    if os == UBUNTU and node.active not in _RUNNING:
        return "", "Missing privilege separation directory: /run/sshd\n"
    return (sshd_config(node) if args == ["-T"] else ""), ""


def sshd_config(node: Node) -> str:
    """An excerpt of `sshd -T`, keys lower-case, in the order OpenSSH's `dump_config` prints them."""
    return (
        "port 22\n"
        "addressfamily any\n"
        "listenaddress [::]:22\n"
        "listenaddress 0.0.0.0:22\n"
        "usepam yes\n"
        "logingracetime 120\n"
        "maxauthtries 6\n"
        "maxsessions 10\n"
        "permitrootlogin without-password\n"
        "hostbasedauthentication no\n"
        f"pubkeyauthentication {node.pubkey}\n"
        "passwordauthentication no\n"
        "kbdinteractiveauthentication no\n"
        "printmotd no\n"
    )


def grep(args: list[str], stdin: str) -> tuple[str, str]:
    flags = {a for a in args if a.startswith("-") and len(a) > 1}
    words = [a for a in args if a not in flags]
    if not words:
        return "", "Usage: grep [OPTION]... PATTERNS [FILE]...\nTry 'grep --help' for more information.\n"
    pattern, files = words[0], words[1:]
    if files:
        return "", "".join(f"grep: {f}: No such file or directory\n" for f in files)
    letters = "".join(f.lstrip("-") for f in flags)
    try:
        regex = re.compile(pattern, re.IGNORECASE if "i" in letters else 0)
    except re.error:
        return "", "grep: Unmatched ( or \\(\n"
    matched = [line for line in stdin.splitlines() if bool(regex.search(line)) != ("v" in letters)]
    return ("" if "q" in letters else "".join(f"{line}\n" for line in matched)), ""


# --- PowerShell ---


def run_powershell(script: list[str], node: Node) -> tuple[str, str]:
    """(stdout, stderr) of a RunPowerShellScript script on a Windows node."""
    path = _PS_SCRIPT.format(run=node.runs)
    stdout, stderr = [], []
    for number, line in enumerate("\n".join(script).split("\n"), start=1):
        try:
            statements = split_unquoted(line, ";")
        except ShellSyntaxError as error:
            where = _Where(path, number, line, 0, len(line))
            stderr.append(where.error("", f"The string is missing the terminator: {error.quote}.", _PARSER_ERROR))
            continue
        for statement, offset in statements:
            if not statement.strip() or statement.strip().startswith("#"):
                continue
            out, err = _ps_pipeline(statement, offset, line, number, node, path)
            stdout.append(out)
            stderr.append(err)
    return "".join(stdout), "".join(stderr)


def windows_service(node: Node) -> dict | None:
    """The `sshd` service as Get-Service shows it, or None when the OpenSSH.Server capability is absent."""
    if node.mode == "disabled" and (node.active, node.enabled) == ("inactive", "disabled"):
        return None
    start = {"enabled": "Automatic", "disabled": "Disabled"}.get(node.enabled, "Manual")
    status = "Running" if node.active == "active" else "Stopped"
    return {"Name": "sshd", "DisplayName": "OpenSSH SSH Server", "Status": status, "StartType": start}


def _ps_pipeline(statement: str, offset: int, line: str, number: int, node: Node, path: str) -> tuple[str, str]:
    items: list = []
    for stage, start in split_unquoted(statement, "|"):
        words = shlex.split(stage)
        column = offset + start + len(stage) - len(stage.lstrip())
        name = words[0].lower() if words else ""
        if name in ("write-output", "echo", "write"):
            items = list(words[1:])
        elif name == "write-host":
            return " ".join(words[1:]) + "\n", ""
        elif name == "get-service":
            items, missing = _get_service(words[1:], node)
            if missing:
                where = _Where(path, number, line, column, len(stage.strip()))
                return "", where.error("Get-Service", _NO_SERVICE.format(missing), _no_service_ids(missing))
        elif name == "format-list":
            props = [p for w in words[1:] if not w.startswith("-") for p in w.split(",") if p]
            items = [_format_list(item, props) if isinstance(item, dict) else item for item in items]
        else:
            word = words[0] if words else stage.strip()
            where = _Where(path, number, line, column, len(word))
            return "", where.error(word, _NOT_RECOGNIZED.format(word), _not_recognized_ids(word))
    return "".join(_ps_text(item) for item in items), ""


def _get_service(args: list[str], node: Node) -> tuple[list, str]:
    """The services named, and the first name not found unless errors are silenced ("" if none)."""
    names, silent, index = [], False, 0
    while index < len(args):
        arg = args[index]
        if arg.lower() in ("-erroraction", "-ea") and index + 1 < len(args):
            silent = args[index + 1].lower() in ("silentlycontinue", "ignore")
            index += 1
        elif arg.lower() == "-name" and index + 1 < len(args):
            names.extend(args[index + 1].split(","))
            index += 1
        elif not arg.startswith("-"):
            names.extend(arg.split(","))
        index += 1
    services = {name: windows_service(node) if name.lower() == "sshd" else None for name in names}
    missing = [name for name, service in services.items() if service is None]
    return [s for s in services.values() if s], (missing[0] if missing and not silent else "")


def _format_list(service: dict, props: list[str]) -> str:
    keys = [next((k for k in service if k.lower() == p.lower()), None) for p in props] if props else list(service)
    keys = [k for k in keys if k]
    width = max((len(k) for k in keys), default=0)
    return "\n" + "".join(f"{k.ljust(width)} : {service[k]}\n" for k in keys) + "\n\n"


def _ps_text(item) -> str:
    if isinstance(item, dict):  # Get-Service's default table view
        return (
            "\nStatus   Name               DisplayName\n------   ----               -----------\n"
            f"{item['Status']:<8} {item['Name']:<18} {item['DisplayName']}\n\n\n"
        )
    return f"{item}\n" if not str(item).endswith("\n") else str(item)


_NOT_RECOGNIZED = (
    "The term '{}' is not recognized as the name of a cmdlet, function, script file, or operable program. "
    "Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
)
_NO_SERVICE = "Cannot find any service with service name '{}'."
_PARSER_ERROR = ("ParserError: (:) [], ParentContainsErrorRecordException", "TerminatorExpectedAtEndOfString")


def _not_recognized_ids(word: str) -> tuple[str, str]:
    return f"ObjectNotFound: ({word}:String) [], CommandNotFoundException", "CommandNotFoundException"


def _no_service_ids(name: str) -> tuple[str, str]:
    return (
        f"ObjectNotFound: ({name}:String) [Get-Service], ServiceCommandException",
        "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
    )


@dataclass(frozen=True)
class _Where:
    """Where in the script a statement failed: PowerShell's error records point at it."""

    path: str
    number: int
    line: str
    column: int  # 0-based
    length: int

    def error(self, subject: str, message: str, ids: tuple[str, str]) -> str:
        """A PowerShell 5.1 error record as the console host writes it to stderr."""
        return (
            f"{subject + ' : ' if subject else ''}{message}\n"
            f"At {self.path}:{self.number} char:{self.column + 1}\n"
            f"+ {self.line}\n"
            f"+ {' ' * self.column}{'~' * max(self.length, 1)}\n"
            f"    + CategoryInfo          : {ids[0]}\n"
            f"    + FullyQualifiedErrorId : {ids[1]}\n"
            " \n"
        )
