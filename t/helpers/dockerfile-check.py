#!/usr/bin/env python3
"""Check contrib/Dockerfile against plumb's rules for its image, without a
Docker engine (none runs on the machines the tests run on).

usage: dockerfile-check.py [--deps DEPS_SH] [--dockerignore FILE] [--bin DIR]
                           DOCKERFILE

What it checks:
  - it parses: instructions, line continuations, comments, exec (JSON) forms;
  - a multi-stage build whose every stage is named, FROM Debian 12 pinned by a
    tag (debian:bookworm, :12, :12.N, dated bookworm-YYYYMMDD, never latest or
    no tag), the last stage a -slim one;
  - the last stage runs as a numeric, non-root USER uid:gid, created there with
    that uid and gid, and owns its absolute WORKDIR;
  - no ADD of a URL or a git repository;
  - every RUN that uses apt-get updates, installs with -y and
    --no-install-recommends and removes /var/lib/apt/lists/* in the same RUN;
  - the build stages install every -dev package of contrib/deps.sh (--deps)
    with build-essential and pkg-config, run make install DESTDIR=/out
    PREFIX=/usr, and the last stage copies from a build stage, installs no
    compiler or -dev package, and each package it installs is in this
    machine's Debian archive index (apt-cache show);
  - pipelines/ is copied to /usr/share/plumb/pipelines, PLUMB_PIPELINES points
    there; ENTRYPOINT and CMD, if any, are in exec form;
  - with --dockerignore: every local COPY source is in the build context, and
    .git, build/ and bin/ are not;
  - with --bin: every shared library each program there links (ldd) belongs
    (dpkg -S) to a package the last stage installs or to one of their
    dependencies (apt-cache depends --recurse), so the image can run them.

Prints "DOCKERFILE:LINE: message" for each violation and exits 1, or one line
"ok: ..." and exits 0; exits 2 on a usage error.
"""
import argparse
import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys

DEBIAN_NAMES = ("debian", "library/debian", "docker.io/library/debian")
FULL_TAG = re.compile(r"^(12(\.\d+)?|bookworm(-\d{8})?)$")
SLIM_TAG = re.compile(r"^(12(\.\d+)?|bookworm(-\d{8})?)-slim$")
SANITIZER_RUNTIME = re.compile(r"/lib(a|ub|l|t|hwa)san\.so")
BUILD_ONLY = re.compile(r"(-dev$|^build-essential$|^pkg-config$|^gcc(-\d+)?$|^g\+\+|^make$|^cpp(-\d+)?$)")


class Instr:
    def __init__(self, line, keyword, args):
        self.line, self.keyword, self.args = line, keyword, args

    def exec_form(self):
        """The JSON array of an exec-form instruction, or None."""
        try:
            v = json.loads(self.args)
        except ValueError:
            return None
        return v if isinstance(v, list) and all(isinstance(x, str) for x in v) else None


def parse(text):
    """Instructions of a Dockerfile, as BuildKit's parser reads them."""
    lines = text.split("\n")
    escape = "\\"
    # parser directives: comments of the form "# key=value" at the very top
    for ln in lines:
        m = re.match(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", ln)
        if not m:
            break
        if m.group(1).lower() == "escape":
            escape = m.group(2)
    out, buf, start = [], [], None
    for i, raw in enumerate(lines, 1):
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue  # comment lines inside a continuation are dropped
        if start is None:
            start = i
        if s.endswith(escape):
            buf.append(raw.rstrip()[:-1])
            continue
        buf.append(raw)
        whole = " ".join(b.strip() for b in buf).strip()
        buf, line = [], start
        start = None
        if not whole:
            continue
        kw, _, args = whole.partition(" ")
        out.append(Instr(line, kw.upper(), args.strip()))
    if buf:
        out.append(Instr(start, "?", "a line continuation runs past the end of the file"))
    return out


def shell_commands(script):
    """Split a RUN shell script into simple commands (lists of words)."""
    lex = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    cmds, cur = [], []
    for tok in lex:
        if tok in ("&&", "||", ";", "|", "&"):
            if cur:
                cmds.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        cmds.append(cur)
    return cmds


def strip_env_prefix(cmd):
    """A command without its leading NAME=value assignments."""
    i = 0
    while i < len(cmd) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", cmd[i]):
        i += 1
    return cmd[i:]


def apt_packages(cmd):
    """The packages of an apt-get install command, or None if it is not one."""
    cmd = strip_env_prefix(cmd)
    if len(cmd) < 2 or cmd[0] not in ("apt-get", "apt"):
        return None
    words = [w for w in cmd[1:] if not w.startswith("-")]
    if not words or words[0] != "install":
        return None
    return words[1:]


class Checker:
    def __init__(self, path):
        self.path = path
        self.errors = []

    def err(self, line, msg):
        self.errors.append((line, msg))

    def run(self, deps, dockerignore, bindir):
        with open(self.path, encoding="utf-8") as f:
            instrs = parse(f.read())
        for ins in instrs:
            if ins.keyword == "?":
                self.err(ins.line, ins.args)
        stages = []  # [{"name", "image", "line", "instrs"}]
        for ins in instrs:
            if ins.keyword == "FROM":
                words = [w for w in ins.args.split() if not w.startswith("--")]
                name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
                if not words or len(words) not in (1, 3) or (len(words) == 3 and not name):
                    self.err(ins.line, "FROM: cannot parse '%s'" % ins.args)
                stages.append({"name": name, "image": words[0] if words else "", "line": ins.line,
                               "instrs": []})
            elif not stages:
                if ins.keyword != "ARG":
                    self.err(ins.line, "%s before the first FROM" % ins.keyword)
            else:
                stages[-1]["instrs"].append(ins)
        if len(stages) < 2:
            self.err(stages[0]["line"] if stages else 1,
                     "not a multi-stage build: want a build stage and a runtime stage")
            return
        names = set()
        for i, st in enumerate(stages):
            last = i == len(stages) - 1
            if not st["name"]:
                self.err(st["line"], "FROM %s: every stage needs a name (AS name)" % st["image"])
            self.check_image(st, last, names)
            names.add(st["name"])
            for ins in st["instrs"]:
                self.check_instr(ins)
        final, builds = stages[-1], stages[:-1]
        self.check_build(builds, deps)
        self.check_final(final, builds)
        if dockerignore:
            self.check_context(instrs, dockerignore)
        if bindir:
            self.check_libraries(final, bindir)

    def check_image(self, st, last, earlier):
        img = st["image"]
        if img in earlier:
            if last:
                self.err(st["line"], "the runtime stage must start from debian:bookworm-slim, not from stage '%s'" % img)
            return
        ref, _, digest = img.partition("@")
        name, sep, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "")
        if name not in DEBIAN_NAMES:
            self.err(st["line"], "FROM %s: want a Debian 12 image (debian:bookworm, debian:bookworm-slim)" % img)
            return
        if not tag:
            self.err(st["line"], "FROM %s: pin the image by a tag (debian:bookworm-slim), not an implicit latest" % img)
            return
        want = SLIM_TAG if last else re.compile(FULL_TAG.pattern + "|" + SLIM_TAG.pattern)
        if not want.match(tag):
            if last:
                self.err(st["line"], "FROM %s: the runtime stage must be Debian 12 slim (debian:bookworm-slim or debian:12-slim)" % img)
            else:
                self.err(st["line"], "FROM %s: want Debian 12 pinned by tag (debian:bookworm or debian:12), not '%s'" % (img, tag))

    def check_instr(self, ins):
        if ins.keyword == "ADD":
            for src in self.sources(ins)[0]:
                if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", src) or src.startswith("git@"):
                    self.err(ins.line, "ADD %s: no ADD of URLs or repositories; fetch nothing at build time that is not pinned" % src)
        if ins.keyword == "RUN":
            script = ins.args
            form = ins.exec_form()
            if form is not None:
                script = " ".join(shlex.quote(w) for w in form)
            if not re.search(r"\bapt(-get)?\s", script):
                return
            try:
                cmds = shell_commands(script)
            except ValueError as e:
                self.err(ins.line, "RUN: cannot parse the shell command: %s" % e)
                return
            update = install = clean = None
            for n, c in enumerate(cmds):
                c2 = strip_env_prefix(c)
                if c2[:2] in (["apt-get", "update"], ["apt", "update"]):
                    update = n
                if apt_packages(c) is not None:
                    install = n
                    if "-y" not in c2 and "--yes" not in c2 and "-qy" not in c2:
                        self.err(ins.line, "RUN: apt-get install without -y")
                    if "--no-install-recommends" not in c2:
                        self.err(ins.line, "RUN: apt-get install without --no-install-recommends")
                    for p in apt_packages(c):
                        if "$" in p or "*" in p:
                            self.err(ins.line, "RUN: apt-get install of '%s': name packages literally" % p)
                if c2[:2] == ["rm", "-rf"] and any(a.rstrip("/*") == "/var/lib/apt/lists" for a in c2[2:]):
                    clean = n
            if install is not None and (update is None or update > install):
                self.err(ins.line, "RUN: apt-get update and apt-get install belong in the same RUN, update first")
            if (install is not None or update is not None) and (clean is None or clean < max(x for x in (install, update) if x is not None)):
                self.err(ins.line, "RUN: the apt lists are not cleaned: end the same RUN with rm -rf /var/lib/apt/lists/*")

    @staticmethod
    def sources(ins):
        """(sources, destination, flags) of a COPY or ADD."""
        form = ins.exec_form()
        words = form if form is not None else ins.args.split()
        flags = [w for w in words if w.startswith("--")]
        rest = [w for w in words if not w.startswith("--")]
        return rest[:-1], (rest[-1] if rest else ""), flags

    def stage_packages(self, st):
        pkgs = []
        for ins in st["instrs"]:
            if ins.keyword != "RUN":
                continue
            try:
                cmds = shell_commands(ins.args)
            except ValueError:
                continue
            for c in cmds:
                p = apt_packages(c)
                if p:
                    pkgs += [(ins.line, x) for x in p]
        return pkgs

    def check_build(self, builds, deps):
        have = {p for st in builds for _, p in self.stage_packages(st)}
        if deps:
            with open(deps, encoding="utf-8") as f:
                m = re.search(r'^PKGS="([^"]*)"', f.read(), re.M)
            if not m:
                self.err(builds[0]["line"], "%s: no PKGS=\"...\" list found" % deps)
            else:
                want = [p for p in m.group(1).split() if p.endswith("-dev") or p in ("build-essential", "pkg-config")]
                for p in want:
                    if p not in have:
                        self.err(builds[0]["line"], "the build stage does not install %s (in %s)" % (p, deps))
        ok = False
        for st in builds:
            for ins in st["instrs"]:
                if ins.keyword == "RUN":
                    for c in shell_commands(ins.args):
                        if c[:1] == ["make"] and "install" in c and "DESTDIR=/out" in c and "PREFIX=/usr" in c:
                            ok = True
        if not ok:
            self.err(builds[0]["line"], "no build stage runs 'make install DESTDIR=/out PREFIX=/usr'")

    def check_final(self, final, builds):
        line = final["line"]
        pkgs = self.stage_packages(final)
        if not pkgs:
            self.err(line, "the runtime stage installs no packages: the programs need their shared libraries")
        for ln, p in pkgs:
            if BUILD_ONLY.search(p):
                self.err(ln, "the runtime stage installs %s: build tools and -dev packages belong in the build stage" % p)
            elif subprocess.run(["apt-cache", "show", p], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode != 0:
                self.err(ln, "package '%s' is not in the Debian archive index (apt-cache show %s fails)" % (p, p))
        self.runtime_packages = [p for _, p in pkgs]
        user = workdir = None
        env = {}
        copied_from = copied_pipelines = False
        build_names = {st["name"] for st in builds}
        runs = []
        for ins in final["instrs"]:
            k = ins.keyword
            if k == "USER":
                user = ins
            elif k == "WORKDIR":
                workdir = ins
            elif k == "ENV":
                env.update(self.env_pairs(ins.args))
            elif k == "RUN":
                runs.append(ins)
            elif k in ("COPY", "ADD"):
                srcs, dst, flags = self.sources(ins)
                frm = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
                if frm and frm[0] in build_names:
                    copied_from = True
                if not frm and any(s.rstrip("/") == "pipelines" for s in srcs) and \
                        dst.rstrip("/") == "/usr/share/plumb/pipelines":
                    copied_pipelines = True
            elif k in ("ENTRYPOINT", "CMD"):
                if ins.exec_form() is None:
                    self.err(ins.line, "%s in shell form: use the exec form [\"prog\", ...] so that "
                             "each program can be the entrypoint and gets signals itself" % k)
        if not copied_from:
            self.err(line, "the runtime stage copies nothing from a build stage (COPY --from=build)")
        if not copied_pipelines:
            self.err(line, "the runtime stage does not copy pipelines/ to /usr/share/plumb/pipelines")
        if env.get("PLUMB_PIPELINES") != "/usr/share/plumb/pipelines":
            self.err(line, "ENV PLUMB_PIPELINES=/usr/share/plumb/pipelines is not set in the runtime stage")
        if user is None:
            self.err(line, "the runtime stage sets no USER: it would run as root")
            return
        m = re.match(r"^(\d+)(?::(\d+))?$", user.args)
        if not m:
            self.err(user.line, "USER %s: want a numeric uid:gid, so that Kubernetes' runAsNonRoot can verify it" % user.args)
            return
        uid, gid = m.group(1), m.group(2)
        if int(uid) == 0 or (gid is not None and int(gid) == 0):
            self.err(user.line, "USER %s: root" % user.args)
            return
        if gid is None:
            self.err(user.line, "USER %s: give the group too (uid:gid)" % user.args)
            gid = uid
        script = "\n".join(r.args for r in runs)
        if not re.search(r"\b(useradd|adduser)\b[^&;]*--uid[ =]%s\b" % uid, script):
            self.err(user.line, "USER %s: no useradd --uid %s in the runtime stage" % (user.args, uid))
        if not re.search(r"\b(groupadd|addgroup)\b[^&;]*--gid[ =]%s\b" % gid, script):
            self.err(user.line, "USER %s: no groupadd --gid %s in the runtime stage" % (user.args, gid))
        if workdir is None or not workdir.args.startswith("/"):
            self.err(line, "the runtime stage needs an absolute WORKDIR that its user owns")
            return
        wd = workdir.args.rstrip("/") or "/"
        owned = False
        for r in runs:
            for c in shell_commands(r.args):
                if c[:1] == ["install"] and "-d" in c and wd in [a.rstrip("/") for a in c] and \
                        "-o" in c and c[c.index("-o") + 1] in (uid, "plumb"):
                    owned = True
                if c[:1] == ["chown"] and wd in [a.rstrip("/") for a in c] and \
                        any(a.split(":")[0] == uid for a in c[1:]):
                    owned = True
        if not owned:
            self.err(workdir.line, "WORKDIR %s is not made the user's (install -d -o %s or chown %s:%s)" % (wd, uid, uid, gid))

    @staticmethod
    def env_pairs(args):
        out = {}
        words = shlex.split(args)
        if words and "=" not in words[0]:
            return {words[0]: " ".join(words[1:])}
        for w in words:
            k, _, v = w.partition("=")
            out[k] = v
        return out

    def check_context(self, instrs, path):
        rules = []
        with open(path, encoding="utf-8") as f:
            for ln in f:
                ln = ln.strip()
                if ln and not ln.startswith("#"):
                    neg = ln.startswith("!")
                    rules.append((neg, ln.lstrip("!").strip("/")))

        def included(p):
            p = os.path.normpath(p).strip("/")
            keep = True
            for neg, pat in rules:
                parts = p.split("/")
                hit = any(fnmatch.fnmatch("/".join(parts[:i]), pat) for i in range(1, len(parts) + 1))
                if hit:
                    keep = neg
            return keep

        for ins in instrs:
            if ins.keyword in ("COPY", "ADD"):
                srcs, _, flags = self.sources(ins)
                if any(f.startswith("--from=") for f in flags):
                    continue
                for s in srcs:
                    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s) or s.startswith("git@"):
                        continue  # reported as an ADD of a URL
                    if not included(s):
                        self.err(ins.line, "%s %s: excluded from the build context by %s" % (ins.keyword, s, path))
        for p in (".git", "build", "bin"):
            if included(p):
                self.err(1, "%s: %s/ is sent with the build context" % (path, p))

    def check_libraries(self, final, bindir):
        progs = sorted(os.path.join(bindir, f) for f in os.listdir(bindir))
        progs = [p for p in progs if os.path.isfile(p) and os.access(p, os.X_OK)]
        if not progs:
            self.err(final["line"], "no programs in %s to check" % bindir)
            return
        libs = {}  # path -> programs
        for p in progs:
            r = subprocess.run(["ldd", p], capture_output=True, text=True)
            for ln in r.stdout.splitlines():
                m = re.match(r"^\s*(\S+)\s*=>\s*(\S+)", ln)
                if m and m.group(2) == "not":
                    self.err(final["line"], "%s: %s is not found on this machine" % (p, m.group(1)))
                elif m:
                    libs.setdefault(m.group(2), []).append(os.path.basename(p))
                else:
                    m = re.match(r"^\s*(/\S+)\s", ln)
                    if m:
                        libs.setdefault(m.group(1), []).append(os.path.basename(p))
        owner = self.owners(list(libs))
        if not self.runtime_packages:
            return
        closure = self.closure(self.runtime_packages)
        # A SAN=1 test build links the sanitizer runtimes and what they need
        # (libstdc++); the image is built without sanitizers, so those
        # packages are not asked of it.
        san = {owner[lib] for lib in libs if SANITIZER_RUNTIME.search(lib) and owner.get(lib)}
        san_only = self.closure(sorted(san)) - closure if san else set()
        for lib, users in sorted(libs.items()):
            if SANITIZER_RUNTIME.search(lib) or owner.get(lib) in san_only:
                continue
            pkg = owner.get(lib)
            if pkg is None:
                self.err(final["line"], "%s (linked by %s) belongs to no Debian package" % (lib, ", ".join(users)))
            elif pkg not in closure:
                self.err(final["line"], "%s (linked by %s) is in package %s, which the runtime stage neither "
                         "installs nor gets as a dependency" % (lib, ", ".join(sorted(set(users))), pkg))
        self.nlibs = len(libs)

    @staticmethod
    def closure(pkgs):
        """pkgs and every package they depend on (Depends, Pre-Depends)."""
        r = subprocess.run(["apt-cache", "depends", "--recurse", "--important", "--no-recommends",
                            "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                            "--no-enhances"] + list(pkgs), capture_output=True, text=True)
        return {ln.strip().strip("<>") for ln in r.stdout.splitlines() if ln and not ln[0].isspace()}

    @staticmethod
    def owners(paths):
        """Map each library path to its Debian package (dpkg -S), trying the
        path as given, its /usr twin (merged /usr), and the file it resolves to
        (alternatives such as libopenblas.so.0)."""
        cands = {}
        for p in paths:
            c = [p]
            if p.startswith("/usr/"):
                c.append(p[4:])
            else:
                c.append("/usr" + p)
            real = os.path.realpath(p)
            c += [real, real[4:] if real.startswith("/usr/") else "/usr" + real]
            cands[p] = c
        allpaths = sorted({x for c in cands.values() for x in c})
        r = subprocess.run(["dpkg", "-S"] + allpaths, capture_output=True, text=True)
        found = {}
        for ln in r.stdout.splitlines():
            pkgs, _, path = ln.partition(": ")
            found[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
        return {p: next((found[x] for x in c if x in found), None) for p, c in cands.items()}


def main():
    ap = argparse.ArgumentParser(prog="dockerfile-check.py", description="check plumb's Dockerfile")
    ap.add_argument("--deps", help="contrib/deps.sh: the build stage must install its -dev packages")
    ap.add_argument("--dockerignore", help="the build context's .dockerignore")
    ap.add_argument("--bin", help="a directory of built programs to check with ldd")
    ap.add_argument("dockerfile")
    a = ap.parse_args()
    for f in (a.dockerfile, a.deps, a.dockerignore):
        if f and not os.path.isfile(f):
            print("dockerfile-check.py: '%s': no such file" % f, file=sys.stderr)
            return 2
    if a.bin and not os.path.isdir(a.bin):
        print("dockerfile-check.py: '%s': no such directory" % a.bin, file=sys.stderr)
        return 2
    c = Checker(a.dockerfile)
    c.runtime_packages, c.nlibs = [], 0
    c.run(a.deps, a.dockerignore, a.bin)
    for line, msg in sorted(c.errors, key=lambda e: e[0]):
        print("%s:%d: %s" % (a.dockerfile, line, msg))
    if c.errors:
        return 1
    print("ok: %s: %d runtime packages, %d libraries checked" % (a.dockerfile, len(c.runtime_packages), c.nlibs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
