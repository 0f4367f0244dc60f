"""The HTML phase report rendered by a real browser (Debian's headless Chromium).

Asserts that the charts are laid out and not empty, and keeps a screenshot
under .work/ (a CI artifact, and the picture in the README).
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'unit', 'plugins', 'module_utils'))

from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_html as rh  # noqa: E402
from test_rollout_html import sample_report  # noqa: E402

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--hide-scrollbars', '--window-size=760,1500']


def png_pixels(path):
    """Distinct byte values of the decoded scanlines of a PNG (enough to tell blank from drawn)."""
    with open(path, 'rb') as handle:
        data = handle.read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    pos, idat = 8, b''
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        if kind == b'IDAT':
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


def test_report_renders_in_chromium_with_non_empty_charts(tmp_path):
    assert CHROMIUM, 'chromium is missing: scripts/setup installs it'
    page = tmp_path / 'report.html'
    page.write_text(rh.render(sample_report()))
    profile = tmp_path / 'profile'
    dom = subprocess.run([CHROMIUM] + FLAGS + ['--user-data-dir=%s' % profile, '--dump-dom', page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert len(re.findall(r'<svg class="chart', dom)) == 4
    assert all(len(p.split()) >= 3 for p in re.findall(r'<polyline class="series-candidate"[^>]* points="([^"]*)"', dom))
    out_dir = os.path.join(ROOT, '.work')
    os.makedirs(out_dir, exist_ok=True)
    shot = os.path.join(out_dir, 'report-screenshot.png')
    if os.path.exists(shot):
        os.unlink(shot)
    subprocess.run([CHROMIUM] + FLAGS + ['--user-data-dir=%s' % profile, '--screenshot=%s' % shot, page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert os.path.getsize(shot) > 10000
    assert png_pixels(shot) > 20, 'the screenshot is blank'
