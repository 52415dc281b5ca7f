#!/usr/bin/env bash
# Makes podman able to build and run tributary's image on this machine without a registry:
# installs podman, runc, podman-compose and debootstrap when missing; adds to
# /etc/containers/containers.conf (or $CONTAINERS_CONF) the settings this kind of host needs
# (runc, cgroupfs, file events, ulimits within the hard limits) where it does not set them
# already; and, when there is no image debian:bookworm-slim, pulls Docker Hub's or, where no
# registry answers, builds one with debootstrap from the host's Debian mirror and imports it
# under that name. Idempotent: a second run changes nothing and takes about a second.
#
# Environment: DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR override the mirrors read from
# /etc/apt; BASE_PULL=0 goes straight to debootstrap.
set -euo pipefail

BASE_IMAGE=debian:bookworm-slim
BASE_PULL=${BASE_PULL:-1}
SUITE=bookworm
CONF=${CONTAINERS_CONF:-/etc/containers/containers.conf} # podman reads $CONTAINERS_CONF instead
say() { echo "setup-podman: $*"; }
die() {
  echo "setup-podman: $*" >&2
  exit 1
}

# ---- packages ----------------------------------------------------------------------------
missing=()
for p in podman runc podman-compose debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  ((EUID == 0)) || die "missing packages ${missing[*]}; run as root (or apt-get install them)"
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- containers.conf ---------------------------------------------------------------------
# Ulimits a container gets by default: podman's own default (nofile 1048576) is refused where
# the hard limit is lower, so ask for at most what this shell may have.
limit() { # WANTED HARD -> the smaller, "unlimited" counting as infinite
  if [[ $2 == unlimited ]] || (($1 <= $2)); then echo "$1"; else echo "$2"; fi
}
nofile=$(limit 20000 "$(ulimit -Hn)")
nproc=$(limit 32768 "$(ulimit -Hu)")
# section|key|value: what this host needs. crun fails on a mixed cgroup v1/v2 layout, systemd
# cgroups and journald need a running systemd, which containers and CI machines often lack.
settings=(
  "containers|default_ulimits|[\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
  "engine|runtime|\"runc\""
  "engine|cgroup_manager|\"cgroupfs\""
  "engine|events_logger|\"file\""
)

# conf_value FILE SECTION KEY: the value KEY has in [SECTION] (uncommented), or nothing.
conf_value() {
  awk -v want="$2" -v key="$3" '
    /^[[:space:]]*\[/ { s = $0; sub(/#.*/, "", s); gsub(/[][[:space:]]/, "", s); next }
    s == want && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" { sub(/^[^=]*=[[:space:]]*/, ""); print; exit }
  ' "$1"
}

# conf_add FILE SECTION LINE: LINE inserted just below the [SECTION] header (the header is
# appended when there is none).
conf_add() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  awk -v want="$2" -v line="$3" '
    { print }
    !done && /^[[:space:]]*\[/ { s = $0; sub(/#.*/, "", s); gsub(/[][[:space:]]/, "", s)
                                 if (s == want) { print line; done = 1 } }
    END { if (!done) { print ""; print "[" want "]"; print line } }
  ' "$1" >"$tmp"
  chmod 644 "$tmp"
  mv "$tmp" "$1"
}

if ((EUID == 0)); then
  mkdir -p "$(dirname "$CONF")"
  existed=0
  [[ -s $CONF ]] && existed=1
  if [[ ! -e $CONF ]]; then
    say "writing $CONF"
    printf '# Written by tributary docker/setup-podman.sh; see containers.conf(5).\n' >"$CONF"
  fi
  changed=0
  for s in "${settings[@]}"; do
    IFS='|' read -r section key value <<<"$s"
    have=$(conf_value "$CONF" "$section" "$key")
    if [[ -z $have ]]; then
      if ((existed && !changed)) && [[ ! -e $CONF.tributary-orig ]]; then
        cp "$CONF" "$CONF.tributary-orig" # the administrator's file, before the first change
      fi
      conf_add "$CONF" "$section" "$key = $value"
      say "$CONF: [$section] $key = $value"
      changed=1
    elif [[ $have != "$value" ]]; then
      say "$CONF: [$section] $key is $have (left as it is; this host was seen to need $value)"
    fi
  done
  ((changed)) || say "$CONF: nothing to add"
else
  say "not root: $CONF left as it is"
fi

podman info >/dev/null 2>&1 || die "podman info fails: $(podman info 2>&1 | tail -1)"

# ---- base image --------------------------------------------------------------------------
if podman image exists "$BASE_IMAGE"; then
  say "image $BASE_IMAGE exists"
  exit 0
fi
if ((BASE_PULL)) && timeout 300 podman pull -q "docker.io/library/$BASE_IMAGE" >/dev/null 2>&1; then
  say "pulled docker.io/library/$BASE_IMAGE"
  exit 0
fi
((EUID == 0)) || die "no image $BASE_IMAGE, none could be pulled, and debootstrap needs root"

# The host's Debian mirrors, from the deb822 .sources files or the one-line lists.
mirror_of() { # SUITE-PATTERN -> the first URI whose suites match
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f ]] || continue
    awk -v pat="$1" '
      /^[[:space:]]*$/ { if (uri != "" && suites ~ pat && types ~ /deb( |$)/) { print uri; uri = ""; exit } uri = suites = types = ""; next }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "types:" { $1 = ""; types = $0 " " }
      END { if (uri != "" && suites ~ pat && types ~ /deb( |$)/) print uri }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    if [[ -e $f ]]; then cat "$f"; fi
  done | awk -v pat="$1" '
    $1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }  # [options]
                  if ($(i + 1) ~ pat) print $i }'
}
mirror=${DEBIAN_MIRROR:-$(mirror_of "(^| )$SUITE( |$)" | head -1 || true)}
security=${DEBIAN_SECURITY_MIRROR:-$(mirror_of "$SUITE-security" | head -1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

rootfs=$(mktemp -d /var/tmp/tributary-rootfs.XXXXXX)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
say "no registry: debootstrap --variant=minbase $SUITE from $mirror"
start=$SECONDS
debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
  {
    tail -20 "$rootfs.log" >&2
    die "debootstrap failed"
  }

# Like the official slim image: the same apt sources (the main suite, its updates, security
# updates), no documentation, manuals or translations installed by later apt-get calls, and no
# package caches.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,info,groff,lintian}/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
  "${rootfs:?}"/var/cache/debconf/*-old "${rootfs:?}"/tmp/* "${rootfs:?}"/dev/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
: >"$rootfs/etc/machine-id"

tar --numeric-owner -C "$rootfs" -c . | podman import --quiet --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
say "imported $BASE_IMAGE ($(podman image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes) in $((SECONDS - start)) s"
