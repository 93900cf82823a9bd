#!/usr/bin/env bash
# Here (Debian 12): downloads the Debian packages the GPU machine lacks, into
# .debs/ (git-excluded), for tools/gpu/unpack-debs.sh to unpack there. The GPU
# machine (Ubuntu 24.04) has no network, no libgit2 (patchmgr generates the
# patch-set fingerprint the runtime is stamped with), no libsndfile or soxr
# (audio I/O of `separate`), maybe no OpenSSL headers (libcrypto hashes model
# files; the machine's own libcrypto.so.3 is linked) and maybe no pkg-config.
#   tools/gpu/fetch-debs.sh && echo /.debs/ >> .git/info/exclude
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .debs
cd .debs
apt-get download \
  libgit2-1.5 libgit2-dev libhttp-parser2.9 libmbedtls14 libmbedx509-1 libmbedcrypto7 libssh2-1 libpcre2-8-0 \
  libsndfile1 libsndfile1-dev libflac12 libogg0 libvorbis0a libvorbisenc2 libopus0 libmpg123-0 libmp3lame0 \
  libsoxr0 libsoxr-dev \
  libssl-dev \
  pkgconf pkgconf-bin libpkgconf3
