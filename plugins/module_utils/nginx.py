# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe changes to a live NGINX configuration.

The rule this file enforces: no file reaches NGINX's configuration paths
before the whole configuration, with that file in it, has passed ``nginx -t``.
The new text is validated in a private copy of the tree (``ValidationTree``),
then swapped in with an atomic rename, then NGINX is reloaded gracefully and
the reload is confirmed by the appearance of new worker processes. If the
reload does not take, the previous files are put back before returning.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import glob
import os
import re
import tempfile
import time


class NginxError(Exception):
    """A change could not be made; ``changed`` says whether files moved.

    ``details`` are extra result keys a module may add to ``fail_json``.
    """

    def __init__(self, message, changed=False, **details):
        super(NginxError, self).__init__(message)
        self.changed = changed
        self.details = details


def write_atomic(path, text, mode=0o644):
    """Write ``text`` to ``path`` atomically: temp file, fsync, rename."""
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def backup_path(backup_dir, path):
    """Where the previous version of ``path`` is kept: the full path, flattened."""
    return os.path.join(backup_dir, os.path.abspath(path).strip('/').replace('/', '_') + '.prev')


def read_text(path):
    """Return the text of ``path``, or None if it does not exist."""
    try:
        with open(path, 'r') as handle:
            return handle.read()
    except IOError as exc:
        if getattr(exc, 'errno', None) == 2:
            return None
        raise


# --------------------------------------------------------------------------
# Validation tree
# --------------------------------------------------------------------------

INCLUDE_RE = re.compile(r'(?<![A-Za-z0-9_$])include\s+("[^"]*"|\'[^\']*\'|[^;\s]+)\s*;')


def _strip_comment(line):
    """Split ``line`` into code and ``#`` comment (quotes respected)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in ('"', "'"):
            quote = char
        elif char == '#':
            return line[:index], line[index:]
    return line, ''


def _has_glob(pattern):
    return any(c in pattern for c in '*?[')


class ValidationTree(object):
    """A copy of an NGINX configuration tree with some files replaced.

    The copy's main file sits beside the real one (so relative paths resolve
    the same way) and every ``include`` is rewritten to point at copies in a
    private temporary directory. ``replacements`` maps absolute paths to new
    text (or None for a file about to be removed); a new file is added where an
    include glob would match it once it exists.
    """

    MAX_DEPTH = 16

    def __init__(self, main_conf, replacements):
        self.main_conf = os.path.abspath(main_conf)
        self.conf_prefix = os.path.dirname(self.main_conf)
        self.replacements = dict((os.path.abspath(k), v) for k, v in replacements.items())
        self.workdir = None
        self.main_copy = None
        self.copies = {}
        self._count = 0

    def _expand(self, pattern):
        absolute = pattern if os.path.isabs(pattern) else os.path.join(self.conf_prefix, pattern)
        if _has_glob(absolute):
            matches = set(p for p in glob.glob(absolute) if os.path.isfile(p))
            matches.update(p for p in self.replacements if fnmatch.fnmatchcase(p, absolute))
            matches.difference_update(p for p, text in self.replacements.items() if text is None)
            return sorted(matches)
        return [absolute]

    def _text_of(self, path):
        if path in self.replacements:
            return self.replacements[path] or ''
        with open(path, 'r') as handle:
            return handle.read()

    def _rewrite(self, text, depth):
        if depth > self.MAX_DEPTH:
            raise NginxError('NGINX includes nest deeper than %d levels' % self.MAX_DEPTH)
        out = []
        for line in text.splitlines(True):
            code, comment = _strip_comment(line)
            code = INCLUDE_RE.sub(lambda m: self._include(m.group(1), depth), code)
            out.append(code + comment)
        return ''.join(out)

    def _include(self, raw, depth):
        pattern = raw[1:-1] if raw[:1] in ('"', "'") else raw
        targets = self._expand(pattern)
        if not _has_glob(pattern) and targets[0] not in self.replacements and not os.path.exists(targets[0]):
            return 'include %s;' % raw  # nginx reports the missing file itself
        return ' '.join('include %s;' % self._copy(target, depth) for target in targets)

    def _copy(self, path, depth):
        self._count += 1
        copy = os.path.join(self.workdir, '%03d-%s' % (self._count, os.path.basename(path)))
        text = self._rewrite(self._text_of(path), depth + 1)
        with open(copy, 'w') as handle:
            handle.write(text)
        self.copies[copy] = path
        return copy

    def build(self):
        """Write the copy and return the path of its main file."""
        self.workdir = tempfile.mkdtemp(prefix='.nginx-validate-')
        try:
            text = self._rewrite(self._text_of(self.main_conf), 0)
            fd, self.main_copy = tempfile.mkstemp(
                prefix='.nginx-validate-', suffix='.conf', dir=self.conf_prefix)
            with os.fdopen(fd, 'w') as handle:
                handle.write(text)
        except BaseException:
            self.cleanup()
            raise
        self.copies[self.main_copy] = self.main_conf
        return self.main_copy

    def explain(self, message):
        """Map temporary paths in an NGINX message back to the real ones."""
        for copy, original in sorted(self.copies.items(), key=lambda kv: -len(kv[0])):
            label = original + (' (new version)' if original in self.replacements else '')
            message = message.replace(copy, label)
        return message

    def cleanup(self):
        for path in list(self.copies):
            if os.path.exists(path):
                os.unlink(path)
        if self.workdir and os.path.isdir(self.workdir):
            for name in os.listdir(self.workdir):
                os.unlink(os.path.join(self.workdir, name))
            os.rmdir(self.workdir)


# --------------------------------------------------------------------------
# Reload and its confirmation
# --------------------------------------------------------------------------

PID_RE = re.compile(r'^\s*pid\s+([^;\s]+)\s*;', re.M)


def pid_file_of(main_conf_text, default='/run/nginx.pid'):
    match = PID_RE.search(main_conf_text or '')
    return match.group(1).strip('"\'') if match else default


def master_pid(pid_file):
    """PID of the running NGINX master, or None."""
    text = read_text(pid_file)
    if not text or not text.strip().isdigit():
        return None
    pid = int(text.strip())
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def worker_pids(master, proc='/proc'):
    """PIDs of the active (not shutting down) workers of NGINX ``master``."""
    pids = set()
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, 'stat'), 'r') as handle:
                stat = handle.read()
            ppid = int(stat.rsplit(')', 1)[1].split()[1])
            if ppid != master:
                continue
            with open(os.path.join(proc, entry, 'cmdline'), 'rb') as handle:
                cmdline = handle.read().replace(b'\0', b' ').decode('utf-8', 'replace')
        except (IOError, OSError, IndexError, ValueError):
            continue
        if 'worker process' in cmdline and 'shutting down' not in cmdline:
            pids.add(int(entry))
    return pids


class Nginx(object):
    """Validate, swap in and reload NGINX configuration files.

    ``run`` is a callable taking an argument list and returning
    ``(rc, stdout, stderr)`` (``AnsibleModule.run_command`` fits).
    """

    def __init__(self, run, binary='nginx', main_conf='/etc/nginx/nginx.conf',
                 reload_command=None, reload_timeout=10.0, sleep=time.sleep, clock=time.time):
        self.run = run
        self.binary = binary
        self.main_conf = main_conf
        self.reload_command = reload_command or [binary, '-c', main_conf, '-s', 'reload']
        self.reload_timeout = reload_timeout
        self.sleep = sleep
        self.clock = clock

    def _pid_file(self):
        path = pid_file_of(read_text(self.main_conf))
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(self.main_conf), path)
        return path

    def running_master(self):
        return master_pid(self._pid_file())

    def validate(self, replacements):
        """``nginx -t`` on the configuration with ``replacements`` applied.

        Nothing in the live tree changes. Raises NginxError with NGINX's own
        message, its temporary paths mapped back to the real file names.
        """
        if not os.path.isfile(self.main_conf):
            raise NginxError('NGINX main configuration %s does not exist' % self.main_conf)
        tree = ValidationTree(self.main_conf, replacements)
        try:
            copy = tree.build()
            rc, out, err = self.run([self.binary, '-t', '-c', copy])
            if rc != 0:
                text = '\n'.join(x for x in (err.strip(), out.strip()) if x)
                raise NginxError('nginx -t rejected the new configuration, nothing was changed: %s'
                                 % tree.explain(text))
        finally:
            tree.cleanup()

    def reload(self, master):
        """Reload gracefully and wait for new workers; raise NginxError if none come."""
        before = worker_pids(master)
        rc, out, err = self.run(list(self.reload_command))
        if rc != 0:
            raise NginxError('reload command %s failed (rc=%d): %s'
                             % (' '.join(self.reload_command), rc, (err or out).strip()))
        deadline = self.clock() + self.reload_timeout
        while True:
            now = worker_pids(master)
            if now and now.isdisjoint(before):
                return sorted(now)
            if self.clock() >= deadline:
                raise NginxError('NGINX (master pid %d) started no new workers within %ss of the reload; '
                                 'see its error log' % (master, self.reload_timeout))
            self.sleep(0.05)

    def apply(self, files, reload=True, check_mode=False, backup_dir=None, mode=0o644, force_reload=False):
        """Put ``files`` (path -> new text, None to remove) in place safely.

        Returns ``{'changed': bool, 'reloaded': bool, 'changed_files': [...]}``.
        On failure after files were swapped, the previous files are restored
        (and NGINX reloaded again) before NginxError is raised. With
        ``force_reload`` (and ``reload``), NGINX is reloaded even when no file
        changes: what it runs may not be what is on disk.
        """
        current = dict((path, read_text(path)) for path in files)
        changed_files = sorted(p for p in files if files[p] != current[p])
        result = {'changed': bool(changed_files), 'reloaded': False, 'changed_files': changed_files}
        if not changed_files and not (reload and force_reload):
            return result
        master = None
        if reload:
            master = self.running_master()
            if master is None:
                raise NginxError('NGINX is not running (no live master in %s); start it or set reload=false, '
                                 'nothing was changed' % self._pid_file())
        self.validate(dict((p, files[p]) for p in changed_files))
        if check_mode:
            return result
        for path in changed_files:
            if backup_dir and current[path] is not None:
                write_atomic(backup_path(backup_dir, path), current[path])
        swapped = []
        try:
            for path in changed_files:
                if files[path] is None:
                    os.unlink(path)
                else:
                    write_atomic(path, files[path], mode)
                swapped.append(path)
            if reload:
                self.reload(master)
                result['reloaded'] = True
        except (NginxError, OSError, IOError) as exc:
            for path in swapped:
                if current[path] is None:
                    if os.path.exists(path):
                        os.unlink(path)
                else:
                    write_atomic(path, current[path])
            if reload and swapped:
                try:
                    self.reload(master)
                except NginxError:
                    pass
            raise NginxError('%s; the previous configuration was restored' % exc, changed=False)
        return result


# Argument spec shared by the modules documented with the
# supersmartmatch.platform.nginx doc fragment.
NGINX_ARGUMENT_SPEC = dict(
    nginx_bin=dict(type='path', default='nginx'),
    nginx_conf=dict(type='path', default='/etc/nginx/nginx.conf'),
    reload=dict(type='bool', default=True),
    reload_command=dict(type='list', elements='str'),
    reload_timeout=dict(type='float', default=10.0),
)


def nginx_from_params(module):
    """An ``Nginx`` configured from a module's shared options."""
    params = module.params
    return Nginx(
        run=module.run_command,
        binary=params['nginx_bin'],
        main_conf=params['nginx_conf'],
        reload_command=params['reload_command'],
        reload_timeout=params['reload_timeout'],
    )
