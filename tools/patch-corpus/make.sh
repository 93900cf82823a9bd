#!/usr/bin/env bash
# Writes a corpus of patch files made by git itself, one per kind of change git
# writes, for patchmgr's patch-file tests and the patch-file fuzzer:
#   tools/patch-corpus/make.sh OUT
# OUT/repo is the repository: a base commit, then one commit per kind, each on
# top of the one before (so patch N applies to the parent of commit N).
# OUT/NNNN-kind.patch are `git format-patch` of those commits in patchmgr's
# canonical form (docs/cli.md, export). OUT/bad/ holds kinds patchmgr refuses.
# Everything is fixed (names, dates, bytes, config), so the output is the same
# on every run with the same git: the test runs this script, it is not committed.
set -euo pipefail
out=$(realpath -m "$1")
rm -rf "$out" && mkdir -p "$out/bad"
export HOME="$out/home" GIT_CONFIG_NOSYSTEM=1 LC_ALL=C TZ=UTC
mkdir -p "$HOME"
git config --global user.name "Upstream Author"
git config --global user.email "upstream@example.org"
git config --global init.defaultBranch main
git config --global core.autocrlf false
git config --global protocol.file.allow always
repo="$out/repo"
git init -q "$repo" && cd "$repo"
t=1767225600
commit() {  # commit "subject" [body] [author name]
  t=$((t + 60))
  GIT_AUTHOR_DATE="@$t +0100" GIT_COMMITTER_DATE="@$t +0100" GIT_AUTHOR_NAME="${3:-Upstream Author}" \
    git commit -q --allow-empty-message -m "$1" -m "${2:-Why: this is one kind of change for the corpus.}"
}
# Deterministic "random" bytes: n bytes from a seed.
bytes() { python3 -c "import random,sys; r=random.Random($2); sys.stdout.buffer.write(bytes(r.randrange(256) for _ in range($1)))"; }

printf 'one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n' > text.txt
printf 'alpha\r\nbeta\r\ngamma\r\n' > crlf.txt
printf 'first\nno newline at the end' > tail.txt
printf 'keep\nthis\nfile\nlong\nenough\nfor\nrename\ndetection\nto\nwork\n' > move.txt
printf 'source\nof\na\ncopy\nwith\nenough\nlines\nto\nbe\nfound\n' > copy-src.txt
printf 'gone\n' > delete.txt
printf '#!/bin/sh\necho hi\n' > run.sh
printf 'a file that becomes a link\n' > becomes-link.txt
printf 'in a b\n' > 'a b.txt'
bytes 4096 1 > blob.bin
ln -s text.txt link
git add -A && commit "Base"

printf 'one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nten\n' > text.txt
git add -A && commit "Text change with LF"
printf 'alpha\r\nBETA\r\ngamma\r\n' > crlf.txt
git add -A && commit "Text change with CRLF"
printf 'first\nstill no newline' > tail.txt
git add -A && commit "No newline at end of file"
bytes 300 2 > new.bin
git add -A && commit "New binary file (literal)"
{ head -c 2000 blob.bin; printf 'changed'; tail -c 2000 blob.bin; } > blob.tmp && mv blob.tmp blob.bin
git add -A && commit "Binary change (delta)"
: > empty.txt
git add -A && commit "New empty file"
git rm -q delete.txt && commit "Delete a file"
git mv move.txt moved.txt && commit "Pure rename"
sed 's/work/work well/' moved.txt > renamed.txt && git rm -q moved.txt && git add renamed.txt && commit "Rename with a change"
{ cat copy-src.txt; printf 'more\n'; } > copy-dst.txt && printf 'source\nof\na\ncopy\nwith\nenough\nlines\nto\nbe\nfound!\n' > copy-src.txt
git add -A && commit "Copy with a change"
chmod 755 run.sh && git add -A && commit "Mode change to 0755"
chmod 644 run.sh && git add -A && commit "Mode change back to 0644"
ln -s tail.txt newlink && git add -A && commit "New symlink"
rm link && ln -s crlf.txt link && git add -A && commit "Retarget a symlink"
rm becomes-link.txt && ln -s text.txt becomes-link.txt && git add -A && commit "File to symlink"
rm becomes-link.txt && printf 'a file again\n' > becomes-link.txt && git add -A && commit "Symlink to file"
git mv 'a b.txt' 'c d.txt' && printf 'spaced\n' > 'new file.txt' && git add -A && commit "Paths with spaces"
printf 'q\n' > 'say "hi".txt' && printf 't\n' > "$(printf 'tab\there.txt')" && printf 'n\n' > "$(printf 'na\303\257ve.txt')"
git add -A && commit "Quoted paths"
git mv "$(printf 'na\303\257ve.txt')" "$(printf 'na\303\257ve moved.txt')" && commit "Rename with non-ASCII and a space"
printf 'one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nTEN\n' > text.txt
git add -A && commit "$(printf 'P\303\244tch the \303\274mlauts')" "$(printf 'Body with \303\244 too.')" "$(printf 'P\303\244tch \303\204uthor')"
printf 'one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nTEN\neleven\n' > text.txt
git add -A && commit "A long subject that git folds over more than one line because it does not fit in seventy-eight columns"
printf 'one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nTEN\neleven\ntwelve\n' > text.txt
git mv renamed.txt renamed-again.txt && chmod 755 tail.txt && bytes 200 3 > new.bin && rm newlink && printf 'x\n' > 'sp ace.txt'
git add -A && commit "Several kinds at once"
printf 'x\ny\n' > 'sp ace.txt' && git add -A && commit "Author name with specials" "" "A. U. Thor, Jr"
printf 'x\ny\nz\n' > 'sp ace.txt'
git add -A && commit "$(printf 'A long subject with \303\244\303\266\303\274 and \342\202\254 that git writes as encoded-words over several lines')"
git mv run.sh run-moved.sh && chmod 755 run-moved.sh && git add -A && commit "Rename with a mode change"
git rm -q new.bin link && commit "Delete a binary file and a symlink"
printf 'x\ny\nz\nw\n' > 'sp ace.txt' && git add -A && commit "Subjects may hold =?x?= and a_b"
cp copy-src.txt copy-exact.txt && printf 'changed source\n' >> copy-src.txt && git add -A && commit "Copy without a change"
printf 'x\n' > text.txt && git add -A && commit "Author name with quotes and a backslash" "" 'Jo "The Hammer" Back\slash'
printf 'y\n' > text.txt && git add -A && commit "A long author name" "" "Maximilian Alexander Bartholomew Constantin Friedrich Wilhelm von Example-Hohenberg"
long=a-directory-with-a-rather-long-name/and-another-one-below-it/so-that-the-diffstat-shortens-it
mkdir -p "$long" && seq 1 120 > "$long/numbers.txt" && seq 1 3 > short.txt && git add -A && commit "A long path and many lines"
git mv blob.bin blob-moved.bin && git add -A && commit "Rename a binary file"
git mv empty.txt empty-moved.txt && chmod 755 blob-moved.bin && git add -A && commit "Rename an empty file, mode change of a binary file"
printf 'w\n' > text.txt && git add -A && GIT_AUTHOR_DATE="@1767225600 -0730" GIT_COMMITTER_DATE="@$t +0100" git commit -q -m "An author date west of UTC, in the year before" -m "The date line keeps the author's offset: 2026-01-01T00:00Z is 2025-12-31 16:30 there."
{ head -c 3000 blob-moved.bin; printf 'edit'; tail -c +3001 blob-moved.bin; } > blob-renamed.bin && git rm -q blob-moved.bin
git add -A && commit "Rename a binary file with a change"
{ printf 'now binary\0'; cat crlf.txt; } > crlf.tmp && mv crlf.tmp crlf.txt && git rm -q tail.txt && git add -A && commit "A text file becomes binary, a file without newline is deleted"

format() { git format-patch -q --zero-commit --no-numbered --binary --no-signature -M -C "$@"; }
format -o "$out" main~$(( $(git rev-list --count main) - 1 ))..main

# Refused kinds: a submodule pointer change.
sub="$out/sub" && git init -q "$sub" && (cd "$sub" && printf 's\n' > s && git add s && commit "Sub")
git checkout -q -b submodule main && git submodule -q add "$sub" sub && commit "Add a submodule"
format -o "$out/bad" -1
