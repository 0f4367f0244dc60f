"""Offline stand-in for pip's get-pip.py bootstrap script, for ansible-test.

ansible-test bootstraps pip into each sanity virtualenv by downloading
get-pip.py from a host this machine cannot reach. This script does the same
job from what Python ships and the package index pip is configured with:
pip from the interpreter's bundled ensurepip wheel, then the requested
packages (``pip==X`` ...) with pip itself. ansible-test runs pip with a
reduced environment, so the system CA bundle (which a TLS-inspecting proxy may
need) is written into the virtualenv's own pip.conf. scripts/test copies this
file into ansible-test's cache under the name ansible-test looks for.
"""
import ensurepip
import os
import subprocess
import sys

CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'

ensurepip.bootstrap(upgrade=True)
os.environ.pop('PIP_CONFIG_FILE', None)  # ensurepip points it at /dev/null; pip must read its config
if os.path.exists(CA_BUNDLE):
    with open(os.path.join(sys.prefix, 'pip.conf'), 'w') as handle:
        handle.write('[global]\ncert = %s\n' % CA_BUNDLE)
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
