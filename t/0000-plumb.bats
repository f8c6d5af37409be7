#!/usr/bin/env bats
# What every program shares: --help, --version, a man page that renders
# cleanly, and the one exit-status table.

load test_helper

programs() { for f in "$T_ROOT"/tools/*.c; do basename "$f" .c; done; }

@test "every program answers --help and --version on stdout with exit 0" {
	for p in $(programs); do
		run -0 --separate-stderr "$p" --help
		[[ "$output" == "usage: $p"* ]] || { echo "$p --help: $output"; false; }
		[ -z "$stderr" ]
		run -0 "$p" --version
		[[ "$output" == "$p (plumb) "* ]]
	done
}

@test "every program rejects an unknown option with exit 2 and its usage" {
	for p in $(programs); do
		run -2 --separate-stderr "$p" --no-such-option
		[[ "$stderr" == *"usage: $p"* ]] || { echo "$p: $stderr"; false; }
		[ -z "$output" ]
	done
}

@test "every program has a man page that renders without warnings" {
	for p in $(programs); do
		[ -f "$T_ROOT/docs/$p.1" ] || { echo "no docs/$p.1"; false; }
		run -0 --separate-stderr groff -man -ww -z "$T_ROOT/docs/$p.1"
		[ -z "$stderr" ] || { echo "$p.1: $stderr"; false; }
		grep -q '^\.SH EXIT STATUS' "$T_ROOT/docs/$p.1"
		grep -q '^\.SH EXAMPLES' "$T_ROOT/docs/$p.1"
		grep -q '^\.SH ENVIRONMENT' "$T_ROOT/docs/$p.1"
	done
	run -0 --separate-stderr groff -man -ww -z "$T_ROOT/docs/plumb.7"
	[ -z "$stderr" ]
}

@test "the exit statuses in plumb(7) are those of lib/exitcode.h" {
	codes_h=$(grep -o '= [0-9]*,' "$T_ROOT/lib/exitcode.h" | tr -dc '0-9\n' | sort -n | tr '\n' ' ')
	codes_7=$(sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$T_ROOT/docs/plumb.7" | grep -E '^[0-9]+$' | sort -n | tr '\n' ' ')
	assert_equal "$codes_7" "$codes_h"
}

@test "make install puts programs and man pages under DESTDIR and PREFIX" {
	run -0 make -s -C "$T_ROOT" install DESTDIR="$BATS_TEST_TMPDIR/root" PREFIX=/opt/plumb
	for p in $(programs); do
		[ -x "$BATS_TEST_TMPDIR/root/opt/plumb/bin/$p" ]
		[ -f "$BATS_TEST_TMPDIR/root/opt/plumb/share/man/man1/$p.1" ]
	done
	[ -f "$BATS_TEST_TMPDIR/root/opt/plumb/share/man/man7/plumb.7" ]
}
