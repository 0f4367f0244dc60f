"""traffic_split_info through its main path."""

from ansible_collections.supersmartmatch.platform.plugins.modules import traffic_split_info

from .helpers import Dirs, run_main


def test_info_module(tmp_path, capsys):
    dirs = Dirs(tmp_path)
    args = dict(service='svc', config_dir=dirs.config_dir, state_dir=dirs.state_dir)
    empty = run_main(traffic_split_info, args, capsys)
    assert empty['exists'] is False and empty['drift'] is False and empty['live'] is None
    dirs.seed()
    seen = run_main(traffic_split_info, dict(args, _ansible_check_mode=True), capsys)
    assert (seen['changed'], seen['exists'], seen['generation'], seen['file_generation'], seen['drift']) == \
        (False, True, 2, 2, False)
    assert seen['live']['percent'] == 5.0 and seen['lease'] is None
    bad = run_main(traffic_split_info, dict(args, service='../etc'), capsys)
    assert bad['failed'] is True and 'service must start' in bad['msg']
