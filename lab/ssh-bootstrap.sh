#!/bin/sh
# Run inside a lab container by playbooks/lab.yml (through `docker exec`, the
# only time the lab uses it): the deploy user Ansible logs in as over SSH, its
# authorized key, passwordless sudo (as inventories/production.example
# expects of a real host), and sshd running. Idempotent: prints "changed" only
# when it changed something.
# Env: LAB_SSH_USER (the user), LAB_SSH_KEY (its public key, one line).
set -eu
user="${LAB_SSH_USER:?}"
key="${LAB_SSH_KEY:?}"
case "$user" in
  *[!a-z0-9_-]*|'') echo "bad user name: $user" >&2; exit 2 ;;
esac
changed=
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$user"
  changed=1
fi
home=$(getent passwd "$user" | cut -d: -f6)
install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
if [ "$(cat "$home/.ssh/authorized_keys" 2>/dev/null)" != "$key" ]; then
  printf '%s\n' "$key" > "$home/.ssh/authorized_keys.new"
  chown "$user:$user" "$home/.ssh/authorized_keys.new"
  chmod 0600 "$home/.ssh/authorized_keys.new"
  mv "$home/.ssh/authorized_keys.new" "$home/.ssh/authorized_keys"
  changed=1
fi
rule="$user ALL=(ALL) NOPASSWD: ALL"
if [ "$(cat "/etc/sudoers.d/lab-$user" 2>/dev/null)" != "$rule" ]; then
  printf '%s\n' "$rule" > "/etc/sudoers.d/lab-$user.new"
  chmod 0440 "/etc/sudoers.d/lab-$user.new"
  visudo -cqf "/etc/sudoers.d/lab-$user.new"
  mv "/etc/sudoers.d/lab-$user.new" "/etc/sudoers.d/lab-$user"
  changed=1
fi
if ! systemctl is-active --quiet ssh; then
  systemctl enable --now --quiet ssh
  changed=1
fi
if [ -n "$changed" ]; then echo changed; fi
