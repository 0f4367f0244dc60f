#!/usr/bin/env bash
# Build the local lab image supersmartmatch/debian12-systemd:latest.
#
# Debian 12 (bookworm) root filesystem made with debootstrap and imported with
# `docker import`; systemd runs as PID 1. No registry is needed.
#
# The image carries a label with a hash of this recipe (this file plus the
# relevant environment knobs). If an image with the same hash already exists,
# nothing is rebuilt.
#
# Usage: lab/image/build.sh [--force]
# Env:   IMAGE (default supersmartmatch/debian12-systemd)
#        MIRROR (default http://deb.debian.org/debian)
set -euo pipefail

IMAGE="${IMAGE:-supersmartmatch/debian12-systemd}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SUITE="bookworm"
LABEL_KEY="org.supersmartmatch.recipe-hash"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

INCLUDE="systemd,systemd-sysv,dbus,python3,python3-venv,python3-apt,python3-jmespath,ca-certificates,iproute2,procps,curl,less,sudo,gnupg,locales,openssh-server,nftables"

log() { printf '[build.sh] %s\n' "$*"; }
die() { printf '[build.sh] ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" -eq 0 ]] || die "must run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install debootstrap)"
command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "docker daemon not reachable"

# Recipe hash: this script + inputs that change the result.
RECIPE_HASH="$( { cat "${BASH_SOURCE[0]}"; printf '%s\n' "$MIRROR" "$SUITE" "$INCLUDE"; } \
  | sha256sum | cut -c1-16)"
TAG_HASH="${IMAGE}:recipe-${RECIPE_HASH}"

if [[ "$FORCE" -eq 0 ]]; then
  existing="$(docker images -q --filter "label=${LABEL_KEY}=${RECIPE_HASH}" "${IMAGE}" | head -n1)"
  if [[ -n "$existing" ]]; then
    # Make sure :latest points at it (cheap, no-op if already so).
    docker tag "$existing" "${IMAGE}:latest"
    docker tag "$existing" "${TAG_HASH}"
    log "image ${IMAGE}:latest with recipe hash ${RECIPE_HASH} already exists (${existing}); nothing to do"
    exit 0
  fi
fi

WORKDIR="$(mktemp -d /var/tmp/ssm-image.XXXXXX)"
ROOTFS="${WORKDIR}/rootfs"
cleanup() {
  # Unmount anything left mounted inside the chroot, then remove the tree.
  for m in proc sys dev/pts dev; do
    mountpoint -q "${ROOTFS}/${m}" 2>/dev/null && umount -l "${ROOTFS}/${m}" || true
  done
  rm -rf --one-file-system "${WORKDIR}"
}
trap cleanup EXIT

start=$(date +%s)
log "debootstrap ${SUITE} (minbase) from ${MIRROR} into ${ROOTFS}"
debootstrap --variant=minbase --include="${INCLUDE}" --components=main \
  "${SUITE}" "${ROOTFS}" "${MIRROR}" >"${WORKDIR}/debootstrap.log" 2>&1 \
  || { tail -n 40 "${WORKDIR}/debootstrap.log" >&2; die "debootstrap failed"; }

log "configuring apt sources (deb.debian.org: main, updates, security)"
rm -f "${ROOTFS}/etc/apt/sources.list"
cat >"${ROOTFS}/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: ${MIRROR}
Suites: ${SUITE} ${SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: ${SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

# Keep the image lean: no recommends, no docs/man/locales from future installs.
cat >"${ROOTFS}/etc/apt/apt.conf.d/90-container" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT
cat >"${ROOTFS}/etc/dpkg/dpkg.cfg.d/90-container-excludes" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
DPKG

log "locale en_US.UTF-8"
sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' "${ROOTFS}/etc/locale.gen"
chroot "${ROOTFS}" /usr/sbin/locale-gen >/dev/null
echo 'LANG=C.UTF-8' >"${ROOTFS}/etc/default/locale"

log "masking units that are useless in containers"
MASK_UNITS=(
  getty.target getty@.service serial-getty@.service console-getty.service
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-udev-trigger.service systemd-udev-settle.service
  systemd-resolved.service systemd-timesyncd.service systemd-networkd.service
  systemd-remount-fs.service systemd-firstboot.service systemd-modules-load.service
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
  sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount
  proc-sys-fs-binfmt_misc.automount systemd-binfmt.service
  systemd-hwdb-update.service systemd-ask-password-wall.path
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer
)
for u in "${MASK_UNITS[@]}"; do
  ln -sfn /dev/null "${ROOTFS}/etc/systemd/system/${u}"
done

log "sshd: host keys made at each container's first boot, not shared by the image"
rm -f "${ROOTFS}"/etc/ssh/ssh_host_*
mkdir -p "${ROOTFS}/etc/systemd/system/ssh.service.d"
cat >"${ROOTFS}/etc/systemd/system/ssh.service.d/10-hostkeys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT

log "apt-get update (package lists kept, as on any installed Debian host)"
cp /etc/resolv.conf "${ROOTFS}/etc/resolv.conf"
chroot "${ROOTFS}" apt-get update -qq >"${WORKDIR}/apt-update.log" 2>&1 \
  || { tail -n 20 "${WORKDIR}/apt-update.log" >&2; die "apt-get update in the image failed"; }

log "cleaning machine-id, apt caches, docs"
# Empty machine-id: systemd generates a fresh one at each container's boot.
: >"${ROOTFS}/etc/machine-id"
rm -f "${ROOTFS}/var/lib/dbus/machine-id"
# Docker manages these.
rm -f "${ROOTFS}/etc/resolv.conf" "${ROOTFS}/etc/hostname"
: >"${ROOTFS}/etc/hosts"
rm -rf "${ROOTFS}"/var/cache/apt/*.bin \
  "${ROOTFS}"/var/cache/apt/archives/*.deb "${ROOTFS}"/var/cache/apt/archives/partial/* \
  "${ROOTFS}"/var/cache/debconf/*-old "${ROOTFS}"/var/lib/dpkg/*-old \
  "${ROOTFS}"/var/log/*.log "${ROOTFS}"/var/log/apt/* "${ROOTFS}"/tmp/* "${ROOTFS}"/var/tmp/* \
  "${ROOTFS}"/usr/share/man/* "${ROOTFS}"/usr/share/info/*
find "${ROOTFS}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "${ROOTFS}/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true

log "importing into docker as ${IMAGE}:latest"
# Docker 20.10's `docker import --change` rejects STOPSIGNAL, so import first
# (ENV/LABEL/CMD) and add STOPSIGNAL with a one-line classic build (no
# registry access needed: FROM is a local image).
TMP_TAG="${IMAGE}:import-${RECIPE_HASH}"
tar --numeric-owner -C "${ROOTFS}" -c . | docker import \
  --change 'ENV container=docker' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL ${LABEL_KEY}=${RECIPE_HASH}" \
  --change 'LABEL org.opencontainers.image.title=supersmartmatch-debian12-systemd' \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --message "supersmartmatch debian12-systemd recipe ${RECIPE_HASH}" \
  - "${TMP_TAG}" >/dev/null
mkdir -p "${WORKDIR}/ctx"
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "${TMP_TAG}" >"${WORKDIR}/ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "${IMAGE}:latest" -t "${TAG_HASH}" "${WORKDIR}/ctx" >/dev/null 2>"${WORKDIR}/build.log" \
  || { cat "${WORKDIR}/build.log" >&2; die "docker build (STOPSIGNAL layer) failed"; }
docker rmi "${TMP_TAG}" >/dev/null
id="$(docker image inspect -f '{{.Id}}' "${IMAGE}:latest")"

log "built ${IMAGE}:latest (${id#sha256:}) and ${TAG_HASH} in $(( $(date +%s) - start ))s, size $(docker image inspect -f '{{.Size}}' "${IMAGE}:latest" | numfmt --to=iec)"
