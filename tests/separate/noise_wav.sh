# Sourced by the shell tests: write_wav FILE SECONDS writes SECONDS (whole)
# of stereo 16-bit noise at 44.1 kHz as a WAV file, from /dev/urandom (every
# byte below 128, so that no sample is near full scale). No tool beyond bash,
# head and tr.
le32() {
  # shellcheck disable=SC2059  # the format is the bytes, made by the inner printf
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"
}
write_wav() {
  local bytes=$(($2 * 44100 * 4))
  {
    printf 'RIFF'; le32 $((36 + bytes)); printf 'WAVEfmt '; le32 16
    printf '\x01\x00\x02\x00'; le32 44100; le32 $((44100 * 4)); printf '\x04\x00\x10\x00'
    printf 'data'; le32 "$bytes"
    head -c "$bytes" /dev/urandom | tr '\200-\377' '\000-\177'
  } > "$1"
}

