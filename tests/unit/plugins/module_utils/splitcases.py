"""Parameters of a typical traffic_split call, shared by the traffic_split unit tests."""


def base_params(**extra):
    params = dict(service='svc', operation='set', stable=['app1:5062', 'app2:5062'],
                  candidate=['app1:5070', 'app2:5070'], percent=5, phase='canary',
                  stable_version='1.0.0', candidate_version='2.0.0', stable_color='blue',
                  candidate_color='green', salt='2.0.0', sticky_key=None, sticky_fallback=None)
    params.update(extra)
    return params
