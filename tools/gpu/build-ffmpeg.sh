#!/usr/bin/env bash
# Here (Debian 12, root): builds an audio-only FFmpeg from Debian 12's source
# package into .ffmpeg/ (git-excluded), as static position-independent
# libraries (libavformat, libavcodec, libswresample, libavutil) with headers
# and pkg-config files, for the GPU machine, which has no libav* at all. Carried
# there (run: carry [".deps", ".debs", ".ffmpeg"]), tools/gpu/unpack-debs.sh
# puts .ffmpeg/lib/pkgconfig on PKG_CONFIG_PATH, and `separate` links it in:
# MP3, AAC/M4A, Opus, Vorbis, FLAC, ALAC and PCM read through FFmpeg there too.
#
#   tools/gpu/build-ffmpeg.sh && echo /.ffmpeg/ >> .git/info/exclude
#
# What it holds (and nothing else: the full libraries with their codec
# dependencies are far over the carry budget):
# - decoders: MP1/2/3 (float and fixed), AAC (and LATM), Opus, Vorbis, FLAC,
#   ALAC, PCM; demuxers: MP3, MOV/MP4/M4A, Ogg, Matroska/WebM, WAV, W64, FLAC,
#   AIFF, CAF, raw AAC (ADTS); the parsers those use; the file protocol only.
# - encoders and muxers: what runtime/audio/ffmpeg_encode.cpp asks for by
#   name, i.e. libmp3lame (mp3), libvorbis (ogg), libopus (opus) and FFmpeg's
#   aac (m4a, the ipod muxer); LAME, libvorbis, libopus and libogg are linked
#   in from the static libraries of Debian's -dev packages (unpacked here, not
#   installed), so the GPU machine needs none of them. Debian 12's on purpose:
#   `separate` exports those symbols to libsndfile.so, which calls them too,
#   and .debs/ carries that libsndfile with the same versions of them.
# - no zlib, bzip2, lzma or iconv (--disable-autodetect): a static link would
#   need them there; only zlib-compressed MOV headers and Matroska tracks,
#   rare in audio files, go unread.
# The .pc files are rewritten for a static link with plain `pkg-config --libs`
# (what runtime/CMakeLists.txt's pkg_check_modules asks for): Libs.private
# moved into Libs, Requires.private into Requires, and a relocatable prefix
# (${pcfiledir}), so the folder works wherever it is carried.
#
# Needs: deb.debian.org (apt-get source; a deb-src entry is added in
# /etc/apt/sources.list.d/stemkit-deb-src.sources when apt has none), nasm
# (installed when missing), dpkg-dev. Work files in $STEMKIT_FFMPEG_WORK
# (default /tmp/stemkit-ffmpeg); JOBS (default: the cores) for make.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
prefix=$root/.ffmpeg
work=${STEMKIT_FFMPEG_WORK:-/tmp/stemkit-ffmpeg}
jobs=${JOBS:-$(nproc)}
say() { echo "build-ffmpeg.sh: $*" >&2; }

if ! apt-get source --print-uris ffmpeg > /dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { say "apt has no deb-src entry; run as root (it adds one) or add one yourself"; exit 2; }
  say "adding deb-src entries for bookworm (/etc/apt/sources.list.d/stemkit-deb-src.sources)"
  cat > /etc/apt/sources.list.d/stemkit-deb-src.sources << 'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -q
fi
if ! command -v nasm > /dev/null; then
  [ "$(id -u)" = 0 ] || { say "nasm is missing (apt-get install nasm)"; exit 2; }
  apt-get install -y -q nasm
fi

rm -rf "$work"
mkdir -p "$work/src" "$work/dev"
# The source as Debian ships it (its patches applied by dpkg-source), and the
# codec libraries' -dev packages, unpacked only.
(cd "$work/src" && apt-get source -q ffmpeg)
src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'ffmpeg-*' | head -1)
[ -n "$src" ] || { say "apt-get source ffmpeg gave no source tree"; exit 1; }
version=$(cd "$src" && dpkg-parsechangelog -S Version)
(cd "$work/dev" && apt-get download -q libmp3lame-dev libopus-dev libvorbis-dev libogg-dev \
  && for d in *.deb; do dpkg -x "$d" .; done)
dev=$work/dev/usr
devlib=$dev/lib/x86_64-linux-gnu
for pc in "$devlib"/pkgconfig/*.pc; do sed -i "s|^prefix=.*|prefix=$dev|" "$pc"; done
rm -f "$devlib"/*.so  # links to the shared libraries, which are not unpacked: the .a only

components() {  # kind list...
  local kind=$1
  shift
  for name in "$@"; do printf -- '--enable-%s=%s ' "$kind" "$name"; done
}
# shellcheck disable=SC2046  # the lists are words on purpose
(
  set -f  # 'mp1*', 'pcm_*': configure's patterns, not file names
  cd "$src"
  PKG_CONFIG_PATH=$devlib/pkgconfig ./configure \
    --prefix="$prefix" --enable-static --disable-shared --enable-pic --disable-debug \
    --pkg-config-flags=--static --extra-cflags="-I$dev/include" --extra-ldflags="-L$devlib" \
    --disable-programs --disable-doc --disable-network --disable-autodetect --disable-everything \
    --disable-avdevice --disable-avfilter --disable-swscale --disable-postproc \
    --enable-libmp3lame --enable-libopus --enable-libvorbis \
    --enable-protocol=file \
    $(components decoder 'mp1*' 'mp2*' 'mp3*' aac aac_fixed aac_latm opus vorbis flac alac 'pcm_*') \
    $(components demuxer mp3 mov ogg matroska wav w64 flac aiff caf aac) \
    $(components parser mpegaudio aac aac_latm opus vorbis flac) \
    $(components encoder libmp3lame libvorbis libopus aac) \
    $(components muxer mp3 ogg opus ipod) \
    $(components bsf aac_adtstoasc) \
    > "$work/configure.log" 2>&1 || { tail -30 "$work/configure.log"; say "configure failed ($work/configure.log)"; exit 1; }
  make -j "$jobs" > "$work/make.log" 2>&1 || { grep -E "error" -A3 "$work/make.log" | head -40; exit 1; }
  rm -rf "$prefix"
  make install > "$work/install.log" 2>&1
)

# The codec libraries beside FFmpeg's: -L${libdir} comes first, and a folder
# with only the .a makes the linker (and CMake's find_library) take them
# rather than a system .so.
cp "$devlib"/libmp3lame.a "$devlib"/libopus.a "$devlib"/libvorbis.a "$devlib"/libvorbisenc.a "$devlib"/libogg.a \
  "$prefix/lib/"
strip --strip-debug "$prefix"/lib/*.a
rm -rf "$prefix/share"

# Static link with plain `pkg-config --libs`; the prefix relative to the .pc file.
# configure adds -latomic where its test links need it, but on x86-64 every
# atomic is inline: without a call into it, the GPU machine needs no libatomic.
uses_atomic=0
nm -u "$prefix"/lib/*.a 2> /dev/null | grep -q '__atomic_' && uses_atomic=1
for pc in "$prefix"/lib/pkgconfig/*.pc; do
  priv=$(sed -n 's/^Libs.private: *//p' "$pc")
  reqpriv=$(sed -n 's/^Requires.private: *//p' "$pc")
  # shellcheck disable=SC2016  # pkg-config's own variables, written as they are
  sed -i -e 's|^prefix=.*|prefix=${pcfiledir}/../..|' -e 's|^libdir=.*|libdir=${prefix}/lib|' \
    -e 's|^includedir=.*|includedir=${prefix}/include|' -e '/^Libs.private:/d' -e '/^Requires.private:/d' \
    -e "s|^Libs: \(.*\)|Libs: \1 $priv|" "$pc"
  if [ -n "$reqpriv" ]; then
    if grep -q '^Requires: *[^ ]' "$pc"; then
      sed -i "s|^Requires: \(.*\)|Requires: \1, $reqpriv|" "$pc"
    else
      sed -i "s|^Requires:.*|Requires: $reqpriv|" "$pc"
    fi
  fi
  # The extra -L of the unpacked -dev packages: their libraries are in libdir now.
  sed -i -e "s|-L$devlib||g" -e "s|-I$dev/include||g" "$pc"
  [ "$uses_atomic" = 1 ] || sed -i 's/ -latomic//g' "$pc"
done
{
  echo "FFmpeg $version (Debian 12's source package), built by tools/gpu/build-ffmpeg.sh on $(date -u +%F)"
  for d in "$work"/dev/*.deb; do basename "$d"; done
  echo
  sed -n '/^Enabled decoders:/,$p' "$work/configure.log" | head -60
} > "$prefix/BUILD-INFO.txt"
say "FFmpeg $version in $prefix ($(du -sh "$prefix" | cut -f1))"
