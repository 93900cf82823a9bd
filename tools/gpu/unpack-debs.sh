#!/usr/bin/env bash
# There (the GPU machine): unpacks .debs/*.deb into a private prefix (never
# into /, where Debian's libraries could shadow Ubuntu's), points pkg-config
# at it, and prints the environment to use:
#   eval "$(tools/gpu/unpack-debs.sh)"
# With .ffmpeg/ carried too, its pkg-config files come first (see below).
# The .pc files get the new prefix and lose Requires.private (their static
# link dependencies, whose .pc files are not carried; nothing links statically).
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=${STEMKIT_DEBS_PREFIX:-/opt/stemkit-debs}
mkdir -p "$prefix"
for deb in .debs/*.deb; do dpkg -x "$deb" "$prefix"; done
libdir=$prefix/usr/lib/x86_64-linux-gnu
for pc in "$libdir"/pkgconfig/*.pc; do
  sed -i -e "s|^prefix=.*|prefix=$prefix/usr|" -e "s|/usr/lib/x86_64-linux-gnu|$libdir|g" \
         -e "s|^includedir=\"*/usr/include\"*|includedir=$prefix/usr/include|" -e '/^Requires.private/d' "$pc"
  sed -i -e "s|^libdir=\"*/usr|libdir=$prefix/usr|" "$pc"
done
# libssl-dev's headers, linked against the machine's own OpenSSL 3 (same ABI):
# its libcrypto.so / libssl.so point into the prefix, where no .so.3 is carried.
for lib in libcrypto libssl; do
  if [ ! -e "$libdir/$lib.so.3" ] && [ -e "/usr/lib/x86_64-linux-gnu/$lib.so.3" ]; then
    ln -sf "/usr/lib/x86_64-linux-gnu/$lib.so.3" "$libdir/$lib.so"
  fi
done
pkgconfig=$(command -v pkg-config || true)
if [ -z "$pkgconfig" ]; then pkgconfig=$prefix/usr/bin/pkgconf; fi
# FFmpeg's libraries, static and audio-only, when .ffmpeg/ was carried
# (tools/gpu/build-ffmpeg.sh): first on the path, so that no other libav* is
# taken; nothing to add to LD_LIBRARY_PATH.
pcpath=$libdir/pkgconfig
if [ -d .ffmpeg/lib/pkgconfig ]; then pcpath=$PWD/.ffmpeg/lib/pkgconfig:$pcpath; fi
echo "export PKG_CONFIG_PATH=$pcpath LD_LIBRARY_PATH=$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} PKG_CONFIG_EXECUTABLE=$pkgconfig STEMKIT_DEBS_PREFIX=$prefix OPENSSL_ROOT_DIR=$prefix/usr"
