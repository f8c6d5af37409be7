#!/usr/bin/env bats
# discover-diff: changes against a file or Redis state, commits of acks,
# walking rules, manifests, bad input, the stat fast path, crash safety.

load test_helper

setup_file() {
	start_redis
}

teardown_file() {
	stop_redis
}

local_setup() {
	unset PLUMB_STATE_PREFIX PLUMB_INCLUDE PLUMB_EXCLUDE PLUMB_HIDDEN PLUMB_FOLLOW \
		PLUMB_ALL PLUMB_REHASH PLUMB_TIMEOUT
}

teardown() {
	[ -z "${PROXY_PID:-}" ] || kill "$PROXY_PID" 2>/dev/null || true
	if [ -n "${NOBODY_DIR:-}" ]; then
		chmod -R u+rwx "$NOBODY_DIR" 2>/dev/null || true
		rm -rf "$NOBODY_DIR"
	fi
}

OLD='2020-01-02 03:04:05'

# Acks for every record of a discover-diff output: what a store would write.
acks_for() {
	sed -e 's/^{"id":\("[^"]*"\),"op":"upsert".*"sha256":\("[0-9a-f]*"\).*/{"op":"indexed","doc_id":\1,"doc_sha256":\2,"chunks":1}/' \
		-e 's/^{"id":\("[^"]*"\),"op":"delete"}$/{"op":"deleted","doc_id":\1}/' "$@"
}

# "op id" per output line, for comparing with the expected set.
ops() {
	sed 's/^{"id":"\([^"]*\)","op":"\([a-z]*\)".*/\2 \1/' "$@"
}

# A small tree, its files' mtimes far in the past (so the stat fast path
# trusts them at once).
make_docs() {
	mkdir -p docs/guide docs/ref
	printf 'intro\n' > docs/guide/intro.md
	printf 'setup\n' > docs/guide/setup.md
	printf 'api\n' > docs/ref/api.md
	printf 'top\n' > docs/top.txt
	find docs -type f -exec touch -d "$OLD" {} +
}

# Run discover-diff with these options on one source (the last argument) and
# commit every record it wrote.
sync_state() {
	local opts=("${@:1:$#-1}")
	discover-diff --quiet "$@" > out.jsonl
	acks_for out.jsonl | discover-diff --quiet "${opts[@]}" --commit
}

state_ids() {
	tail -n +2 "$1" | sed 's/^{"id":"\([^"]*\)".*/\1/'
}

# Run a command as nobody (root ignores permissions); tests needing it skip
# when that is impossible.
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups env PATH="$PATH" "$@"
}

nobody_dir() {
	setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null ||
		skip "cannot switch to user nobody with setpriv"
	NOBODY_DIR=$(mktemp -d /tmp/plumb-dd-nobody.XXXXXX)
	chmod 755 "$NOBODY_DIR"
	cd "$NOBODY_DIR"
}

# --- conventions ---------------------------------------------------------------

@test "--help prints usage to stdout and exits 0" {
	run -0 --separate-stderr discover-diff --help
	assert_line --partial 'usage: discover-diff'
	assert_line --partial '--commit'
	assert_equal "$stderr" ""
	run -0 discover-diff --version
	assert_output --partial 'discover-diff (plumb)'
}

@test "usage errors exit 2: unknown option, no source, --commit without a state" {
	run -2 --separate-stderr discover-diff --bogus docs
	assert_equal "$output" ""
	[[ "$stderr" == *"usage: discover-diff"* ]]
	run -2 --separate-stderr discover-diff
	[[ "$stderr" == *"discover-diff: no source given"* ]]
	run -2 --separate-stderr discover-diff --commit
	[[ "$stderr" == *"--commit needs --state"* ]]
	run -2 --separate-stderr discover-diff --timeout x docs
	[[ "$stderr" == *"--timeout: 'x' is not a whole number"* ]]
	mkdir statedir
	run -2 --separate-stderr discover-diff --state statedir .
	assert_equal "$stderr" "discover-diff: state 'statedir' is a directory; it must name a file (or be a redis:// URL)"
	PLUMB_STATE=statedir run -2 --separate-stderr discover-diff --commit < /dev/null
	assert_equal "$stderr" "discover-diff: state 'statedir' is a directory; it must name a file (or be a redis:// URL)"
}

@test "a missing source directory exits 2 before any output" {
	make_docs
	run -2 --separate-stderr discover-diff docs nope
	assert_equal "$output" ""
	assert_equal "$stderr" "discover-diff: 'nope': No such file or directory"
}

# --- changes against a file state --------------------------------------------------

@test "without a state every document is new, in byte order, with path, sha256 and size" {
	make_docs
	printf 'x\n' > docs/guide-a.md
	run -0 --separate-stderr discover-diff docs
	assert_equal "$(ops <<< "$output")" "$(printf '%s\n' 'upsert guide-a.md' 'upsert guide/intro.md' \
		'upsert guide/setup.md' 'upsert ref/api.md' 'upsert top.txt')"
	sha=$(sha256sum docs/guide/intro.md | cut -c1-64)
	assert_line "{\"id\":\"guide/intro.md\",\"op\":\"upsert\",\"path\":\"docs/guide/intro.md\",\"sha256\":\"$sha\",\"size\":6}"
	assert_equal "$stderr" "discover-diff: 5 new, 0 changed, 0 deleted, 0 unchanged"
	run -0 discover-diff --quiet docs/
	assert_line --index 0 --partial '"path":"docs/guide-a.md"'
	run -0 --separate-stderr discover-diff --quiet docs
	assert_equal "$stderr" ""
}

@test "file state: new, changed, unchanged and deleted across committed runs" {
	make_docs
	sync_state --state st docs
	assert_equal "$(lines out.jsonl)" 4
	run -0 --separate-stderr discover-diff --state st docs
	assert_equal "$output" ""
	assert_equal "$stderr" "discover-diff: 0 new, 0 changed, 0 deleted, 4 unchanged"

	printf 'intro, longer now\n' > docs/guide/intro.md
	printf 'new\n' > docs/ref/new.md
	rm docs/top.txt
	run -0 --separate-stderr discover-diff --state st docs
	assert_equal "$output" "$(printf '%s\n' 'upsert guide/intro.md' 'upsert ref/new.md' 'delete top.txt' | while read -r op id; do
		if [ "$op" = delete ]; then echo "{\"id\":\"$id\",\"op\":\"delete\"}"; else
		echo "{\"id\":\"$id\",\"op\":\"upsert\",\"path\":\"docs/$id\",\"sha256\":\"$(sha256sum "docs/$id" | cut -c1-64)\",\"size\":$(stat -c %s "docs/$id")}"; fi; done)"
	assert_equal "$stderr" "discover-diff: 1 new, 1 changed, 1 deleted, 2 unchanged"
	# not committed yet: the same changes again
	run -0 discover-diff --quiet --state st docs
	assert_equal "$(lines <(echo "$output"))" 3
	acks_for <<< "$output" > acks.jsonl
	run -0 --separate-stderr discover-diff --state st --commit acks.jsonl
	assert_equal "$stderr" "discover-diff: committed 2 indexed, 1 deleted, 0 stat refreshes"
	run -0 --separate-stderr discover-diff --state st docs
	assert_equal "$output" ""
	assert_equal "$stderr" "discover-diff: 0 new, 0 changed, 0 deleted, 4 unchanged"
	# --all writes unchanged documents too
	run -0 discover-diff --quiet --all --state st docs
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert guide/intro.md upsert guide/setup.md upsert ref/api.md upsert ref/new.md "
}

@test "the state file is JSON Lines with a versioned header, sorted by id" {
	make_docs
	sync_state --state st docs
	run -0 cat st
	assert_line --index 0 '{"format":"plumb-state","version":1,"kind":"state","count":4}'
	assert_equal "$(state_ids st | tr '\n' ' ')" "guide/intro.md guide/setup.md ref/api.md top.txt "
	ino=$(stat -c %i docs/top.txt)
	assert_line --index 4 "{\"id\":\"top.txt\",\"sha256\":\"$(sha256sum docs/top.txt | cut -c1-64)\",\"size\":4,\"mtime_ns\":$(date -d "$OLD" +%s)000000000,\"ino\":$ino}"
	run -0 head -1 st.pending
	assert_output --partial '"kind":"pending"'
}

@test "only acked documents are committed; the rest are found again" {
	make_docs
	discover-diff --quiet --state st docs > out.jsonl
	grep -e '"guide/intro.md"' -e '"top.txt"' out.jsonl | acks_for > acks.jsonl
	run -0 discover-diff --quiet --state st --commit < acks.jsonl
	run -0 discover-diff --quiet --state st docs
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert guide/setup.md upsert ref/api.md "
	# an ack for a content we never saw is recorded as acked (the store says so)
	echo '{"op":"indexed","doc_id":"ref/api.md","doc_sha256":"'"$(printf '%064d' 0)"'"}' |
		discover-diff --quiet --state st --commit
	run -0 discover-diff --quiet --state st docs
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert guide/setup.md upsert ref/api.md "
	run -0 grep -c '"id":"ref/api.md","sha256":"0000' st
}

@test "deleted acks remove ids; an unacked delete is reported again" {
	make_docs
	sync_state --state st docs
	rm docs/top.txt docs/ref/api.md
	run -0 discover-diff --quiet --state st docs
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "delete ref/api.md delete top.txt "
	echo '{"op":"deleted","doc_id":"top.txt"}' | discover-diff --quiet --state st --commit
	run -0 discover-diff --quiet --state st docs
	assert_output '{"id":"ref/api.md","op":"delete"}'
	run -1 grep -c top.txt st
}

@test "commit: other records are counted and reported, even with --quiet" {
	make_docs
	discover-diff --quiet --state st docs > out.jsonl
	{ acks_for out.jsonl; echo '{"id":"x#1","doc_id":"x","text":"chunk"}'; echo '{"op":"done","doc_id":"x"}'; } > mixed.jsonl
	run -0 --separate-stderr discover-diff --quiet --state st --commit mixed.jsonl
	assert_equal "$output" ""
	assert_equal "$stderr" "discover-diff: committed 4 indexed, 0 deleted, 0 stat refreshes; 2 other records ignored"
}

@test "commit: an ack without doc_id or doc_sha256 is bad input; acks before it are kept" {
	make_docs
	discover-diff --quiet --state st docs > out.jsonl
	{ acks_for out.jsonl | head -2; echo '{"op":"indexed","doc_sha256":"'"$(printf '%064d' 1)"'"}';
	  acks_for out.jsonl | tail -2; } > acks.jsonl
	run -65 --separate-stderr discover-diff --quiet --state st --commit acks.jsonl
	assert_equal "$stderr" "discover-diff: acks.jsonl:3: indexed ack without 'doc_id'"
	assert_equal "$(state_ids st | tr '\n' ' ')" "guide/intro.md guide/setup.md "
	run -65 --separate-stderr discover-diff --quiet --keep-going --state st --commit acks.jsonl
	[[ "$stderr" == *"acks.jsonl:3: indexed ack without 'doc_id'"* ]]
	assert_equal "$(state_ids st | tr '\n' ' ')" "guide/intro.md guide/setup.md ref/api.md top.txt "
	echo '{"op":"indexed","doc_id":"a","doc_sha256":"xyz"}' > bad.jsonl
	run -65 --separate-stderr discover-diff --state st --commit bad.jsonl
	[[ "$stderr" == *"bad.jsonl:1: indexed ack with a 'doc_sha256' that is not 64 hex digits"* ]]
	printf '{"op":"deleted","doc_id":"top.txt"}\n{"op":\n' > bad.jsonl
	run -65 --separate-stderr discover-diff --state st --commit bad.jsonl
	[[ "$stderr" == *"discover-diff: bad.jsonl:2: invalid JSON: "*"(column "* ]]
	run -1 grep -c top.txt st
	printf '{"op":"deleted"}\n' > bad.jsonl
	run -0 --separate-stderr discover-diff --quiet --state st --rejects rej.jsonl --commit bad.jsonl
	[[ "$stderr" == *"bad.jsonl:1: deleted ack without 'doc_id'"* ]]
	assert_equal "$(cat rej.jsonl)" '{"op":"deleted"}'
}

@test "commit: invalid UTF-8 in an ack line is bad input; acks before it are committed" {
	make_docs
	sync_state --state st docs
	printf '{"op":"deleted","doc_id":"top.txt"}\n{"op":"deleted","doc_id":"ref/\xc3(.md"}\n{"op":"deleted","doc_id":"ref/api.md"}\n' > acks.jsonl
	run -65 --separate-stderr discover-diff --quiet --state st --commit acks.jsonl
	assert_equal "$stderr" "discover-diff: acks.jsonl:2: invalid JSON: invalid UTF-8 (column 31)"
	assert_equal "$(state_ids st | tr '\n' ' ')" "guide/intro.md guide/setup.md ref/api.md "
	run -0 --separate-stderr discover-diff --quiet --state st --rejects rej.jsonl --commit acks.jsonl
	assert_equal "$(state_ids st | tr '\n' ' ')" "guide/intro.md guide/setup.md "
	cmp rej.jsonl <(sed -n 2p acks.jsonl)
	# a lone surrogate in doc_id is no id at all
	echo '{"op":"deleted","doc_id":"\udfff"}' > acks.jsonl
	run -65 --separate-stderr discover-diff --quiet --state st --commit acks.jsonl
	assert_equal "$stderr" "discover-diff: acks.jsonl:1: deleted ack with a 'doc_id' that is not valid Unicode: lone surrogate \\uDFFF in string"
}

@test "a corrupt state file is bad input, not an empty state" {
	make_docs
	sync_state --state st docs
	head -3 st > st.cut && mv st.cut st
	run -65 --separate-stderr discover-diff --state st docs
	assert_equal "$output" ""
	[[ "$stderr" == *"st: truncated state file (2 records, header says 4)"* ]]
	echo 'garbage' > st
	run -65 --separate-stderr discover-diff --state st docs
	[[ "$stderr" == *"discover-diff: st:1: invalid JSON"* ]]
}

@test "PLUMB_STATE and PLUMB_REHASH come from the environment; flags win" {
	make_docs
	PLUMB_STATE=envst sync_state docs
	[ -f envst ]
	PLUMB_STATE=envst run -0 discover-diff --quiet docs
	assert_output ""
	PLUMB_STATE=envst run -0 discover-diff --quiet --state other docs
	assert_equal "$(lines <(echo "$output"))" 4
	PLUMB_STATE=envst PLUMB_INCLUDE='*.txt' run -0 discover-diff --quiet --state other docs
	assert_output --partial '"id":"top.txt"'
	# the run before wrote the other three out (uncommitted, so perhaps
	# stored): now outside the source, they are deleted
	assert_equal "$(grep -c '"op":"upsert"' <<< "$output")" 1
	assert_equal "$(grep -c '"op":"delete"' <<< "$output")" 3
}

@test "the state directory is created; --state naming a directory is a usage error" {
	make_docs
	run -0 discover-diff --quiet --state deep/er/st docs
	[ -f deep/er/st.pending ]
	acks_for <<< "$output" | discover-diff --quiet --state deep/er/st --commit
	[ -f deep/er/st ]
	run -2 --separate-stderr discover-diff --state deep/ docs
	[[ "$stderr" == *"must name a file"* ]]
}

# --- walking -----------------------------------------------------------------

@test "include and exclude: base-name globs, path globs, ** and pruned directories" {
	make_docs
	mkdir -p docs/guide/drafts docs/a/b/c
	printf 'd\n' > docs/guide/drafts/wip.md
	printf 'c\n' > docs/a/b/c/deep.md
	run -0 discover-diff --quiet --include '*.md' docs
	assert_equal "$(ops <<< "$output" | cut -d' ' -f2 | tr '\n' ' ')" "a/b/c/deep.md guide/drafts/wip.md guide/intro.md guide/setup.md ref/api.md "
	run -0 discover-diff --quiet --include 'guide/*.md' docs
	assert_equal "$(ops <<< "$output" | cut -d' ' -f2 | tr '\n' ' ')" "guide/intro.md guide/setup.md "
	run -0 discover-diff --quiet --include '**/*.md' --exclude drafts --exclude 'a/**' docs
	assert_equal "$(ops <<< "$output" | cut -d' ' -f2 | tr '\n' ' ')" "guide/intro.md guide/setup.md ref/api.md "
	run -0 discover-diff --quiet --include 'a/**/deep.md' --include '/top.txt' docs
	assert_equal "$(ops <<< "$output" | cut -d' ' -f2 | tr '\n' ' ')" "a/b/c/deep.md top.txt "
	# an excluded directory is not entered: unreadable or not, it cannot fail
	run -0 --separate-stderr discover-diff -v --quiet --exclude 'guide' --exclude '*.txt' docs
	assert_equal "$(ops <<< "$output" | cut -d' ' -f2 | tr '\n' ' ')" "a/b/c/deep.md ref/api.md "
	[[ "$stderr" == *"'docs/guide': excluded"* ]]
	# an id excluded now is deleted from a state that had it
	sync_state --state st docs
	run -0 discover-diff --quiet --state st --exclude ref docs
	assert_output '{"id":"ref/api.md","op":"delete"}'
}

@test "hidden files and directories are skipped unless --hidden" {
	make_docs
	mkdir -p docs/.git docs/guide/.cache
	printf 'h\n' > docs/.hidden.md
	printf 'g\n' > docs/.git/config
	printf 'c\n' > docs/guide/.cache/x
	run -0 discover-diff --quiet docs
	refute_output --partial '"id":".'
	refute_output --partial '.cache'
	assert_equal "$(lines <(echo "$output"))" 4
	run -0 discover-diff --quiet --hidden docs
	assert_equal "$(ops <<< "$output" | cut -d' ' -f2 | tr '\n' ' ')" ".git/config .hidden.md guide/.cache/x guide/intro.md guide/setup.md ref/api.md top.txt "
	PLUMB_HIDDEN=1 run -0 discover-diff --quiet docs
	assert_equal "$(lines <(echo "$output"))" 7
}

@test "symlinks: files followed under the link's id, directories only with --follow, loops and broken links" {
	make_docs
	mkdir -p outside/sub
	printf 'o\n' > outside/file.md
	printf 's\n' > outside/sub/s.md
	ln -s ../outside/file.md docs/link.md
	ln -s ../outside/sub docs/linkdir
	ln -s ../nowhere docs/broken.md
	ln -s .. docs/ref/up
	run -0 --separate-stderr discover-diff --quiet docs
	assert_line "{\"id\":\"link.md\",\"op\":\"upsert\",\"path\":\"docs/link.md\",\"sha256\":\"$(sha256sum outside/file.md | cut -c1-64)\",\"size\":2}"
	refute_output --partial 'linkdir'
	refute_output --partial 'broken'
	refute_output --partial 'ref/up'
	assert_equal "$stderr" "discover-diff: 'docs/broken.md': broken symbolic link, skipped"
	run -0 --separate-stderr discover-diff --quiet --follow docs
	assert_line --partial '"id":"linkdir/s.md"'
	refute_output --partial 'ref/up/'
	[[ "$stderr" == *"'docs/ref/up': symbolic link loop, not followed"* ]]
	[[ "$stderr" == *"broken symbolic link"* ]]
	assert_equal "$(lines <(echo "$output"))" 6
}

@test "duplicate ids from two sources are bad input naming both" {
	make_docs
	mkdir -p more/guide
	printf 'other\n' > more/guide/intro.md
	run -65 --separate-stderr discover-diff docs more
	assert_equal "$stderr" "discover-diff: 'more/guide/intro.md': duplicate id 'guide/intro.md' (also from 'docs/guide/intro.md')"
	echo '{"id":"top.txt","text":"t"}' > m.jsonl
	run -65 --separate-stderr discover-diff docs m.jsonl
	assert_equal "$stderr" "discover-diff: m.jsonl:1: duplicate id 'top.txt' (also from 'docs/top.txt')"
	run -65 --separate-stderr discover-diff m.jsonl docs
	[[ "$stderr" == *"'docs/top.txt': duplicate id 'top.txt' (also from 'm.jsonl:1')"* ]]
	run -65 --separate-stderr discover-diff --keep-going docs more
	assert_equal "$(lines <(echo "$output"))" 4
}

# --- manifests -----------------------------------------------------------------

@test "manifest: path relative to the manifest, text, trusted sha256, pass-through fields" {
	mkdir -p data/files
	printf 'alpha\n' > data/files/a.txt
	cat > data/manifest.jsonl <<-'EOF'
	{"id":"a","path":"files/a.txt","meta":{"lang":"en","tags":["x"]},"owner":"ops"}
	{"id":"b","text":"B text \u00e9","meta":{"n":1}}

	{"id":"c","path":"files/missing.txt","sha256":"ABCDEF0000000000000000000000000000000000000000000000000000000000","size":99}
	{"id":"d","path":"/etc/hostname","sha256":"0000000000000000000000000000000000000000000000000000000000000001"}
	EOF
	run -0 --separate-stderr discover-diff data/manifest.jsonl
	sha=$(sha256sum data/files/a.txt | cut -c1-64)
	assert_line --index 0 "{\"id\":\"a\",\"op\":\"upsert\",\"path\":\"data/files/a.txt\",\"sha256\":\"$sha\",\"size\":6,\"meta\":{\"lang\":\"en\",\"tags\":[\"x\"]},\"owner\":\"ops\"}"
	shb=$(printf 'B text \xc3\xa9' | sha256sum | cut -c1-64)
	assert_line --index 1 "{\"id\":\"b\",\"op\":\"upsert\",\"text\":\"B text \\u00e9\",\"sha256\":\"$shb\",\"size\":9,\"meta\":{\"n\":1}}"
	assert_line --index 2 '{"id":"c","op":"upsert","path":"data/files/missing.txt","sha256":"abcdef0000000000000000000000000000000000000000000000000000000000","size":99}'
	assert_line --index 3 '{"id":"d","op":"upsert","path":"/etc/hostname","sha256":"0000000000000000000000000000000000000000000000000000000000000001"}'
	assert_equal "$stderr" "discover-diff: 4 new, 0 changed, 0 deleted, 0 unchanged"
}

@test "empty directories, empty files and empty texts" {
	mkdir -p docs/empty/deeper
	: > docs/zero.md
	printf '%s\n' '{"id":"e","text":""}' > m.jsonl
	run -0 --separate-stderr discover-diff docs m.jsonl
	assert_line --index 0 '{"id":"zero.md","op":"upsert","path":"docs/zero.md","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}'
	assert_line --index 1 '{"id":"e","op":"upsert","text":"","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}'
	assert_equal "$stderr" "discover-diff: 2 new, 0 changed, 0 deleted, 0 unchanged"
}

@test "manifest on stdin (-), mixed with a directory; paths relative to the current directory" {
	make_docs
	printf 'x\n' > loose.md
	printf '%s\n' '{"id":"loose","path":"loose.md"}' | discover-diff --quiet --state st - docs > out.jsonl
	run -0 ops out.jsonl
	assert_equal "$(tr '\n' ' ' <<< "$output")" "upsert loose upsert guide/intro.md upsert guide/setup.md upsert ref/api.md upsert top.txt "
	run -0 grep -c '"path":"loose.md"' out.jsonl
	acks_for out.jsonl | discover-diff --quiet --state st --commit
	run -0 discover-diff --quiet --state st docs - < /dev/null
	assert_output '{"id":"loose","op":"delete"}'
	run -2 --separate-stderr discover-diff - - < /dev/null
	[[ "$stderr" == *"stdin (-) given twice"* ]]
}

@test "manifest: changes against the state, by path and by text" {
	mkdir m
	printf 'one\n' > m/1.md
	touch -d "$OLD" m/1.md
	printf '%s\n' '{"id":"1","path":"1.md"}' '{"id":"2","text":"two"}' > m/list.jsonl
	sync_state --state st m/list.jsonl
	run -0 discover-diff --quiet --state st m/list.jsonl
	assert_output ""
	printf '%s\n' '{"id":"1","path":"1.md"}' '{"id":"2","text":"two!"}' '{"id":"3","text":"3"}' > m/list.jsonl
	run -0 discover-diff --quiet --state st m/list.jsonl
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert 2 upsert 3 "
}

@test "malformed manifest line: exit 65 with FILE:LINE, or --keep-going and no deletes" {
	make_docs
	printf '%s\n' '{"id":"a","text":"a"}' '{"id":"b","text":' '{"id":"c","text":"c"}' > m.jsonl
	run -65 --separate-stderr discover-diff m.jsonl
	assert_output '{"id":"a","op":"upsert","text":"a","sha256":"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb","size":1}'
	assert_equal "$stderr" "discover-diff: m.jsonl:2: invalid JSON: unexpected end of input (column 18)"
	sync_state --state st docs
	rm docs/top.txt
	run -65 --separate-stderr discover-diff --quiet --keep-going --state st m.jsonl docs
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert a upsert c "
	[[ "$stderr" == *"m.jsonl:2: invalid JSON"* ]]
	[[ "$stderr" == *"1 document not found, but not reported deleted: a manifest had bad lines"* ]]
	run -0 --separate-stderr discover-diff --quiet --rejects rej.jsonl m.jsonl
	assert_equal "$(lines <(echo "$output"))" 2
	assert_equal "$(cat rej.jsonl)" '{"id":"b","text":'
}

# bad_line RECORD MESSAGE: a manifest of the one RECORD is refused (exit 65)
# with MESSAGE at its line
bad_line() {
	printf '%s\n' "$1" > m1.jsonl
	run -65 --separate-stderr discover-diff m1.jsonl
	assert_equal "$stderr" "discover-diff: m1.jsonl:1: $2"
}

@test "manifest records without a usable id, path or text are bad input" {
	bad_line '{"path":"x"}' "missing field 'id'"
	bad_line '{"id":3,"text":"x"}' "'id' is not a string"
	bad_line '{"id":"x","meta":{}}' "needs 'path' or 'text'"
	bad_line '{"id":"x","path":"a","text":"b"}' "both 'path' and 'text'"
	bad_line '{"id":"x","text":"b","sha256":"abc"}' "'sha256' is not 64 hex digits"
	bad_line '{"id":"x","path":"nope.md"}' "'nope.md': No such file or directory"
	mkdir adir
	bad_line '{"id":"x","path":"adir"}' "'adir': Is a directory"
}

@test "manifest: a text, id or path that is not valid Unicode (a lone surrogate) is bad input, as in chunk" {
	printf '%s\n' '{"id":"ok","text":"pair \ud83d\ude00"}' '{"id":"s","text":"a\ud800b"}' '{"id":"t","text":"t"}' > m.jsonl
	run -65 --separate-stderr discover-diff m.jsonl
	sha=$(printf 'pair \xf0\x9f\x98\x80' | sha256sum | cut -c1-64)
	assert_output "{\"id\":\"ok\",\"op\":\"upsert\",\"text\":\"pair \\ud83d\\ude00\",\"sha256\":\"$sha\",\"size\":9}"
	assert_equal "$stderr" "discover-diff: m.jsonl:2: 'text' is not valid Unicode: lone surrogate \\uD800 in string"
	# chunk refuses the same record: discover-diff must not announce it
	sed -n 2p m.jsonl > one.jsonl
	run -65 --separate-stderr chunk one.jsonl
	[[ "$stderr" == *"one.jsonl:1:"*"lone surrogate \\uD800"* ]]
	bad_line '{"id":"x","text":"low \udc00 first"}' "'text' is not valid Unicode: lone surrogate \\uDC00 in string"
	bad_line '{"id":"x\ud800","text":"t"}' "'id' is not valid Unicode: lone surrogate \\uD800 in string"
	bad_line '{"id":"x","path":"a\udbff.md"}' "'path' is not valid Unicode: lone surrogate \\uDBFF in string"
	# kept going past, the document is neither upserted nor deleted
	printf '%s\n' '{"id":"s","text":"s"}' '{"id":"t","text":"t"}' > m2.jsonl
	sync_state --state st m2.jsonl
	run -65 --separate-stderr discover-diff --quiet --keep-going --state st m.jsonl
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert ok "
}

@test "manifest: 'op' is bad input, and the message says how deletes happen" {
	printf '%s\n' '{"id":"a","text":"a"}' '{"id":"b","text":"b"}' > m.jsonl
	sync_state --state st m.jsonl
	printf '%s\n' '{"id":"a","text":"x","op":"delete"}' '{"id":"b","text":"b"}' > m.jsonl
	run -65 --separate-stderr discover-diff --state st m.jsonl
	assert_output ""
	assert_equal "$stderr" "discover-diff: m.jsonl:1: 'op' is not allowed in a manifest: deletes are found, not given (leave the document out, and a run whose sources all read without error reports it deleted)"
	# with --keep-going "a" is neither upserted nor deleted
	run -65 --separate-stderr discover-diff --quiet --keep-going --state st m.jsonl
	assert_output ""
	printf '%s\n' '{"id":"a","text":"a","op":"upsert"}' > m1.jsonl
	run -65 --separate-stderr discover-diff m1.jsonl
	[[ "$stderr" == *"m1.jsonl:1: 'op' is not allowed in a manifest"* ]]
	# leaving it out is how: then it is deleted
	printf '%s\n' '{"id":"b","text":"b"}' > m.jsonl
	run -0 discover-diff --quiet --state st m.jsonl
	assert_output '{"id":"a","op":"delete"}'
}

@test "manifest: a consumed member of the wrong type, or given twice, is bad input" {
	bad() {	# bad LINE MESSAGE
		printf '%s\n' "$1" > m1.jsonl
		run -65 --separate-stderr discover-diff m1.jsonl
		assert_equal "$output" ""
		assert_equal "$stderr" "discover-diff: m1.jsonl:1: $2"
	}
	bad '{"id":"a","text":"x","size":"big"}' "'size' is not a whole number of bytes"
	bad '{"id":"a","text":"x","size":-1}' "'size' is not a whole number of bytes"
	bad '{"id":"a","text":"x","size":1.5}' "'size' is not a whole number of bytes"
	bad '{"id":"a","path":"f","sha256":"'"$(printf '%064d' 1)"'","size":null}' "'size' is not a whole number of bytes"
	bad '{"id":"a","text":["x"]}' "'text' is not a string"
	bad '{"id":"a","path":5}' "'path' is not a string"
	bad '{"id":"a","text":"x","sha256":true}' "'sha256' is not 64 hex digits"
	bad '{"id":{"a":1},"text":"x"}' "'id' is not a string"
	bad '{"id":"a","text":"x","text":"y"}' "'text' given twice"
	bad '{"id":"a","id":"b","text":"x"}' "'id' given twice"
	bad '{"id":"a","text":"x","text":"y","\u0069d":"b"}' "'id' given twice"
	bad '{"id":"a","text":"x","size":1,"size":1}' "'size' given twice"
	# a size that discover-diff measures replaces the given one; members it
	# does not consume pass through verbatim, whatever their type
	printf '%s\n' '{"id":"a","text":"x","size":7,"meta":"m","n":[1,{"k":null}]}' > m1.jsonl
	run -0 discover-diff --quiet m1.jsonl
	assert_output '{"id":"a","op":"upsert","text":"x","sha256":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881","size":1,"meta":"m","n":[1,{"k":null}]}'
}

@test "invalid UTF-8 in a manifest line is bad input with FILE:LINE and column" {
	printf '{"id":"a","text":"ok"}\n{"id":"b","text":"x\xffy"}\n{"id":"c","text":"c"}\n' > m.jsonl
	run -65 --separate-stderr discover-diff m.jsonl
	assert_output --partial '"id":"a"'
	assert_equal "$(lines <(echo "$output"))" 1
	assert_equal "$stderr" "discover-diff: m.jsonl:2: invalid JSON: invalid UTF-8 (column 20)"
	# a surrogate encoded as raw bytes (CESU-8) is invalid UTF-8 too
	printf '{"id":"b","text":"x\xed\xa0\x80y"}\n' > cesu.jsonl
	run -65 --separate-stderr discover-diff - < cesu.jsonl
	assert_equal "$stderr" "discover-diff: stdin:1: invalid JSON: invalid UTF-8 (column 20)"
	run -0 --separate-stderr discover-diff --quiet --rejects rej.jsonl m.jsonl
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert a upsert c "
	cmp rej.jsonl <(sed -n 2p m.jsonl)
}

@test "a 50 MB manifest line is read whole" {
	python3 -c 'import sys; sys.stdout.write("{\"id\":\"big\",\"text\":\"" + "ab" * 25000000 + "\",\"m\":1}\n{\"id\":\"small\",\"text\":\"s\"}\n")' > big.jsonl
	want=$(python3 -c 'import hashlib; print(hashlib.sha256(b"ab" * 25000000).hexdigest())')
	run -0 --separate-stderr bash -c 'discover-diff big.jsonl > out.jsonl'
	assert_equal "$stderr" "discover-diff: 2 new, 0 changed, 0 deleted, 0 unchanged"
	run -0 python3 - "$want" <<-'PY'
	import json, sys
	recs = [json.loads(l) for l in open("out.jsonl")]
	big = recs[0]
	assert [r["id"] for r in recs] == ["big", "small"], [r["id"] for r in recs]
	assert big["size"] == 50000000 and big["sha256"] == sys.argv[1], (big["size"], big["sha256"])
	assert big["text"] == "ab" * 25000000 and big["m"] == 1
	PY
}

@test "a manifest document whose file is missing is not reported deleted" {
	printf 'x\n' > x.md
	printf '%s\n' '{"id":"x","path":"x.md"}' '{"id":"y","text":"y"}' > m.jsonl
	sync_state --state st m.jsonl
	rm x.md
	printf '%s\n' '{"id":"x","path":"x.md"}' > m.jsonl
	run -65 --separate-stderr discover-diff --quiet --keep-going --state st m.jsonl
	assert_output '{"id":"y","op":"delete"}'
	[[ "$stderr" == *"m.jsonl:1: 'x.md': No such file or directory"* ]]
	[[ "$stderr" == *"1 file or directory could not be read"* ]]
}

# --- unreadable files and directories ------------------------------------------------

@test "an unreadable file: exit 65, or --keep-going and neither upserted nor deleted" {
	nobody_dir
	make_docs
	printf 's\n' > docs/ref/secret.md
	touch -d "$OLD" docs/ref/secret.md
	chown -R nobody docs
	chmod 777 .
	as_nobody discover-diff --quiet --state st docs > out.jsonl
	acks_for out.jsonl | as_nobody discover-diff --quiet --state st --commit
	# changed, so it must be read (an unchanged stat would not open it)
	printf 'S\n' > docs/ref/secret.md
	chmod 000 docs/ref/secret.md
	rm docs/top.txt
	run -65 --separate-stderr as_nobody discover-diff --state st docs
	assert_equal "$stderr" "discover-diff: 'docs/ref/secret.md': Permission denied"
	run -65 --separate-stderr as_nobody discover-diff --keep-going --state st docs
	assert_output '{"id":"top.txt","op":"delete"}'
	assert_equal "$stderr" "$(printf '%s\n' "discover-diff: 'docs/ref/secret.md': Permission denied" \
		"discover-diff: 0 new, 0 changed, 1 deleted, 3 unchanged" \
		"discover-diff: 1 file or directory could not be read")"
	# --rehash must read every file, so it meets the same error
	run -65 --separate-stderr as_nobody discover-diff --rehash --state st docs
}

@test "an unreadable directory: exit 65, or --keep-going and no deletes under it" {
	nobody_dir
	make_docs
	chown -R nobody docs
	chmod 777 .
	as_nobody discover-diff --quiet --state st docs > out.jsonl
	acks_for out.jsonl | as_nobody discover-diff --quiet --state st --commit
	chmod 000 docs/guide
	rm docs/ref/api.md
	run -65 --separate-stderr as_nobody discover-diff --quiet --state st docs
	assert_equal "$stderr" "discover-diff: 'docs/guide': Permission denied"
	run -65 --separate-stderr as_nobody discover-diff --quiet --keep-going --state st docs
	assert_output '{"id":"ref/api.md","op":"delete"}'
	[[ "$stderr" == *"'docs/guide': Permission denied"* ]]
	[[ "$stderr" == *"2 documents not found, but not reported deleted: their directory could not be read"* ]]
	# the root itself unreadable: nothing is reported deleted
	chmod 755 docs/guide
	chmod 000 docs
	run -65 --separate-stderr as_nobody discover-diff --quiet --keep-going --state st docs
	assert_output ""
	[[ "$stderr" == *"'docs': Permission denied"* ]]
}

# --- the stat fast path --------------------------------------------------------------

@test "fast path: same size, mtime and inode is not re-read; --rehash and fresh edits are found" {
	make_docs
	sync_state --state st docs
	ino=$(stat -c %i docs/guide/intro.md)
	printf 'INTRO\n' > docs/guide/intro.md	# same size, same inode
	touch -d "$OLD" docs/guide/intro.md
	assert_equal "$(stat -c %i docs/guide/intro.md)" "$ino"
	run -0 discover-diff --quiet --state st docs
	assert_output ""
	run -0 discover-diff --quiet --rehash --state st docs
	assert_line --partial '"id":"guide/intro.md"'
	assert_equal "$(lines <(echo "$output"))" 1
	PLUMB_REHASH=1 run -0 discover-diff --quiet --state st docs
	assert_line --partial '"id":"guide/intro.md"'
	# a fresh edit changes the mtime: found without --rehash
	printf 'SETUP\n' > docs/guide/setup.md
	run -0 discover-diff --quiet --state st docs
	assert_line --partial '"id":"guide/setup.md"'
	refute_line --partial '"id":"guide/intro.md"'
}

@test "fast path: a file modified within two seconds of being read is not trusted (racy)" {
	mkdir docs
	printf 'aaaa\n' > docs/racy.md
	sync_state --state st docs
	# no stat stored: it was too fresh
	run -0 grep -c '"id":"racy.md","sha256":"[0-9a-f]*"}$' st
	touch -r docs/racy.md ref
	printf 'bbbb\n' > docs/racy.md
	touch -r ref docs/racy.md
	run -0 discover-diff --quiet --state st docs
	assert_line --partial '"id":"racy.md"'
}

@test "stat refresh: a touched but unchanged file gets its new stat at the next commit" {
	make_docs
	sync_state --state st docs
	touch -d '2021-05-06 07:08:09' docs/top.txt
	run -0 discover-diff --quiet --state st docs
	assert_output ""
	run -0 grep -c '"id":"top.txt"' st.pending
	run -0 --separate-stderr discover-diff --state st --commit < /dev/null
	assert_equal "$stderr" "discover-diff: committed 0 indexed, 0 deleted, 1 stat refresh"
	run -0 grep -c "\"id\":\"top.txt\".*\"mtime_ns\":$(date -d '2021-05-06 07:08:09' +%s)000000000" st
	# trusted now: a same-size change with the same mtime goes unseen
	printf 'TOP\n' > docs/top.txt
	touch -d '2021-05-06 07:08:09' docs/top.txt
	run -0 discover-diff --quiet --state st docs
	assert_output ""
}

@test "acked content that differs from what the run saw is stored without a stat" {
	make_docs
	discover-diff --quiet --state st docs > out.jsonl
	# the store indexed other content than this run hashed (an edit in between)
	printf '%s\n' '{"op":"indexed","doc_id":"top.txt","doc_sha256":"'"$(printf '%064d' 7)"'"}' > acks.jsonl
	discover-diff --quiet --state st --commit acks.jsonl
	run -0 grep -c '"id":"top.txt","sha256":"0*7"}$' st
	run -0 discover-diff --quiet --state st docs
	assert_line --partial '"id":"top.txt"'
}

# --- concurrency and crashes ----------------------------------------------------------

@test "concurrent commits to a file state both land" {
	seq 1 3000 | awk '{ printf "{\"id\":\"doc%04d\",\"text\":\"t%d\"}\n", $1, $1 }' > m.jsonl
	discover-diff --quiet m.jsonl > all.jsonl
	acks_for all.jsonl > acks.jsonl
	for round in 1 2 3 4 5; do
		rm -f st st.pending
		sed -n '1,1000p' acks.jsonl > a1
		sed -n '1001,2000p' acks.jsonl > a2
		sed -n '2001,3000p' acks.jsonl > a3
		discover-diff --quiet --state st --commit a1 & p1=$!
		discover-diff --quiet --state st --commit a2 & p2=$!
		discover-diff --quiet --state st --commit a3 & p3=$!
		wait $p1 && wait $p2 && wait $p3
		run -0 head -1 st
		assert_output '{"format":"plumb-state","version":1,"kind":"state","count":3000}'
	done
}

@test "kill -9 during --commit leaves the old state or the new one, never a torn file" {
	seq 1 40000 | awk '{ printf "{\"id\":\"doc/%05d.md\",\"text\":\"text %d\"}\n", $1, $1 }' > m.jsonl
	discover-diff --quiet m.jsonl > all.jsonl
	acks_for all.jsonl | discover-diff --quiet --state st --commit
	cp st old
	# the commit under test: re-index half with new content, delete a quarter
	sed -n '1~2p' all.jsonl | acks_for | sed 's/"doc_sha256":"[0-9a-f]*"/"doc_sha256":"'"$(printf '%064d' 5)"'"/' > acks.jsonl
	sed -n '2~4p' all.jsonl | sed 's/^{"id":\("[^"]*"\).*/{"op":"deleted","doc_id":\1}/' >> acks.jsonl
	cp old st.try
	t0=$(date +%s%N)
	discover-diff --quiet --state st.try --commit acks.jsonl
	# kill at random moments over 1.5 times the time a commit takes
	span=$(( ($(date +%s%N) - t0) * 3 / 2 / 1000 ))
	cp st.try new
	if cmp -s old new; then fail "the commit changed nothing"; fi
	olds=0 news=0
	for trial in $(seq 1 30); do
		cp old st
		discover-diff --quiet --state st --commit acks.jsonl &
		pid=$!
		us=$(( (RANDOM * 32768 + RANDOM) % span ))
		sleep "$((us / 1000000)).$(printf '%06d' $((us % 1000000)))"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" || true
		if cmp -s st old; then olds=$((olds + 1));
		elif cmp -s st new; then news=$((news + 1));
		else fail "trial $trial: the state is neither the old nor the new one"; fi
		run -0 discover-diff --quiet --state st - < /dev/null
	done
	echo "# $olds old, $news new" >&3
	# after a crash the next run and commit behave
	cp old st
	discover-diff --quiet --state st --commit acks.jsonl &
	pid=$!
	sleep 0.01
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" || true
	run -0 discover-diff --quiet --state st --commit acks.jsonl
	cmp st new
	run -0 discover-diff --quiet --state st m.jsonl
	assert_equal "$(lines <(echo "$output"))" 30000
}

@test "SIGTERM during --commit commits what was read, then dies of the signal" {
	make_docs
	discover-diff --quiet --state st docs > out.jsonl
	mkfifo fifo
	discover-diff --quiet --state st --commit < fifo 2> err &
	pid=$!
	exec 7> fifo
	acks_for out.jsonl | head -2 >&7
	sleep 0.5
	kill -TERM "$pid"
	wait "$pid" && status=0 || status=$?
	exec 7>&-
	assert_equal "$status" 143
	assert_equal "$(state_ids st | tr '\n' ' ')" "guide/intro.md guide/setup.md "
}

# --- Redis ------------------------------------------------------------------------

@test "redis state: new, changed, unchanged and deleted across committed runs" {
	make_docs
	P="t$BATS_TEST_NUMBER:"
	sync_state --state "$REDIS_URL" --state-prefix "$P" docs
	assert_equal "$(lines out.jsonl)" 4
	assert_equal "$(redis-cli -p "$REDIS_PORT" hlen "${P}docs")" 4
	assert_equal "$(redis-cli -p "$REDIS_PORT" get "${P}version")" 1
	run -0 redis-cli -p "$REDIS_PORT" hget "${P}docs" top.txt
	assert_output "$(sha256sum docs/top.txt | cut -c1-64) 4 $(date -d "$OLD" +%s)000000000 $(stat -c %i docs/top.txt)"
	run -0 --separate-stderr discover-diff --state "$REDIS_URL" --state-prefix "$P" docs
	assert_output ""
	assert_equal "$stderr" "discover-diff: 0 new, 0 changed, 0 deleted, 4 unchanged"
	printf 'changed!\n' > docs/top.txt
	printf 'n\n' > docs/ref/n.md
	rm docs/guide/setup.md
	run -0 discover-diff --quiet --state "$REDIS_URL" --state-prefix "$P" docs
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert ref/n.md upsert top.txt delete guide/setup.md "
	# partial acks: only top.txt and the delete
	grep -v '"ref/n.md"' <<< "$output" | acks_for > acks.jsonl
	run -0 --separate-stderr discover-diff --state "$REDIS_URL" --state-prefix "$P" --commit acks.jsonl
	assert_equal "$stderr" "discover-diff: committed 1 indexed, 1 deleted, 0 stat refreshes"
	run -0 discover-diff --quiet --state "$REDIS_URL" --state-prefix "$P" docs
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert ref/n.md "
	# another prefix is another state
	run -0 discover-diff --quiet --state "$REDIS_URL" --state-prefix "other$P" docs
	assert_equal "$(lines <(echo "$output"))" 4
	# the db number selects a database
	run -0 discover-diff --quiet --state "$REDIS_URL/3" --state-prefix "$P" docs
	assert_equal "$(lines <(echo "$output"))" 4
}

@test "redis state: the fast path, stat refreshes and the pending hash" {
	make_docs
	P="t$BATS_TEST_NUMBER:"
	PLUMB_STATE=$REDIS_URL PLUMB_STATE_PREFIX=$P sync_state docs
	printf 'INTRO\n' > docs/guide/intro.md
	touch -d "$OLD" docs/guide/intro.md
	touch -d '2022-02-02' docs/top.txt
	run -0 discover-diff --quiet --state "$REDIS_URL" --state-prefix "$P" docs
	assert_output ""
	assert_equal "$(redis-cli -p "$REDIS_PORT" hkeys "${P}pending")" "top.txt"
	run -0 --separate-stderr discover-diff --state "$REDIS_URL" --state-prefix "$P" --commit < /dev/null
	assert_equal "$stderr" "discover-diff: committed 0 indexed, 0 deleted, 1 stat refresh"
	run -0 redis-cli -p "$REDIS_PORT" hget "${P}docs" top.txt
	assert_output --partial " $(date -d 2022-02-02 +%s)000000000 "
	run -0 discover-diff --quiet --rehash --state "$REDIS_URL" --state-prefix "$P" docs
	assert_equal "$(ops <<< "$output" | tr '\n' ' ')" "upsert guide/intro.md "
	assert_equal "$(redis-cli -p "$REDIS_PORT" hkeys "${P}pending")" "guide/intro.md"
	assert_equal "$(redis-cli -p "$REDIS_PORT" keys "${P}pending.tmp*")" ""
}

@test "redis state: concurrent commits both land" {
	P="t$BATS_TEST_NUMBER:"
	seq 1 3000 | awk '{ printf "{\"id\":\"doc%04d\",\"text\":\"t%d\"}\n", $1, $1 }' > m.jsonl
	discover-diff --quiet m.jsonl > all.jsonl
	acks_for all.jsonl > acks.jsonl
	sed -n '1,1500p' acks.jsonl > a1
	sed -n '1501,3000p' acks.jsonl > a2
	# a pending record makes the commits read and WATCH, so they can conflict
	discover-diff --quiet --state "$REDIS_URL" --state-prefix "$P" m.jsonl > /dev/null
	for round in 1 2 3; do
		redis-cli -p "$REDIS_PORT" del "${P}docs" > /dev/null
		discover-diff --quiet --state "$REDIS_URL" --state-prefix "$P" --commit a1 & p1=$!
		discover-diff --quiet --state "$REDIS_URL" --state-prefix "$P" --commit a2 & p2=$!
		wait $p1 && wait $p2
		assert_equal "$(redis-cli -p "$REDIS_PORT" hlen "${P}docs")" 3000
	done
}

@test "redis state: a commit never drops a pending entry that a concurrent run replaced" {
	make_docs
	P="t$BATS_TEST_NUMBER:"
	discover-diff --quiet --state "$REDIS_URL" --state-prefix "$P" docs > out1.jsonl
	grep '"top.txt"' out1.jsonl | acks_for > acks.jsonl
	# hold the commit between its reads and its MULTI ... EXEC
	port=$(free_port)
	python3 "$BATS_TEST_DIRNAME/helpers/hold-proxy.py" "$port" "$REDIS_PORT" MULTI held release 3>&- &
	PROXY_PID=$!
	for _ in $(seq 100); do (: < "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
	discover-diff --quiet --state "redis://127.0.0.1:$port" --state-prefix "$P" --commit acks.jsonl 3>&- &
	commit=$!
	for _ in $(seq 200); do [ -e held ] && break; sleep 0.05; done
	[ -e held ]
	# meanwhile top.txt changes and a run records the new version as pending
	printf 'top, second version\n' > docs/top.txt
	discover-diff --quiet --state "$REDIS_URL" --state-prefix "$P" docs > out2.jsonl
	new=$(sha256sum docs/top.txt | cut -c1-64)
	grep '"top.txt"' out2.jsonl | grep -q "\"sha256\":\"$new\""
	[[ "$(redis-cli -p "$REDIS_PORT" hget "${P}pending" top.txt)" == "$new"* ]]
	touch release
	wait "$commit"
	# the commit recorded the first version and left the second one pending
	[[ "$(redis-cli -p "$REDIS_PORT" hget "${P}docs" top.txt)" == "$(sha256sum <<< top | cut -c1-64) "* ]]
	[[ "$(redis-cli -p "$REDIS_PORT" hget "${P}pending" top.txt)" == "$new"* ]]
}

@test "redis: unreachable is 69, a bad URL or refused password is 2, the password never printed" {
	make_docs
	port=$(free_port)
	run -69 --separate-stderr discover-diff --timeout 2 --state "redis://:hunter2@127.0.0.1:$port" docs
	assert_equal "$output" ""
	[[ "$stderr" == "discover-diff: redis 'redis://:***@127.0.0.1:$port': "* ]]
	[[ "$stderr" != *hunter2* ]]
	run -69 --separate-stderr discover-diff --state "redis://127.0.0.1:$port" --commit < /dev/null
	run -2 --separate-stderr discover-diff --state "redis://127.0.0.1:notaport" docs
	[[ "$stderr" == *"bad port in Redis URL"* ]]
	run -2 --separate-stderr discover-diff --state "redis://:hunter2@127.0.0.1:$REDIS_PORT" docs
	[[ "$stderr" == *"AUTH"* ]]
	[[ "$stderr" != *hunter2* ]]
}

@test "--state with a scheme other than redis:// is a usage error, never a file (rediss://, typos, PLUMB_STATE)" {
	make_docs
	run -2 --separate-stderr discover-diff --state "rediss://:hunter2@127.0.0.1:$REDIS_PORT" docs
	assert_equal "$output" ""
	assert_equal "$stderr" "discover-diff: 'rediss://:***@127.0.0.1:$REDIS_PORT': rediss:// (Redis over TLS) is not supported; use redis://, through a TLS tunnel if the network is not trusted"
	run -2 --separate-stderr discover-diff --state "rediss://127.0.0.1:$REDIS_PORT" --commit < /dev/null
	[[ "$stderr" == *"rediss:// (Redis over TLS) is not supported"* ]]
	PLUMB_STATE="rediss://127.0.0.1:$REDIS_PORT" run -2 --separate-stderr discover-diff docs
	[[ "$stderr" == *"rediss:// (Redis over TLS) is not supported"* ]]
	run -2 --separate-stderr discover-diff --state "reids://127.0.0.1:$REDIS_PORT/1" docs
	assert_equal "$stderr" "discover-diff: 'reids://127.0.0.1:$REDIS_PORT/1': unsupported URL scheme 'reids://': only redis:// is supported (a path that looks like a URL can be written ./PATH)"
	PLUMB_STATE="http://127.0.0.1:$REDIS_PORT" run -2 --separate-stderr discover-diff docs
	[[ "$stderr" == *"unsupported URL scheme 'http://'"* ]]
	run -2 --separate-stderr discover-diff --state "redis:/127.0.0.1:$REDIS_PORT" docs
	[[ "$stderr" == *"a Redis URL starts with redis://"* ]]
	# none of them left a file or directory behind
	assert_equal "$(find . -name '*:*')" ""
	# the scheme is case-insensitive (RFC 3986): this is Redis, not a file
	run -0 discover-diff --quiet --state "REDIS://127.0.0.1:$REDIS_PORT" --state-prefix t-case: docs
	assert_equal "$(lines <(echo "$output"))" 4
	assert_equal "$(redis-cli -p "$REDIS_PORT" hlen t-case:pending)" 4
	assert_equal "$(find . -name '*:*')" ""
	# a file whose name looks like a URL is written with ./
	run -0 discover-diff --quiet --state ./rediss://st docs
	[ -f rediss:/st.pending ]
}

@test "lib/redisurl: embed --cache refuses rediss:// too, rather than caching in a directory" {
	mkdir rediss:	# as an older discover-diff --state rediss://... left it
	echo '{"id":"a","text":"hello"}' > in.jsonl
	run -2 --separate-stderr embed --cache "rediss://127.0.0.1:$REDIS_PORT" in.jsonl
	assert_equal "$output" ""
	assert_equal "$stderr" "embed: cache: rediss:// (Redis over TLS) is not supported; use redis://, through a TLS tunnel if the network is not trusted"
	assert_equal "$(find rediss: -mindepth 1)" ""
	run -0 embed --cache "./rediss://127.0.0.1:$REDIS_PORT" in.jsonl
	[ -n "$(find rediss: -type f)" ]
}

# --- the manual ------------------------------------------------------------------------

@test "the man page's EXAMPLES run and succeed" {
	man_examples "$T_ROOT/docs/discover-diff.1" > examples.sh
	[ "$(lines examples.sh)" -ge 8 ]
	run -0 --separate-stderr bash -e -o pipefail examples.sh
	assert_line --partial '{"id":"old.md","op":"delete"}'
	assert_line --partial '"id":"faq/1","op":"upsert","text":"How?"'
}

@test "messages show file names that are not valid UTF-8 escaped, as \\xNN" {
	mkdir docs
	printf 'x\n' > docs/ok.md
	printf 'x\n' > "docs/bad$(printf '\xff')name.md"
	run -65 --separate-stderr discover-diff docs
	assert_equal "$stderr" "discover-diff: 'docs/bad\\xFFname.md': file name is not valid UTF-8"
	run -65 --separate-stderr discover-diff --quiet --keep-going docs
	assert_output --partial '"id":"ok.md"'
	assert_equal "$stderr" "$(printf '%s\n' "discover-diff: 'docs/bad\\xFFname.md': file name is not valid UTF-8" \
		"discover-diff: 1 file or directory could not be read")"
	run -2 --separate-stderr discover-diff "$(printf 'no\xfe\nsuch\\')"
	assert_equal "$stderr" "discover-diff: 'no\\xFE\\x0Asuch\\\\': No such file or directory"
	# a name that is valid UTF-8 is shown as it is, backslash and all
	run -2 --separate-stderr discover-diff 'caf\é'
	assert_equal "$stderr" "discover-diff: 'caf\\é': No such file or directory"
}

@test "--help and the SYNOPSIS show the same options, in both forms" {
	# options as the SYNOPSIS source writes them, one form per line
	synopsis=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' "$T_ROOT/docs/discover-diff.1" | grep -v '^\.SH' |
		sed 's/\\-/-/g' | awk '/^\.br$/ { print ""; next } { printf "%s ", $0 } END { print "" }')
	run -0 discover-diff --help
	usage=$(sed -n '/^usage:/,/^$/p' <<< "$output" | sed 's/^usage: //; s/^ *//' | tr '\n' ' ' |
		sed 's/ discover-diff --commit/\ndiscover-diff --commit/; s/  */ /g')
	for form in 1 2; do
		opts_man=$(sed -n "${form}p" <<< "$synopsis" | grep -o -- '-[-a-z]*' | sort -u | tr '\n' ' ')
		opts_help=$(sed -n "${form}p" <<< "$usage" | grep -o -- '-[-a-z]*' | sort -u | tr '\n' ' ')
		assert_equal "$opts_man" "$opts_help"
	done
	# and each form has every option that form accepts
	for o in --timeout --state --state-prefix --keep-going --rejects -q -v; do
		sed -n 2p <<< "$usage" | grep -q -- " \[$o[] ]" || fail "--commit form lacks $o"
		sed -n 1p <<< "$usage" | grep -q -- " \[$o[] ]" || fail "first form lacks $o"
	done
	run -0 --separate-stderr discover-diff --commit --state st --rejects rej -q -v --timeout 3 < /dev/null
	assert_equal "$stderr" ""
}

@test "plumb(7) SEE ALSO names every other page in docs/" {
	see=$(sed -n '/^\.SH SEE ALSO/,$p' "$T_ROOT/docs/plumb.7" | sed -n 's/^\.BR \([^ ]*\) (\([0-9]\)).*/\1.\2/p' |
		sed 's/\\-/-/g' | sort | tr '\n' ' ')
	pages=$(cd "$T_ROOT/docs" && ls *.[0-9] | grep -vx plumb.7 | sort | tr '\n' ' ')
	assert_equal "$see" "$pages"
}

@test "a document written out but never committed, then removed, is still deleted" {
	mkdir docs && echo one > docs/a.md && echo two > docs/b.md
	# a run whose acks never reach --commit (the store may hold both)
	run -0 discover-diff --quiet --state st docs
	assert_equal "$(grep -c '"op":"upsert"' <<< "$output")" 2
	rm docs/b.md
	run -0 discover-diff --quiet --state st docs
	assert_output --partial '{"id":"b.md","op":"delete"}'
	# until the delete is acknowledged, it is asked for again
	run -0 discover-diff --quiet --state st docs
	assert_output --partial '{"id":"b.md","op":"delete"}'
	printf '%s\n' '{"op":"deleted","doc_id":"b.md"}' | discover-diff --quiet --state st --commit
	run -0 discover-diff --quiet --state st docs
	refute_output --partial 'b.md'
}

@test "a version stored but never committed is written again when the content goes back" {
	mkdir docs && echo one > docs/a.md
	discover-diff --quiet --state st docs | acks_for | discover-diff --quiet --state st --commit
	echo changed > docs/a.md
	run -0 discover-diff --quiet --state st docs	# stored, never committed
	echo one > docs/a.md
	touch -d '-1 hour' docs/a.md
	run -0 discover-diff --quiet --state st docs
	assert_output --partial '{"id":"a.md","op":"upsert"'
	acks_for <<< "$output" | discover-diff --quiet --state st --commit
	run -0 discover-diff --quiet --state st docs
	assert_output ""
}
