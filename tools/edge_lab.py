"""A real NGINX with the nginx role's edge (WAF, rate limit, TLS, internal paths) on loopback.

Shared by tests/integration/test_nginx_edge.py and benchmarks/waf_cost.py.

The role's own templates (nginx.conf.j2, site.conf.j2 and the ModSecurity
files) are rendered with Ansible's templar from the role defaults, as the
template lookup renders them (tests/unit/monitoring/roletemplates.py), into a
temporary tree; only the absolute paths of nginx.conf (pid, logs, modules,
conf.d) are pointed into that tree. NGINX loads Debian's ModSecurity module
and the CRS of modsecurity-crs, and proxies to the real service
(``python -m supersmartmatch_service``, no database, no cache). Certificates
come from a throw-away CA made with openssl, as the lab CA makes them.
"""
import http.client
import importlib.util
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "tools", ROOT / "service" / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from labwait import wait_for  # noqa: E402

ROLE = ROOT / "roles" / "nginx"
SERVICE_SRC = ROOT / "service" / "src"
MODSECURITY_MODULE = "/usr/lib/nginx/modules/ngx_http_modsecurity_module.so"
CRS_RULES = "/usr/share/modsecurity-crs/rules"
SERVER_NAME = "supersmartmatch.lab"
CONTEXT = {
    "ansible_managed": "Ansible managed (integration test)",
    "inventory_hostname": "lb1",
    "groups": {"app": ["app1"], "lb": ["lb1"]},
    "_nginx_names": [SERVER_NAME, "localhost", "lb1"],
}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_module(name, args):
    """Run a module of this collection the way Ansible does and return its JSON result (as
    tests/integration/conftest.py does; not imported from there, since ``conftest`` is another module
    when this file runs in one session with the unit tests)."""
    path = ROOT / "plugins" / "modules" / ("%s.py" % name)
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=False)}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / ".collections")] + sys.path))
    proc = subprocess.run([sys.executable, str(path)], input=json.dumps(payload), capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc=%d): %s %s" % (name, proc.returncode, proc.stdout,
                                                                           proc.stderr))


def _roletemplates():
    spec = importlib.util.spec_from_file_location(
        "roletemplates", ROOT / "tests" / "unit" / "monitoring" / "roletemplates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(template, **overrides):
    """roles/nginx/templates/<template>, rendered with the role defaults and vars and ``overrides``
    as the template lookup renders it: backslashes in the template's Jinja string literals are
    Jinja's escapes (escape_backslashes=False), which the ModSecurity files' quoting relies on."""
    from ansible.template import Templar, trust_as_template
    loader, variables = _roletemplates().role_variables(ROLE, CONTEXT, overrides)
    source = (ROLE / "templates" / template).read_text()
    return Templar(loader=loader, variables=variables).template(trust_as_template(source),
                                                                escape_backslashes=False)


def require_tools():
    missing = [what for what, ok in (
        ("nginx", shutil.which("nginx")),
        ("openssl", shutil.which("openssl")),
        ("libnginx-mod-http-modsecurity", os.path.exists(MODSECURITY_MODULE)),
        ("modsecurity-crs", os.path.isdir(CRS_RULES)),
    ) if not ok]
    if missing:
        raise RuntimeError("missing %s: install the Debian packages nginx-light libnginx-mod-http-modsecurity "
                           "modsecurity-crs (and testssl.sh)" % ", ".join(missing))


# --------------------------------------------------------------------------- certificates
def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(directory):
    """A lab-like CA (ECDSA P-384) and two server certificates it signs for the service name,
    localhost and 127.0.0.1: ECDSA P-256 (as the lab's) and RSA 2048 (so that the cipher checks
    would see RSA key exchange suites if the configuration allowed them). Returns the paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=SuperSmartMatch test CA", "-days", "2",
             "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n"
                                  "extendedKeyUsage=serverAuth\n" % SERVER_NAME)
    paths = {"ca": str(d / "ca.crt")}
    for kind, newkey in (("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]),
                         ("rsa", ["-newkey", "rsa:2048"])):
        sub = d / kind
        sub.mkdir()
        _openssl("req", *newkey, "-nodes", "-keyout", "%s/server.key" % kind, "-out", "%s/server.csr" % kind,
                 "-subj", "/CN=%s" % SERVER_NAME, cwd=d)
        _openssl("x509", "-req", "-in", "%s/server.csr" % kind, "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "%s/server.crt" % kind, cwd=d)
        paths[kind] = str(sub)
    return paths


# --------------------------------------------------------------------------- the service
class Service(object):
    """The real service on a free loopback port."""

    def __init__(self, directory):
        self.port = free_port()
        self.log = open(os.path.join(directory, "service.log"), "w")
        env = dict(os.environ, SSM_PORT=str(self.port), SSM_BIND="127.0.0.1", SSM_VERSION="1.0.0",
                   SSM_SLOT="blue", PYTHONPATH=str(SERVICE_SRC))
        for name in [n for n in env if n.startswith(("SSM_DATABASE", "SSM_CACHE", "SSM_FAULT"))]:
            del env[name]
        self.proc = subprocess.Popen([sys.executable, "-m", "supersmartmatch_service"], cwd=str(SERVICE_SRC),
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._healthy, 20, "the service to answer /health on %d" % self.port, delay=0.05,
                 ignore=OSError)

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError("the service exited (%s)" % self.proc.returncode)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# --------------------------------------------------------------------------- NGINX
def _replace(text, old, new):
    assert old in text, "the role's nginx.conf.j2 no longer has %r" % old
    return text.replace(old, new)


class EdgeNginx(object):
    """NGINX running the role's rendered configuration in ``directory``, proxying to ``backend``
    (a host:port) as the service's stable upstream. ``overrides`` are role variables."""

    def __init__(self, directory, backend, tls_dir, **overrides):
        self.dir = Path(directory)
        self.https_port = free_port()
        self.http_port = free_port()
        self.status_port = free_port()
        self.audit_log = self.dir / "log" / "modsec_audit.log"
        self.error_log = self.dir / "error.log"
        self.access_log = self.dir / "access.log"
        self.conf = self.dir / "nginx.conf"
        for sub in ("tmp", "log", "split", "conf.d", "modsecurity"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.variables = dict(
            nginx_https_port=self.https_port, nginx_http_port=self.http_port, nginx_status_port=self.status_port,
            nginx_tls_dir=tls_dir, nginx_split_dir=str(self.dir / "split"),
            nginx_waf_dir=str(self.dir / "modsecurity"), nginx_waf_audit_log=str(self.audit_log))
        self.variables.update(overrides)
        service = self.variables.get("nginx_service", "supersmartmatch")
        main = render("nginx.conf.j2", **self.variables)
        main = _replace(main, "user www-data;\n", "user root;\n" if os.geteuid() == 0 else "")
        main = _replace(main, "pid /run/nginx.pid;", "pid %s/nginx.pid;" % self.dir)
        main = _replace(main, "error_log /var/log/nginx/error.log warn;", "error_log %s warn;" % self.error_log)
        main = _replace(main, "include /etc/nginx/modules-enabled/*.conf;", "load_module %s;" % MODSECURITY_MODULE)
        main = _replace(main, "access_log /var/log/nginx/access.log ssm_json;",
                        "access_log %s ssm_json;" % self.access_log)
        main = _replace(main, "include /etc/nginx/conf.d/*.conf;", "include %s/conf.d/*.conf;" % self.dir)
        main = _replace(main, "http {\n", "http {\n" + "".join(
            "    %s_temp_path %s/tmp/%s;\n" % (kind, self.dir, kind)
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")))
        self.conf.write_text(main)
        (self.dir / "split" / ("%s.conf" % service)).write_text(
            "upstream %s_stable {\n    server %s;\n    keepalive 16;\n}\n"
            "map $cookie_ssm_uid $%s_backend {\n    default %s_stable;\n}\n" % (service, backend, service, service))
        self.site = render("site.conf.j2", **self.variables)
        (self.dir / "conf.d" / ("%s.conf" % service)).write_text(self.site)
        self.modsecurity = {}
        for name in ("main.conf", "crs-setup.conf", "exclusions.conf"):
            self.modsecurity[name] = render("modsecurity/%s.j2" % name, **self.variables)
            (self.dir / "modsecurity" / name).write_text(self.modsecurity[name])

    def check(self):
        """``nginx -t`` of the rendered configuration: (return code, its messages)."""
        test = subprocess.run(["nginx", "-t", "-q", "-c", str(self.conf)], capture_output=True, text=True,
                              timeout=60, check=False)
        return test.returncode, test.stderr

    def start(self):
        rc, messages = self.check()
        assert rc == 0, "nginx -t refused the rendered configuration:\n%s" % messages
        subprocess.run(["nginx", "-c", str(self.conf)], check=True, capture_output=True, timeout=60)
        wait_for(self.listening, 15, "nginx to listen on %d" % self.https_port, delay=0.05, ignore=OSError)
        return self

    def listening(self):
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=0.2):
            return True

    def stop(self):
        if (self.dir / "nginx.pid").exists():
            subprocess.run(["nginx", "-c", str(self.conf), "-s", "stop"], check=False, capture_output=True)

    def url(self):
        return "https://127.0.0.1:%d" % self.https_port

    def audit_entries(self):
        """The audit log's entries (serial format), each a dict of part letter -> text."""
        if not self.audit_log.exists():
            return []
        entries, current, part = [], None, None
        for line in self.audit_log.read_text(errors="replace").splitlines():
            if line.startswith("---") and line.endswith("--") and len(line.split("---")) == 3:
                marker = line.split("---")[2].strip("-")
                if marker == "A":
                    current = {}
                    entries.append(current)
                part = marker
                if current is not None:
                    current.setdefault(part, "")
                continue
            if current is not None and part:
                current[part] += line + "\n"
        return entries


class Client(object):
    """HTTPS to an EdgeNginx (the CA verified, SNI and Host the service name), one connection per call."""

    def __init__(self, cafile):
        self.context = ssl.create_default_context(cafile=cafile)

    def call(self, edge, method, path, body=None, headers=None):
        """(status, headers dict with lower-case names, decoded body: JSON when it parses)."""
        conn = http.client.HTTPSConnection("127.0.0.1", edge.https_port, timeout=10, context=self.context)
        conn.sock = self.context.wrap_socket(socket.create_connection(("127.0.0.1", edge.https_port), timeout=10),
                                             server_hostname=SERVER_NAME)
        try:
            data = None if body is None else json.dumps(body).encode()
            sent = {"Host": SERVER_NAME}
            if data is not None:
                sent["Content-Type"] = "application/json"
            sent.update(headers or {})
            conn.request(method, path, body=data, headers=sent)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw.decode(errors="replace")
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), payload
