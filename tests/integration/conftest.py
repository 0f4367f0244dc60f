"""Fixtures that run the collection's modules against a real NGINX on loopback."""
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, '.collections')
TOOLS = os.path.join(ROOT, 'tools')
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

from labwait import wait_for  # noqa: E402


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_module(name, args, check=False, diff=False):
    """Run a module of this collection the way Ansible does and return its JSON result."""
    path = os.path.join(ROOT, 'plugins', 'modules', '%s.py' % name)
    payload = {'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check, _ansible_diff=diff)}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([COLLECTIONS] + sys.path))
    proc = subprocess.run([sys.executable, path], input=json.dumps(payload), capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('module %s printed no JSON (rc=%d): %s %s' % (name, proc.returncode, proc.stdout, proc.stderr))


class Backend(http.server.ThreadingHTTPServer):
    daemon_threads = True


def start_backend(label):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        disable_nagle_algorithm = True

        def do_GET(self):
            body = label.encode()
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = Backend(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


NGINX_CONF = """
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/split/*.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://$svc_backend;
        }}
    }}
}}
"""


class Lab(object):
    def __init__(self, directory):
        self.dir = directory
        self.port = free_port()
        self.conf = os.path.join(directory, 'nginx.conf')
        os.makedirs(os.path.join(directory, 'tmp'))
        with open(self.conf, 'w') as handle:
            handle.write(NGINX_CONF.format(d=directory, port=self.port))
        self.stable = start_backend('stable')
        self.candidate = start_backend('candidate')
        self.stable_addr = '127.0.0.1:%d' % self.stable.server_address[1]
        self.candidate_addr = '127.0.0.1:%d' % self.candidate.server_address[1]
        self.config_dir = os.path.join(directory, 'split')
        self.state_dir = os.path.join(directory, 'state')
        self.config_path = os.path.join(self.config_dir, 'svc.conf')
        self.state_path = os.path.join(self.state_dir, 'svc.json')

    def args(self, **extra):
        args = dict(service='svc', nginx_conf=self.conf, config_dir=self.config_dir, state_dir=self.state_dir,
                    stable=[self.stable_addr], candidate=[self.candidate_addr], stable_version='1.0.0',
                    candidate_version='2.0.0', stable_color='blue', candidate_color='green', salt='2.0.0',
                    run_by='pytest')
        args.update(extra)
        return args

    def start(self):
        subprocess.run(['nginx', '-c', self.conf], check=True)
        wait_for(self.listening, 10, 'nginx to listen on %d' % self.port, delay=0.05, ignore=OSError)

    def listening(self):
        with socket.create_connection(('127.0.0.1', self.port), timeout=0.2):
            return True

    def stop(self):
        if os.path.exists(os.path.join(self.dir, 'nginx.pid')):
            subprocess.run(['nginx', '-c', self.conf, '-s', 'quit'], check=False)
        self.stable.shutdown()
        self.candidate.shutdown()

    def sides(self, users, threads=8):
        """Ask NGINX once per user; return {user: 'stable'|'candidate'}."""
        def batch(chunk):
            conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)
            out = {}
            for user in chunk:
                conn.request('GET', '/', headers={'Cookie': 'ssm_uid=%s' % user})
                response = conn.getresponse()
                out[user] = response.read().decode()
                assert response.status == 200, out[user]
            conn.close()
            return out
        users = list(users)
        chunks = [users[i::threads] for i in range(threads)]
        result = {}
        with ThreadPoolExecutor(threads) as pool:
            for part in pool.map(batch, chunks):
                result.update(part)
        return result


@pytest.fixture
def nginx_lab(tmp_path):
    if shutil.which('nginx') is None:
        pytest.fail('nginx is not installed: .ci/run installs it (apt-get install nginx-light)')
    lab = Lab(str(tmp_path))
    yield lab
    lab.stop()
