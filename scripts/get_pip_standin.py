"""Stand-in for the get-pip bootstrap script that ansible-test downloads before each sanity test.

ansible-test creates an empty virtual environment per sanity test and runs its cached
``get_pip_<version>.py`` inside it with pip-install arguments (``pip==<version>`` and options).
Machines without access to that download host use this file instead: it takes pip from the
interpreter's own ``ensurepip``, then installs what ansible-test asked for through the package
index configured for pip, trusting the system CA bundle.

This marker line lets the setup recognise and refresh its own copy: m365ops-get-pip-standin
"""

import os
import ssl
import subprocess
import sys

# get-pip.py accepts these, pip install does not (and setuptools/wheel are not installed anyway).
GET_PIP_ONLY_OPTIONS = frozenset(("--no-setuptools", "--no-wheel"))


def system_ca_bundle():
    """Return the CA bundle pip should trust, or None to leave pip's own default alone."""
    candidates = (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        ssl.get_default_verify_paths().cafile,
        ssl.get_default_verify_paths().openssl_cafile,
        "/etc/ssl/certs/ca-certificates.crt",
    )
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    command = [sys.executable, "-m", "pip", "install"]
    ca_bundle = system_ca_bundle()
    if ca_bundle:
        command += ["--cert", ca_bundle]
    command += [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call(command)


if __name__ == "__main__":
    main()
