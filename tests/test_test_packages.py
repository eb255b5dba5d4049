"""scripts/test-packages, which `make test` runs first: what it finds missing and what it does about it.

dpkg-query, apt-get and id are stand-ins on a fake PATH: the stand-in dpkg-query answers as Debian's
does for the packages named in $INSTALLED; apt-get records how it was called.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
SCRIPT = BASE_DIR / "scripts" / "test-packages"
NEEDED = ["dovecot-imapd", "dovecot-pop3d", "dovecot-submissiond", "chromium", "libatomic1", "msmtp", "curl", "jq",
          "isync", "libsasl2-modules-kdexoauth2", "swaks", "libnet-ssleay-perl"]

DPKG_QUERY = r"""#!/bin/sh
# dpkg-query -W -f='${Package} ${db:Status-Status}\n' PACKAGE...
shift 2
status=0
for package in "$@"; do
    case " $INSTALLED " in
        *" $package "*) echo "$package installed" ;;
        *" $package:config "*) echo "$package config-files" ;;
        *) echo "dpkg-query: no packages found matching $package" >&2; status=1 ;;
    esac
done
exit $status
"""
APT_GET = """#!/bin/sh
echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> "$APT_LOG"
"""


@pytest.fixture
def machine(tmp_path):
    """Runs the script on a machine whose installed packages, and whether we are root, the test chooses."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, text in {"dpkg-query": DPKG_QUERY, "apt-get": APT_GET}.items():
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    apt_log = tmp_path / "apt.log"

    def run(*, installed, uid=0, python="venv"):
        """``python``: "venv" (makes venvs), "bare" (no ensurepip: Debian without python3-venv) or None."""
        (fake / "id").write_text(f"#!/bin/sh\necho {uid}\n")
        (fake / "python3").write_text(f"#!/bin/sh\n[ {python} = venv ]\n")
        for name in ("id", "python3"):
            (fake / name).chmod(0o755)
        env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "INSTALLED": " ".join(installed),
               "APT_LOG": str(apt_log), "PYTHON": str(fake / "python3") if python else ""}
        env.pop("DEBIAN_FRONTEND", None)
        result = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
        result.apt_calls = apt_log.read_text().splitlines() if apt_log.exists() else []
        return result

    return run


def test_nothing_happens_when_every_package_is_installed(machine):
    result = machine(installed=NEEDED)
    assert (result.returncode, result.stdout, result.stderr, result.apt_calls) == (0, "", "", [])


def test_as_root_the_missing_packages_are_installed_without_questions(machine):
    result = machine(installed=[p for p in NEEDED if p not in ("dovecot-pop3d", "chromium")])
    assert result.returncode == 0, result.stderr
    update, install = result.apt_calls
    assert update.startswith("DEBIAN_FRONTEND=noninteractive -qq") and update.endswith(" update")
    assert install.startswith("DEBIAN_FRONTEND=noninteractive -qq")
    assert install.endswith("install -y --no-install-recommends dovecot-pop3d chromium")
    assert "dovecot-pop3d chromium" in result.stdout


def test_a_package_removed_but_not_purged_counts_as_missing(machine):
    result = machine(installed=[p for p in NEEDED if p != "swaks"] + ["swaks:config"])
    assert result.apt_calls[-1].endswith("--no-install-recommends swaks")


def test_as_anyone_else_one_line_says_exactly_what_to_run_and_make_stops(machine):
    result = machine(installed=[p for p in NEEDED if p not in ("msmtp", "jq")], uid=1000)
    assert result.returncode != 0
    assert result.apt_calls == []
    assert len(result.stderr.splitlines()) == 1
    command = re.search(r"run: (.*)$", result.stderr.strip())[1]
    assert command == "sudo apt-get update && sudo apt-get install -y --no-install-recommends msmtp jq"



def test_a_python_that_cannot_make_a_venv_brings_python3_venv(machine):
    result = machine(installed=NEEDED, python="bare")
    assert result.apt_calls[-1].endswith("--no-install-recommends python3-venv")


def test_no_python_at_all_brings_python3_and_its_venv(machine):
    result = machine(installed=NEEDED, python=None)
    assert result.apt_calls[-1].endswith("--no-install-recommends python3 python3-venv")
